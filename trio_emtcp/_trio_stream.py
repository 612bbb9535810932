"""Trio's stream and listener contracts on top of Socket and Acceptor.

:class:`~trio_emtcp.ip.tcp.Socket` keeps two vocabularies side by side:

* Emilua's methods (``read_some``, ``write_some``, ``shutdown``...) raise
  :class:`OSError` subclasses (:class:`~trio_emtcp.OperationAborted`,
  ``ConnectionResetError``...) and :class:`~trio_emtcp.EndOfFile`, and
  several tasks may queue FIFO in one direction.
* The :class:`trio.abc.HalfCloseableStream` methods defined here
  (``send_all``, ``receive_some``, ``send_eof``,
  ``wait_send_all_might_not_block``) follow Trio's contract instead:
  ``b""`` at end of stream, :class:`trio.ClosedResourceError`,
  :class:`trio.BrokenResourceError` and :class:`trio.BusyResourceError`,
  which is what :class:`trio.SSLStream`, ``trio.testing``'s conformance
  checks and other Trio libraries expect.

Both go through the same driver (``_driver.py``), so both are aborted by
``close()``/``cancel()`` and share the fast path.  The translation from
the first vocabulary to the second happens at one place,
:class:`_StreamErrors`.
"""

from __future__ import annotations

import contextlib
import errno
import socket as _stdlib_socket
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

import trio

from . import _transfer
from ._args import buffer_error, bytes_view, int_arg
from ._driver import (
    checkpoint,
    wait_readable,
    wait_writable,
)
from ._errors import OperationAborted, closed_error
from ._transfer import WRITE, Channel, SpanJob
from ._util import release

if TYPE_CHECKING:
    from ._driver import Waiters, WaitFn

    # Used only in the string "Socket" of TrioListenerMixin's base, which
    # ruff does not read as a type expression.
    from ._socket import Socket  # noqa: F401
    from ._util import Buffer

T = TypeVar("T")

__all__ = [
    "DEFAULT_RECEIVE_SIZE",
    "TRIO_NOTSENT_LOWAT",
    "TrioListenerMixin",
    "TrioStreamMixin",
]

# What ``receive_some()`` asks the kernel for when the caller gives no size.
# trio.SSLStream always calls it that way, so the default must hold a whole
# TLS record (16 KiB plus overhead) with room to spare; 64 KiB is also the
# loopback MTU, a typical TSO/GRO segment, and exactly
# ``trio.SocketStream``'s default, so code moving between the two sees the
# same chunking.  ``recv`` allocates the buffer once and shrinks it to what
# arrived, so a large default costs no copy for small reads.
DEFAULT_RECEIVE_SIZE = 65536

#: The unsent-data limit (``TCP_NOTSENT_LOWAT``, bytes) that the Trio send-side
#: methods set on first use (see :func:`_limit_unsent`).  Not
#: ``trio.SocketStream``'s 16 KiB: measured here (2 processes, 1 MiB
#: ``send_all`` writes, paired rounds), 16 KiB cost 12-14 % of the
#: throughput with no limit, because each 1 MiB write is cut into sends of a
#: few KiB with a wait between them, while 1 MiB was level with no limit
#: (0.98x and 1.12x in two runs).  And 1 MiB still makes a socket clogged by
#: ``send_all`` refuse a further byte, which is what the limit is for (Trio's
#: clogged-stream check passed 20 of 20 runs at 16 KiB, 256 KiB and 1 MiB,
#: 0 of 20 at 4 MiB, where the send buffer fills first): the kernel's
#: default send buffer grows to 4 MiB, so the unsent data reaches the limit
#: before the buffer is full.  On a system whose ``net.ipv4.tcp_wmem``
#: maximum is below about 1.2 MiB the buffer fills first and a small send
#: may still get in; set a smaller limit there (the socket option
#: ``not_sent_low_watermark`` or ``setsockopt``; a value the program set,
#: before or after the first Trio send, is kept).
TRIO_NOTSENT_LOWAT = 1024 * 1024

