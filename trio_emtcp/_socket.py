"""``ip.tcp.Socket``: Emilua's TCP socket on Trio."""

from __future__ import annotations

import array
import errno
import fcntl
import os
import socket as _stdlib_socket
import sys
import termios
from collections.abc import Iterable
from typing import Any, Literal, final

from . import _options, _sendfile, _urgent
from ._address import Address, address_arg
from ._args import buffer_error, choice, multi_dimensional, nbytes, port_arg
from ._base import SocketBase, check_family, endpoint_text
from ._driver import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    wait_readable,
    wait_writable,
)
from ._errors import (
    EndOfFile,
    OperationAborted,
    closed_error,
)
from ._flags import message_flags_arg
from ._relaxed import RELAXED, skip_schedule_point
from ._trio_stream import TrioStreamMixin
from ._util import Buffer

__all__ = ["Socket"]

# SIOCATMARK has no name in Python's modules; its value is the same on every
# Linux architecture (include/uapi/linux/sockios.h).
_SIOCATMARK = 0x8905

_SHUTDOWN = {
    "receive": _stdlib_socket.SHUT_RD,
    "send": _stdlib_socket.SHUT_WR,
    "both": _stdlib_socket.SHUT_RDWR,
}

_EAGAIN = BlockingIOError
# What a socket method raises when it refuses a buffer argument.
_BUFFER_REFUSALS = (TypeError, ValueError, BufferError)
# Buffers that are one-dimensional by their type: the fast path need not ask.
_FLAT_TYPES = (bytes, bytearray)
# The errors that end a connection and that the socket remembers (SPEC §10).
# Not EPIPE, also the answer to a write after one's own shutdown("send"),
# and not the errors of connect, which never had a connection to lose.
_LOST_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    }
)
_MSG_OOB = _stdlib_socket.MSG_OOB
_SOCK_STREAM = _stdlib_socket.SOCK_STREAM


def _connect_result(sock: _stdlib_socket.socket) -> None:
    err = sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ERROR)
    if err:
        # OSError(errno, msg) picks the builtin subclass itself
        # (ConnectionRefusedError for ECONNREFUSED, ...).
        raise OSError(err, os.strerror(err))