_TCP_NOTSENT_LOWAT: int | None = getattr(_stdlib_socket, "TCP_NOTSENT_LOWAT", None)
_IPPROTO_TCP = _stdlib_socket.IPPROTO_TCP
# socket.getsockopt refuses a larger buffer ("buflen out of range").
_MAX_OPTION_BYTES = 1024
_SHUT_WR = _stdlib_socket.SHUT_WR
_recv_bytes = _stdlib_socket.socket.recv
# The errnos that mean "this descriptor is gone" rather than "the connection
# broke": EBADF, and ENOTSOCK (Windows' word for it); the same set
# trio.SocketStream treats as closed.
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


class _SocketState(Channel, Protocol):
    """What the mixin uses of ``Socket`` (for the type checker only).

    The methods below annotate ``self`` with it: a mixin cannot name its
    subclass as its self type, and this keeps the mixin free of casts.
    """

    _sock: _stdlib_socket.socket | None
    _trio_receiving: bool
    _trio_sending: bool
    _trio_eof_sent: bool
    _trio_lowat_set: bool
    _lost_to: tuple[int, str] | None

    def _eof(self) -> BaseException: ...

    def _open_sock(self) -> _stdlib_socket.socket | None: ...

    async def _attempt(
        self,
        waiters: Waiters,
        wait_fn: WaitFn,
        fn: Callable[..., T],
        args: tuple[Any, ...] = (),
    ) -> T: ...


class _StreamErrors:
    """Turn the driver's errors into Trio's stream vocabulary.

    Used as ``with _StreamErrors(sock):`` around the body of every Trio
    stream method, and nowhere else:

    * :class:`~trio_emtcp.OperationAborted` while the socket is now closed
      (another task's ``close()``/``aclose()``/``release()`` reached the
      operation): :class:`trio.ClosedResourceError`, as Trio reports a stream
      closed under a blocked task.
    * :class:`~trio_emtcp.OperationAborted` while the socket is still open
      (``cancel()``): passed through unchanged.  The stream is neither
      closed nor broken, and ``cancel()`` is documented to end every pending
      operation with exactly this error; for ``send_all`` its
      ``bytes_transferred`` says how much went out first.
    * ``EBADF``/``ENOTSOCK`` (the closed-object error): a plain
      :class:`trio.ClosedResourceError`.
    * Any other :class:`OSError` (``ECONNRESET``, ``EPIPE``...):
      :class:`trio.BrokenResourceError`, chained to it (``__cause__``).

    Anything that is not an :class:`OSError` (``trio.Cancelled``,
    ``TypeError``, Trio's own exceptions) passes through.

    A small class rather than ``@contextmanager``: it runs on every call,
    and a generator per call costs more than this object.
    """

    __slots__ = ("_socket",)

    def __init__(self, socket: _SocketState) -> None:
        self._socket = socket

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if not isinstance(exc, OSError):
            return False
        if isinstance(exc, OperationAborted):
            if self._socket._open_sock() is not None:
                return False  # cancel(): the socket is open and usable
            raise trio.ClosedResourceError(
                "socket was closed while the operation was waiting"
            ) from None
        if exc.errno in _CLOSED_ERRNOS:
            # Also what a syscall says on a descriptor closed underfoot; the
            # look at _open_sock() then closes the socket object too.
            self._socket._open_sock()
            raise trio.ClosedResourceError("socket is closed") from None
        raise trio.BrokenResourceError(f"connection broken: {exc}") from exc


def _limit_unsent(socket: _SocketState) -> None:
    """Set ``TCP_NOTSENT_LOWAT`` for the Trio send-side methods (SPEC §11).

    Trio's :meth:`~trio.abc.SendStream.wait_send_all_might_not_block`
    means "little data is waiting unsent", and its conformance check for a
    clogged stream relies on it: a stream filled with ``send_all`` until it
    blocks must refuse even a few more bytes.  Without a limit on unsent
    data the kernel reports a full socket unwritable while a small
    ``send()`` still gets in.  ``trio.SocketStream`` sets the limit when it
    is made; here it is set the first time a Trio send-side method runs,
    so that Emilua-style writes (``write_some``, ``stream.write_all``) on a
    socket that never meets Trio's contract never pay for it.  Where the
    platform lacks the option (or refuses it) nothing is set.  Callers skip
    this once ``_trio_lowat_set`` is true, which is also how a limit the
    program chose (``set_option("not_sent_low_watermark", n)``, 0
    included, or ``setsockopt``) stays in place.
    """
    socket._trio_lowat_set = True
    sock = socket._sock
    if _TCP_NOTSENT_LOWAT is not None and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(_IPPROTO_TCP, _TCP_NOTSENT_LOWAT, TRIO_NOTSENT_LOWAT)