def _disconnect(fd: int) -> None:
    """``connect(fd, {AF_UNSPEC})``: Python's socket.connect cannot say it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    # A struct sockaddr of 16 zero bytes: sa_family == AF_UNSPEC (0).
    addr = ctypes.create_string_buffer(16)
    if libc.connect(fd, addr, ctypes.c_uint32(16)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@final
class Socket(SocketBase, TrioStreamMixin):
    """A TCP socket, as Emilua's ``ip.tcp.socket``.

    A new socket is closed; :meth:`open`, :meth:`connect` (which opens it
    with the address's family), :meth:`assign` or
    :meth:`Acceptor.accept <trio_emtcp.ip.tcp.Acceptor.accept>` give it a
    descriptor.  Every blocking method is ``async`` and a Trio checkpoint.
    :meth:`close`, :meth:`cancel` and :meth:`release`, called from any task,
    end the operations that other tasks have pending on the socket with
    :class:`~trio_emtcp.OperationAborted`.  Several tasks may wait in the
    same direction; they are served in FIFO order.

    On a closed socket every member that needs a descriptor (all but
    :meth:`close`, :meth:`aclose`, :attr:`is_open`, :meth:`open`,
    :meth:`assign`, and :meth:`connect`, which opens the socket) raises
    :class:`~trio_emtcp.ClosedSocketError`, an :class:`OSError` with errno
    ``EBADF``.

    Defaults follow Emilua (Asio): the socket is created with the system's
    defaults, so ``tcp_no_delay`` is off.  Use the socket as an async context
    manager to close it on exit.
    """

    # State of the Trio stream methods (see _trio_stream.py): conflict
    # flags for send_all/receive_some, whether send_eof ran, and whether
    # they set TCP_NOTSENT_LOWAT yet.
    __slots__ = (
        "_lost_to",
        "_trio_eof_sent",
        "_trio_lowat_set",
        "_trio_receiving",
        "_trio_sending",
    )

    def __init__(self) -> None:
        super().__init__()
        self._trio_receiving = False
        self._trio_sending = False
        self._trio_eof_sent = False
        self._trio_lowat_set = False
        # (errno, strerror) of the connection error a data operation saw,
        # if any: see _lost.
        self._lost_to: tuple[int, str] | None = None

    @classmethod
    def _from_stdlib(cls, sock: _stdlib_socket.socket) -> Socket:
        """Wrap an open stdlib socket (accept, socket_pair); takes ownership."""
        self = cls()
        sock.setblocking(False)
        self._sock = sock
        return self

    def _detach_sock(self, *, releasing: bool = False) -> _stdlib_socket.socket | None:
        # Every new descriptor comes after a close/release (open, assign and
        # connect need a closed socket), so the Trio marks are reset here.
        self._trio_eof_sent = False
        self._trio_lowat_set = False
        self._lost_to = None
        return super()._detach_sock(releasing=releasing)

    # -- resets stay resets (SPEC §10) -------------------------------------
    # The kernel reports a connection's error (a reset, a timeout) to one
    # system call only; after it, a recv says "end of stream" and a send
    # says EPIPE.  A second task reading the socket would then take a cut
    # stream for a complete one.  So the first data operation to see such
    # an error leaves it here, and every later one reports it again: reads
    # still return what the kernel holds, and raise it where the kernel
    # would say end of stream (_eof); writes raise it at once (their
    # syscall fails, with EPIPE, and _lost swaps the error).  Only the error
    # paths and the end of stream look here: the fast path pays nothing.

    def _lost(self, exc: BaseException) -> OSError | None:
        """For a data operation's error: the remembered error to raise instead.

        Returns ``None`` when ``exc`` itself is to be raised (it is then
        remembered if it is a connection error).
        """
        if not isinstance(exc, OSError) or isinstance(exc, OperationAborted):
            return None
        lost = self._lost_to
        if lost is not None:
            return OSError(*lost)  # a fresh one: the builtin subclass too
        if exc.errno in _LOST_ERRNOS:
            self._lost_to = (exc.errno, exc.strerror or os.strerror(exc.errno))
        return None

    def _replacement(self, exc: BaseException) -> BaseException | None:
        # The driver's translation (a descriptor closed underfoot), then the
        # remembered connection error: raised instead of a later error, and
        # where a read would report the end of the stream.
        if isinstance(exc, EndOfFile):
            return None if self._lost_to is None else self._eof()
        return super()._replacement(exc) or self._lost(exc)

    def _eof(self) -> BaseException:
        """What a read raises where the kernel reports the end of the stream."""
        lost = self._lost_to
        return EndOfFile() if lost is None else OSError(*lost)

    def __repr__(self) -> str:
        """``<trio_emtcp.ip.tcp.Socket v4 127.0.0.1:40000 -> 127.0.0.1:80>``.

        The family and the local endpoint, then the remote one (or ``not
        connected``); ``closed`` for a closed socket.  Never raises.
        """
        where = self._endpoints()
        sock = self._sock
        if sock is not None and where != "closed":
            try:
                where += " -> " + endpoint_text(sock.family, sock.getpeername())
            except OSError:
                where += ", not connected"
        return f"<trio_emtcp.ip.tcp.Socket {where}>"

    # -- plain (non-blocking) members -------------------------------------

    def shutdown(self, what: Literal["receive", "send", "both"]) -> None:
        """Shut down one or both directions of the connection.

        Args:
          what: ``"receive"``, ``"send"`` or ``"both"``.

        Raises:
          TypeError: ``what`` is not a ``str``.
          ValueError: ``what`` is another string.
          OSError: ``EBADF`` if closed, ``ENOTCONN`` if not connected.
        """
        how = choice(what, "what", _SHUTDOWN)
        self._live().shutdown(how)

    def disconnect(self) -> None:
        """Dissolve the association (``connect`` to ``AF_UNSPEC``).

        Afterwards the socket is open, unconnected, and may connect again;
        a connection error it remembered is forgotten.

        Raises:
          OSError: ``EBADF`` if closed; the kernel's error otherwise.
        """
        _disconnect(self._live().fileno())
        self._lost_to = None

    def io_control(self, command: Literal["bytes_readable"]) -> int:
        """Run an I/O control command; only ``"bytes_readable"`` exists.

        Args:
          command: ``"bytes_readable"``.

        Returns:
          For ``"bytes_readable"`` (``FIONREAD``), how many bytes can be read
          without blocking.

        Raises:
          TypeError: ``command`` is not a ``str``.
          ValueError: ``command`` is another string.
          OSError: ``EBADF`` if closed.
        """
        choice(command, "command", {"bytes_readable": None})
        return _ioctl_int(self._live(), termios.FIONREAD)

    def set_option(
        self, name: str, value: bool | float, timeout: int | None = None
    ) -> None:
        """Set a socket option by its Emilua name.

        Names: ``tcp_no_delay``, ``send_low_watermark``, ``send_buffer_size``,
        ``receive_low_watermark``, ``receive_buffer_size``,
        ``out_of_band_inline``, ``linger``, ``keep_alive``, ``do_not_route``,
        ``debug``, ``v6_only``; and, beyond Emilua, the options that detect
        a dead peer (see :doc:`/dead-peers`): ``keep_alive_idle`` (seconds
        of silence before the first keep-alive probe, 1..32767),
        ``keep_alive_interval`` (seconds between probes, 1..32767),
        ``keep_alive_count`` (unanswered probes before the connection is
        dropped, 1..127), all ``int``, and ``user_timeout`` (seconds, an
        ``int`` or ``float`` >= 0, that sent data may stay unacknowledged
        before the connection is dropped; kept in whole milliseconds; 0 is
        the kernel's default).  Also beyond Emilua,
        ``not_sent_low_watermark`` (``TCP_NOTSENT_LOWAT``): how many bytes
        may wait unsent in the kernel before the socket stops being
        writable, which bounds what a fast writer queues (and how stale
        it gets) on a slow connection.  0 is the kernel's default: on
        Linux the sysctl ``net.ipv4.tcp_notsent_lowat``, no limit unless
        the system sets one; a socket never set reads 0 too.  The Trio
        send-side methods (:meth:`send_all`,
        :meth:`wait_send_all_might_not_block`) set a limit of their own
        the first time they run (see :doc:`/trio-ecosystem`) unless the
        program set one with this option (0 included) or with
        :meth:`setsockopt` on the same descriptor.  Booleans must be
        ``bool`` and sizes ``int``.  ``linger`` takes two values:
        ``set_option("linger", enabled, timeout)``.

        Args:
          name: one of the names above.
          value: a ``bool`` for the on/off options (``1`` is refused);
            for ``send_buffer_size``, ``receive_buffer_size``,
            ``send_low_watermark``, ``receive_low_watermark`` and
            ``not_sent_low_watermark`` an ``int`` of bytes in
            0..2**31 - 1 (the kernel's C ``int``); for the dead-peer
            options the ranges above.
          timeout: for ``linger`` only, and required there: whole seconds,
            an ``int`` in 0..2**31 - 1.

        Raises:
          TypeError: ``name``, ``value`` or ``timeout`` has the wrong type, or
            ``timeout`` is missing for ``linger`` / given for another option.
          ValueError: ``name`` is unknown (the message lists the known ones)
            or not available on this platform, or ``value`` is out of its
            range (the message gives it).
          OSError: ``EBADF`` if closed; the kernel's refusal otherwise (e.g.
            Linux cannot set ``send_low_watermark``: ``ENOPROTOOPT``;
            ``v6_only`` on an IPv4 socket).
        """
        opt = _options.lookup(_options.SOCKET_OPTIONS, name)
        encoded = _options.encode(name, opt, value, timeout)
        _options.set_option(self._live(), opt, encoded)
        if name == "not_sent_low_watermark":
            # The program's own limit (SPEC §12): the Trio send-side methods
            # must not replace it, not even a 0.  Marked once the kernel
            # took it, so a refused value leaves the automatic one in place.
            self._trio_lowat_set = True

    def get_option(self, name: str) -> bool | int | float | tuple[bool, int]:
        """Read a socket option by its Emilua name (see :meth:`set_option`).

        Args:
          name: one of :meth:`set_option`'s names.

        Returns:
          A ``bool`` or ``int``; for ``linger`` a pair ``(enabled,
          timeout)``; for ``user_timeout`` seconds as a ``float``.  Buffer
          sizes read back what was set (Linux doubles them internally; this
          halves them again, as Asio does).  ``not_sent_low_watermark``
          reads 0 when it was never set or set to 0 (the kernel's default),
          and the limit the Trio send-side methods set once they ran.

        Raises:
          TypeError: ``name`` is not a ``str``.
          ValueError: ``name`` is unknown or not available on this platform.
          OSError: ``EBADF`` if closed; the kernel's refusal otherwise.
        """
        opt = _options.lookup(_options.SOCKET_OPTIONS, name)
        return _options.get_option(self._live(), opt)

    # -- properties --------------------------------------------------------

    @property
    def remote_address(self) -> Address:
        """The peer's address.

        Raises:
          OSError: ``EBADF`` if closed, ``ENOTCONN`` if not connected.
        """
        sock = self._live()
        return Address._from_sockaddr(sock.family, sock.getpeername())

    @property
    def remote_port(self) -> int:
        """The peer's port.

        Raises:
          OSError: ``EBADF`` if closed, ``ENOTCONN`` if not connected.
        """
        port: int = self._live().getpeername()[1]
        return port

    @property
    def at_mark(self) -> bool:
        """Whether the read pointer is at the urgent-data mark (``SIOCATMARK``).

        Raises:
          OSError: ``EBADF`` if closed.
        """
        return bool(_ioctl_int(self._live(), _SIOCATMARK))

    # -- blocking members --------------------------------------------------

    async def connect(self, address: str | Address, port: int) -> None:
        """Connect to ``address``:``port``, opening the socket if closed.

        Emilua's semantics, not trio.socket's: if the connect fails or is
        aborted, the socket stays open (after a ``cancel()`` the kernel
        carries on with the handshake, so a second ``connect`` reports
        ``EALREADY``; close and reopen instead).  If the task's own
        cancellation interrupts it, the socket stays open too.

        Args:
          address: an ``Address`` or a numeric IP literal.
          port: ``0`` to ``65535``.

        Raises:
          TypeError: an argument has the wrong type.
          ValueError: a bad address or port, or an address of the other
            family on an open socket.
          OperationAborted: ``close()``/``cancel()``/``release()`` from
            another task.
          OSError: the connect failed (``ConnectionRefusedError``, ...);
            ``BlockingIOError`` (``EALREADY``) while a connect aborted by
            ``cancel()`` is still under way; the system's error when opening
            a closed socket fails (``EMFILE``).
        """
        await checkpoint_if_cancelled()
        try:
            addr = address_arg(address)
            p = port_arg(port)
            sock = self._open_sock()
            if sock is None:
                self.open(addr)
                sock = self._sock
                assert sock is not None
            else:
                check_family(sock, addr)
            sock.connect(addr._sockaddr(p))
        except _EAGAIN as exc:
            if exc.errno != errno.EINPROGRESS:
                # EALREADY is a BlockingIOError too: a connect is already
                # under way (e.g. after cancel()); report it, as Emilua does.
                await cancel_shielded_checkpoint()
                raise
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        else:
            await cancel_shielded_checkpoint()
            return
        # ``queued_after_try``: connect() already ran (EINPROGRESS), so even a
        # task that queued must wait for writability before it reads
        # SO_ERROR, which is 0 while the handshake is under way.
        await self._blocked(
            self._writers,
            wait_writable,
            _connect_result,
            (sock,),
            wait_first=True,
            queued_after_try=True,
        )

    async def read_some(self, buf: Buffer) -> int:
        """Read at least one byte into ``buf``.

        Args:
          buf: a writable one-dimensional C-contiguous buffer
            (``bytearray``, ``memoryview``, ``array``, ``mmap``, ...) of any
            item size: bytes are read into it.  An empty one returns 0 at
            once (still a checkpoint).

        Returns:
          The number of bytes read, ``>= 1`` (``0`` only for an empty
          ``buf``).

        Raises:
          EndOfFile: the peer closed its side and nothing is left; raised
            again on every later call.
          OperationAborted: ``close()``/``cancel()``/``release()`` from
            another task; nothing was read.
          TypeError: ``buf`` is not a writable one-dimensional
            C-contiguous buffer.
          ValueError: ``buf`` is a released ``memoryview``.
          OSError: ``EBADF`` if closed; ``ECONNRESET``, ``ENOTCONN``, ...
            A connection error (``ECONNRESET``, ``ETIMEDOUT``...) that an
            earlier operation on the socket saw is raised again where the
            stream would end (see :doc:`/dead-peers`).
        """
        return await self._recv(buf, 0)

    async def write_some(self, data: Buffer) -> int:
        """Write at least one byte of ``data``.

        Args:
          data: a one-dimensional C-contiguous bytes-like object of any
            item size (its bytes are written).  An empty one returns 0 at
            once (still a checkpoint).  ``str`` is refused: encode it.

        Returns:
          The number of bytes written (may be less than ``len(data)``).

        Raises:
          OperationAborted: ``close()``/``cancel()``/``release()`` from
            another task; nothing was written.
          TypeError: ``data`` is not a one-dimensional C-contiguous
            bytes-like object.
          ValueError: ``data`` is a released ``memoryview``.
          OSError: ``EBADF`` if closed; ``EPIPE``, ``ECONNRESET``, ...; a
            connection error an earlier operation saw, raised again.
        """
        return await self._send(data, 0)

    async def receive(self, buf: Buffer, flags: Iterable[str] | int = ()) -> int:
        """``read_some`` with message flags (``recv`` flags).

        Args:
          buf: as for :meth:`read_some`.
          flags: an iterable of names from ``"peek"``, ``"out_of_band"``,
            ``"do_not_route"``, ``"end_of_record"``, or an ``int`` /
            :class:`~trio_emtcp.ip.MessageFlag` whose bits are those and
            ``MSG_DONTWAIT`` only: no other bit reaches the kernel
            (``MSG_TRUNC`` would drop the data, ``MSG_ERRQUEUE`` make the
            read spin).

        With ``"out_of_band"`` it waits for the urgent byte (not for normal
        readability) without taking the read queue, so a ``read_some`` in
        another task goes on; ``"peek"`` leaves the byte pending (see
        :doc:`/urgent-data`).

        Returns:
          The number of bytes read, as :meth:`read_some`.

        Raises:
          ValueError: an unknown flag name, a bit ``receive`` does not
            take (the message names it), or ``buf`` a released
            ``memoryview``.
          TypeError: ``flags`` or ``buf`` has the wrong type.
          EndOfFile: as :meth:`read_some`; with ``"out_of_band"``, also when
            the peer closed its side with no urgent data pending.
          OSError: as :meth:`read_some`; ``EINVAL`` for ``"out_of_band"``
            while the ``out_of_band_inline`` option is on.
          OperationAborted: as :meth:`read_some`.
        """
        try:
            f = message_flags_arg(flags, "receive")
        except BaseException:
            await checkpoint()
            raise
        if f & _MSG_OOB:
            # Urgent data is not "readable" data: it has its own wait.
            return await _urgent.receive_urgent(self, buf, f)
        return await self._recv(buf, f)

    async def send(self, data: Buffer, flags: Iterable[str] | int = ()) -> int:
        """``write_some`` with message flags (``send`` flags).

        Args:
          data: as for :meth:`write_some`.
          flags: as for :meth:`receive`; an ``int`` may also carry
            ``MSG_MORE`` and ``MSG_NOSIGNAL`` where the platform has them.

        Returns:
          The number of bytes written.

        Raises:
          ValueError: an unknown flag name, a bit ``send`` does not take
            (the message names it), or ``data`` a released ``memoryview``.
          TypeError: ``flags`` or ``data`` has the wrong type.
          OperationAborted, OSError: as :meth:`write_some`.
        """
        try:
            f = message_flags_arg(flags, "send")
        except BaseException:
            await checkpoint()
            raise
        return await self._send(data, f)

    async def wait(self, kind: Literal["read", "write", "error"]) -> None:
        """Wait until the socket is readable, writable, or has an error.

        ``"error"`` waits for an exceptional condition: urgent data, a
        pending socket error, or a hang-up (immediate on a socket that was
        never connected, as in Asio).  ``"error"`` waits are not queued:
        every waiter wakes.  Trio's I/O manager cannot wait for these, so on
        Linux each call watches the socket with a private epoll descriptor
        (see :doc:`/urgent-data` for other platforms).

        Args:
          kind: ``"read"``, ``"write"`` or ``"error"``.

        Raises:
          TypeError: ``kind`` is not a ``str``.
          ValueError: ``kind`` is another string.
          OperationAborted: ``close()``/``cancel()``/``release()`` from
            another task.
          OSError: ``EBADF`` if closed; ``EMFILE`` when no descriptor is left
            for the epoll of an ``"error"`` wait.
        """
        await self._wait(kind)

    # -- the one read and the one write ------------------------------------
    # read_some/receive and write_some/send share these; the fast path is
    # written inline here (see _driver.py) because a function call per
    # operation is measurable.

    async def _recv(self, buf: Buffer, flags: int) -> int:
        await checkpoint_if_cancelled()
        sock = self._sock
        try:
            if sock is None:
                raise closed_error()
            if self._readers.busy:
                # Queue behind the waiting task, unless there is nothing to
                # wait for: a bad or empty buffer answers at once.
                if nbytes(buf, writable=True) != 0:
                    raise _EAGAIN
                n = 0
            elif type(buf) is not bytearray and multi_dimensional(buf):
                raise BufferError  # worded below, as every buffer refusal
            else:
                n = sock.recv_into(buf, 0, flags)
        except _EAGAIN:
            assert sock is not None
            try:
                n = await self._blocked(
                    self._readers,
                    wait_readable,
                    sock.recv_into,
                    (buf, 0, flags),
                    wait_first=not self._readers.busy,
                )
            except OSError as exc:
                if (replacement := self._replacement(exc)) is None:
                    raise
                raise replacement from None
        except BaseException as exc:
            await cancel_shielded_checkpoint()
            # recv_into's own refusal of the buffer (TypeError, BufferError,
            # or ValueError for a released view), worded as everywhere.
            if isinstance(exc, _BUFFER_REFUSALS) and (
                refusal := buffer_error(buf, "buf", writable=True)
            ):
                raise refusal from None
            if (replacement := self._replacement(exc)) is not None:
                raise replacement from None
            raise
        else:
            # The closing schedule point, unless relaxed (see _relaxed.py).
            if not RELAXED or not skip_schedule_point():
                await cancel_shielded_checkpoint()
        if n:
            return n
        if nbytes(buf) == 0:
            return 0
        raise self._eof()

    async def _send(self, data: Buffer, flags: int) -> int:
        await checkpoint_if_cancelled()
        sock = self._sock
        try:
            if sock is None:
                raise closed_error()
            if self._writers.busy:
                if nbytes(data) != 0:
                    raise _EAGAIN
                n: int = 0
            elif type(data) not in _FLAT_TYPES and multi_dimensional(data):
                raise BufferError  # worded below, as every buffer refusal
            else:
                n = sock.send(data, flags)
        except _EAGAIN:
            assert sock is not None
            try:
                return await self._blocked(
                    self._writers,
                    wait_writable,
                    sock.send,
                    (data, flags),
                    wait_first=not self._writers.busy,
                )
            except OSError as exc:
                if (replacement := self._replacement(exc)) is None:
                    raise
                raise replacement from None
        except BaseException as exc:
            await cancel_shielded_checkpoint()
            if isinstance(exc, _BUFFER_REFUSALS) and (
                refusal := buffer_error(data, "data")
            ):
                raise refusal from None
            if (
                sock is not None
                and isinstance(exc, OSError)
                and not self._underfoot(exc)
                and nbytes(data) == 0
            ):
                # Emilua (Asio) never issues a syscall for an empty buffer:
                # 0 even on an unconnected socket, where send() says EPIPE.
                return 0
            if (replacement := self._replacement(exc)) is not None:
                raise replacement from None
            raise
        if not RELAXED or not skip_schedule_point():
            await cancel_shielded_checkpoint()
        return n

    async def send_file(
        self,
        file: Any,
        offset: int,
        size_in_bytes: int,
        head: Buffer | None = None,
        tail: Buffer | None = None,
        n_number_of_bytes_per_send: int | None = None,
    ) -> int:
        """Send ``head``, then part of a file, then ``tail``; zero-copy where possible.

        Emilua has ``send_file`` on Windows only (``TransmitFile``).  Here the
        file data goes with :func:`os.sendfile` (zero-copy: it never enters
        Python) where the system has it and accepts the file, and otherwise
        with :func:`os.pread` and the socket's own write loop.  The file is
        read at ``offset`` without moving its position (a file object's
        ``tell()`` is unchanged); data still buffered in a file object opened
        for writing is not seen, so flush it first.  Reading happens in the
        event loop's thread: free from the page cache, a blocking disk read
        otherwise.

        Like :func:`trio_emtcp.stream.write_all` it returns only when
        everything is written, and must not interleave with other writes on
        the socket: writers queue FIFO, but another task's write could land
        between the head and the file data.

        Args:
          file: a binary file object with ``fileno()`` (opened ``"rb"``), or
            an ``int`` descriptor in 0..2**31 - 1.  It must allow reading at
            an offset (a regular file or a block device, not a pipe or a
            socket).
          offset: where to start in the file, an ``int`` in 0..2**63 - 1
            (an ``off_t``; ``offset + size_in_bytes`` too).
          size_in_bytes: how many bytes of the file to send, an ``int`` in
            0..2**63 - 1.  Unlike ``TransmitFile``, ``0`` sends no file data
            (not the whole file).
          head: data to send before the file data (a one-dimensional
            C-contiguous bytes-like object), or ``None``.
          tail: data to send after it, as ``head``, or ``None``.
          n_number_of_bytes_per_send: ``None``, or the most file bytes handed
            to the kernel per system call, an ``int`` in 1..2**31 - 1.

        Returns:
          The number of bytes of file data sent, head and tail not counted.
          It is less than ``size_in_bytes`` only if the file ends first: the
          transfer stops at the end of the file, and the tail is still sent.

        Raises:
          TypeError: ``file`` is a text file, has no descriptor, or is of
            another type; another argument has the wrong type (``head`` or
            ``tail`` as ``str``: encode them).  Nothing is sent.
          ValueError: ``offset``, ``size_in_bytes``,
            ``n_number_of_bytes_per_send`` or an ``int`` ``file`` is out of
            its range; ``offset + size_in_bytes`` exceeds the largest file
            offset; ``head`` or ``tail`` is a released ``memoryview``; the
            file object is closed or open for writing only.  Nothing is
            sent.
          OperationAborted: ``close()``/``cancel()``/``release()`` from
            another task.  Its ``bytes_transferred`` counts the head, file
            and tail bytes written before it; after ``cancel()`` the socket
            is usable, and the file part can resume at ``offset +
            bytes_transferred - len(head)``.
          OSError: ``EBADF`` if the socket is closed or ``file`` is not an
            open descriptor (nothing is sent); ``ESPIPE`` for a file that
            cannot be read at an offset; ``EPIPE``, ``ECONNRESET``, ... from
            the connection.  Errors after the checks carry
            ``bytes_transferred`` too.
          trio.Cancelled: the task's own cancellation, with
            ``bytes_transferred`` set as for ``OperationAborted``.
        """
        return await _sendfile.send_file(
            self, file, offset, size_in_bytes, head, tail, n_number_of_bytes_per_send
        )


def _ioctl_int(sock: _stdlib_socket.socket, request: int) -> int:
    out = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), request, out, True)
    return out[0]


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("trio_emtcp needs a POSIX system")