def _busy(direction: str) -> trio.BusyResourceError:
    return trio.BusyResourceError(f"another task is already {direction} on this socket")


class TrioStreamMixin(trio.abc.HalfCloseableStream):
    """Trio's :class:`~trio.abc.HalfCloseableStream` methods for ``Socket``.

    ``aclose`` comes from the socket itself (close, then checkpoint).  The
    state lives in three slots that ``Socket`` declares: ``_trio_receiving``
    and ``_trio_sending`` (the conflict flags that make concurrent use raise
    :class:`trio.BusyResourceError`, as Trio's contract demands) and
    ``_trio_eof_sent`` (reset by ``Socket`` whenever it lets go of its
    descriptor, so it always describes the current one).
    """

    __slots__ = ()

    async def send_all(self: _SocketState, data: Buffer) -> None:
        """Send all of ``data``; Trio's :meth:`trio.abc.SendStream.send_all`.

        The whole buffer goes out under one checkpoint while the kernel
        accepts it (the loop of :func:`trio_emtcp.stream.write_all`); the
        call only yields again if the send buffer fills.  An empty ``data``
        sends nothing and is still a checkpoint.

        If an Emilua-style write (``write_some``...) is pending in another
        task, this call queues behind it, FIFO; only a second Trio send-side
        call at the same time is refused.

        Args:
          data: a bytes-like object (``bytes``, ``bytearray``,
            ``memoryview``, ...).

        Raises:
          TypeError: ``data`` is not bytes-like (``str``: encode it).
          trio.BusyResourceError: another task is in ``send_all``,
            ``send_eof`` or ``wait_send_all_might_not_block`` on this socket.
          trio.ClosedResourceError: the socket is closed, was closed by
            another task while this call waited, or ``send_eof`` was called.
          trio.BrokenResourceError: the connection broke (peer reset,
            ``EPIPE``...); its ``__cause__`` is the :class:`OSError`.
          trio_emtcp.OperationAborted: another task called ``cancel()``; the
            socket is still open and ``bytes_transferred`` says how much of
            ``data`` was sent.
        """
        if self._trio_sending:
            await checkpoint()
            raise _busy("sending")
        self._trio_sending = True
        try:
            with _StreamErrors(self):
                try:
                    view = bytes_view(data)
                except (TypeError, ValueError):
                    await checkpoint()
                    raise
                try:
                    if self._trio_eof_sent:
                        await checkpoint()
                        raise trio.ClosedResourceError("cannot send after send_eof()")
                    if not self._trio_lowat_set:
                        _limit_unsent(self)
                    size = view.nbytes
                    if size:
                        await _transfer.run(self, SpanJob(view, size, WRITE))
                    else:
                        await checkpoint()
                        if self._open_sock() is None:
                            raise closed_error()
                finally:
                    # However it ends, the caller's buffer is theirs again at
                    # once (an exception's traceback would keep ``view``).
                    release(view)
        finally:
            self._trio_sending = False

    async def wait_send_all_might_not_block(self: _SocketState) -> None:
        """Wait until the socket is writable; Trio's flow-control hint.

        See :meth:`trio.abc.SendStream.wait_send_all_might_not_block`.  After
        the peer closed the connection this returns (the socket is
        "writable": the next ``send_all`` reports the error).

        Raises:
          trio.BusyResourceError: another task is in a send-side Trio method.
          trio.ClosedResourceError: the socket is closed, or was closed by
            another task while this call waited.
          trio_emtcp.OperationAborted: another task called ``cancel()``.
        """
        if self._trio_sending:
            await checkpoint()
            raise _busy("sending")
        self._trio_sending = True
        try:
            with _StreamErrors(self):
                if not self._trio_lowat_set:
                    _limit_unsent(self)
                await self._blocked(
                    self._writers, wait_writable, None, (), wait_first=True
                )
        finally:
            self._trio_sending = False

    async def send_eof(self: _SocketState) -> None:
        """Shut down the sending side (``shutdown(SHUT_WR)``); idempotent.

        See :meth:`trio.abc.HalfCloseableStream.send_eof`.  Later
        ``send_all`` calls raise :class:`trio.ClosedResourceError`; receiving
        keeps working.  (The Emilua-style ``shutdown("send")`` does not mark
        the stream: ``send_all`` after it reports the kernel's ``EPIPE`` as
        :class:`trio.BrokenResourceError`.)

        Raises:
          trio.BusyResourceError: another task is in a send-side Trio method.
          trio.ClosedResourceError: the socket is closed.
          trio.BrokenResourceError: the kernel refused (e.g. ``ENOTCONN``
            after a reset).
        """
        if self._trio_sending:
            await checkpoint()
            raise _busy("sending")
        self._trio_sending = True
        try:
            # Checkpoint first, as trio.SocketStream does: a cancelled
            # send_eof has not shut anything down.
            await checkpoint()
            with _StreamErrors(self):
                sock = self._live()
                if not self._trio_eof_sent:
                    sock.shutdown(_SHUT_WR)
                    self._trio_eof_sent = True
        finally:
            self._trio_sending = False

    async def receive_some(self: _SocketState, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes``; Trio's ``receive_some``.

        See :meth:`trio.abc.ReceiveStream.receive_some`.  One ``recv`` into a
        freshly allocated ``bytes`` object (the only allocation); use
        :meth:`read_some` to read into a buffer you reuse.

        If an Emilua-style read is pending in another task, this call
        queues behind it, FIFO.

        Args:
          max_bytes: the most bytes to return, an ``int`` in 1..2**31 - 1
            (a buffer of that size is allocated for the call); ``None`` for
            ``DEFAULT_RECEIVE_SIZE`` (64 KiB).

        Returns:
          At least one byte; ``b""`` once the peer has sent EOF, on that call
          and every later one.

        Raises:
          TypeError: ``max_bytes`` is not an ``int`` or ``None``.
          ValueError: ``max_bytes`` is out of its range.
          trio.BusyResourceError: another task is in ``receive_some`` on this
            socket.
          trio.ClosedResourceError: the socket is closed, or was closed by
            another task while this call waited.
          trio.BrokenResourceError: the connection broke (peer reset...);
            its ``__cause__`` is the :class:`OSError`.
          trio_emtcp.OperationAborted: another task called ``cancel()``;
            nothing was received.
        """
        if max_bytes is None:
            size = DEFAULT_RECEIVE_SIZE
        else:
            try:
                size = int_arg(
                    max_bytes, "max_bytes", minimum=1, expected="an int or None"
                )
            except (TypeError, ValueError):
                await checkpoint()
                raise
        if self._trio_receiving:
            await checkpoint()
            raise _busy("receiving")
        self._trio_receiving = True
        try:
            with _StreamErrors(self):
                data: bytes = await self._attempt(
                    self._readers, wait_readable, _recv_bytes, (size,)
                )
                if not data and self._lost_to is not None:
                    # A connection error another call saw: not a clean end.
                    raise self._eof()
                return data
        finally:
            self._trio_receiving = False

    # -- trio.SocketStream's own surface --------------------------------------

    @overload
    def setsockopt(self, level: int, option: int, value: int | Buffer) -> None: ...

    @overload
    def setsockopt(self, level: int, option: int, value: None, length: int) -> None: ...

    def setsockopt(
        self: _SocketState,
        level: int,
        option: int,
        value: int | Buffer | None,
        length: int | None = None,
    ) -> None:
        """Set a socket option by number, as :meth:`trio.SocketStream.setsockopt`.

        The raw form of :meth:`set_option`, for code written against
        ``trio.SocketStream`` (``setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)``):
        ``value`` is an ``int`` or a bytes-like object, or ``None`` with
        ``length`` for an option that takes a null buffer of that length;
        see :meth:`socket.socket.setsockopt`.  A ``TCP_NOTSENT_LOWAT`` set
        here is kept, as one set with the option ``not_sent_low_watermark``:
        the Trio send-side methods then set none of their own (see
        :doc:`/trio-ecosystem`).

        Args:
          level: the protocol level (``socket.IPPROTO_TCP``, ...), an
            ``int`` in 0..2**31 - 1.
          option: the option's number (``socket.TCP_NODELAY``, ...), an
            ``int`` in 0..2**31 - 1.
          value: an ``int`` in -2**31..2**31 - 1 (a ``bool`` counts, as in
            :mod:`socket` and Trio's own ``setsockopt(..., True)``), a
            one-dimensional C-contiguous bytes-like object, or ``None``
            with ``length``.
          length: with ``value=None`` only: the length of the null buffer,
            an ``int`` in 0..2**31 - 1.

        Raises:
          TypeError: an argument has the wrong type; ``value`` is ``None``
            without ``length``, or given with it.
          ValueError: a number is out of its range.
          OSError: ``EBADF`` if closed (a
            :class:`~trio_emtcp.ClosedSocketError`, also a
            :class:`trio.ClosedResourceError`); the kernel's refusal
            otherwise.
        """
        sock = self._live()
        level = int_arg(level, "level")
        option = int_arg(option, "option")
        if length is None:
            if value is None:
                raise TypeError("value: must not be None unless length is given")
            if isinstance(value, int):
                # A bool is an int here: the socket module and trio's own
                # SocketStream say setsockopt(..., True).
                value = int_arg(int(value), "value", minimum=-(2**31))
            elif refusal := buffer_error(
                value, "value", accepted="an int or a bytes-like object"
            ):
                raise refusal
            args: tuple[object, ...] = (value,)
        elif value is not None:
            raise TypeError(f"value: must be None when length is given, got {value!r}")
        else:
            args = (None, int_arg(length, "length"))
        if level == _IPPROTO_TCP and option == _TCP_NOTSENT_LOWAT:
            # The program's own limit: the Trio methods must not replace it.
            self._trio_lowat_set = True
        sock.setsockopt(level, option, *args)  # type: ignore[call-overload]

    @overload
    def getsockopt(self, level: int, option: int) -> int: ...

    @overload
    def getsockopt(self, level: int, option: int, buffersize: int) -> bytes: ...

    def getsockopt(
        self: _SocketState, level: int, option: int, buffersize: int = 0
    ) -> int | bytes:
        """Read a socket option by number, as :meth:`trio.SocketStream.getsockopt`.

        Args:
          level: the protocol level, an ``int`` in 0..2**31 - 1.
          option: the option's number, an ``int`` in 0..2**31 - 1.
          buffersize: 0 to read an ``int``; else the most bytes to read,
            up to 1024 (what :meth:`socket.socket.getsockopt` takes).

        Returns:
          An ``int`` when ``buffersize`` is 0, else the option's bytes (at
          most ``buffersize``); see :meth:`socket.socket.getsockopt`.

        Raises:
          TypeError: an argument is not an ``int``.
          ValueError: a number is out of its range.
          OSError: ``EBADF`` if closed; the kernel's refusal otherwise.
        """
        sock = self._live()
        level = int_arg(level, "level")
        option = int_arg(option, "option")
        buffersize = int_arg(buffersize, "buffersize", maximum=_MAX_OPTION_BYTES)
        result: int | bytes = sock.getsockopt(level, option, buffersize)
        return result


class TrioListenerMixin(trio.abc.Listener["Socket"]):
    """Trio's :class:`~trio.abc.Listener` for ``Acceptor``.

    ``Acceptor.accept`` and ``Acceptor.aclose`` already have the shape the
    interface asks for (``accept`` returns a connected
    :class:`~trio_emtcp.ip.tcp.Socket`, which is a Trio stream), so this
    class only adds the base class, which makes
    ``trio.serve_listeners(handler, [acceptor])`` accept it.

    One method serves both vocabularies.  On a closed acceptor ``accept``
    raises ``ClosedSocketError``, which is both
    ``OSError(EBADF)`` (Emilua) and :class:`trio.ClosedResourceError` (Trio).
    The capacity errors (``EMFILE``, ``ENFILE``, ``ENOBUFS``, ``ENOMEM``)
    propagate as :class:`OSError` at once, which is what
    :func:`trio.serve_listeners` expects: it logs them, sleeps and retries.
    An ``accept`` that another task's ``close()`` or ``cancel()`` aborts
    raises :class:`~trio_emtcp.OperationAborted`, as in Emilua; to stop
    ``serve_listeners``, cancel its scope (it closes the acceptor itself).
    """

    __slots__ = ()
