"""What sockets and acceptors share: life cycle, bind, local address."""

from __future__ import annotations

import contextlib
import errno
import socket as _stdlib_socket
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import trio

from . import _urgent
from ._address import Address, address_arg, family_arg
from ._args import choice, int_arg, port_arg
from ._driver import (
    Driver,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    wait_readable,
    wait_writable,
)
from ._endpoint import tostring
from ._errors import AlreadyOpenError

_S = TypeVar("_S", bound="SocketBase")
_SOCK_STREAM = _stdlib_socket.SOCK_STREAM

# The errors of bind()/listen() that are about the address itself: taken
# (EADDRINUSE), not one of this machine's (EADDRNOTAVAIL), or a port below
# 1024 without the privilege (EACCES).  The kernel's text does not say
# which address, and a server that binds several, or reads them from its
# configuration, leaves its user guessing; so these name it (SPEC §12).
_ADDRESS_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


class SocketBase(Driver):
    """Members common to :class:`Socket` and :class:`Acceptor`."""

    __slots__ = ("_trio_sock",)

    def __init__(self) -> None:
        super().__init__()
        self._trio_sock: trio.socket.SocketType | None = None

    def _detach_sock(self, *, releasing: bool = False) -> _stdlib_socket.socket | None:
        # The trio wrapper belongs to the descriptor being let go.
        self._trio_sock = None
        return super()._detach_sock(releasing=releasing)

    async def _wait(self, kind: object) -> None:
        """``wait(kind)``: readiness for ``"read"``, ``"write"``, ``"error"``.

        The one implementation behind ``Socket.wait`` and ``Acceptor.wait``.
        """
        await checkpoint_if_cancelled()
        try:
            direction = choice(kind, "kind", {"read": 0, "write": 1, "error": 2})
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        if direction == 2:
            await _urgent.wait_error(self)
        elif direction == 0:
            await self._blocked(self._readers, wait_readable, None, (), wait_first=True)
        else:
            await self._blocked(self._writers, wait_writable, None, (), wait_first=True)

    def open(self, family: str | Address) -> None:
        """Create the descriptor.

        Args:
          family: ``"v4"``, ``"v6"``, or an :class:`~trio_emtcp.ip.Address`
            whose family is used.

        Raises:
          TypeError: ``family`` is not a ``str`` or an ``Address``.
          ValueError: ``family`` is a string other than ``"v4"``/``"v6"``.
          AlreadyOpenError: already open.
          OSError: the system could not create a socket (e.g. ``EMFILE``).
        """
        fam = family_arg(family)
        if self._open_sock() is not None:
            raise AlreadyOpenError("already open")
        sock = _stdlib_socket.socket(fam, _SOCK_STREAM)
        sock.setblocking(False)
        self._sock = sock

    def close(self) -> None:
        """Close the descriptor; idempotent.

        Every operation pending on the object, in any task, ends at once
        with :class:`~trio_emtcp.OperationAborted`.  Not a checkpoint (use
        :meth:`aclose` for that).
        """
        sock = self._detach_sock()
        if sock is not None:
            sock.close()

    async def aclose(self) -> None:
        """Close, then checkpoint (Trio's ``AsyncResource``).

        It is closed even if the checkpoint is cancelled.
        """
        self.close()
        await checkpoint()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def cancel(self) -> None:
        """End every pending operation with ``OperationAborted``.

        The object stays open and usable; no byte is lost: an aborted
        ``read_some``/``write_some`` transferred nothing, and an operation
        that had already completed returns its result.

        Raises:
          OSError: ``EBADF`` if closed.
        """
        self._live()
        self._abort_pending()

    def assign(self, family: str | Address, fd: int) -> None:
        """Adopt an existing TCP socket descriptor (connected or not).

        On success the object owns ``fd`` and closes it on :meth:`close`.
        On any error ``fd`` is left untouched and still belongs to the
        caller.

        Args:
          family: ``"v4"``, ``"v6"`` or an ``Address``; must match the
            descriptor's family.
          fd: an open socket descriptor of type ``SOCK_STREAM``, an
            ``int`` in 0..2**31 - 1.

        Raises:
          TypeError: ``family`` or ``fd`` has the wrong type.
          ValueError: ``family`` is unknown, ``fd`` is out of its range, or the
            descriptor's family or type does not match.
          AlreadyOpenError: already open.
          OSError: ``fd`` is not an open socket (``EBADF``, ``ENOTSOCK``).
        """
        fam = family_arg(family)
        fd = int_arg(fd, "fd", expected="an int file descriptor")
        if self._open_sock() is not None:
            raise AlreadyOpenError("already open")
        self._sock = adopt(fd, fam)
        # The caller had the descriptor and may still wait on it in Trio.
        self._fd_shared = True

    def release(self) -> int:
        """Hand the descriptor back without closing it; the object is closed.

        Pending operations end with ``OperationAborted``.

        Returns:
          The descriptor, now owned by the caller.

        Raises:
          OSError: ``EBADF`` if closed.
        """
        self._live()
        sock = self._detach_sock(releasing=True)
        assert sock is not None
        return sock.detach()

    def bind(self, address: str | Address, port: int) -> None:
        """Bind to a local address and port.

        Args:
          address: an ``Address`` or a numeric IP literal (IPv6 may carry
            ``%scope``); host names are refused: resolve them first.
          port: ``0`` to ``65535``; ``0`` picks an ephemeral port.

        Raises:
          TypeError: an argument has the wrong type.
          ValueError: ``address`` is not a numeric literal, ``port`` is out
            of range, or the address family differs from the socket's.
          OSError: ``EBADF`` if closed; the kernel's error otherwise
            (``EADDRINUSE``, ``EADDRNOTAVAIL``, ``EACCES`` for a port below
            1024 without the privilege, ``EINVAL`` if already bound).  The
            first three name the endpoint in ``filename``, so the text
            reads ``[Errno 98] Address already in use: '127.0.0.1:8080'``
            (``'[::1]:8080'`` for IPv6); the class, ``errno`` and
            ``strerror`` are the system's.
        """
        addr = address_arg(address)
        p = port_arg(port)
        sock = self._live()
        check_family(sock, addr)
        try:
            sock.bind(addr._sockaddr(p))
        except OSError as exc:
            name_endpoint(exc, lambda: tostring(addr, p))
            raise

    @property
    def is_open(self) -> bool:
        """Whether the object has an open descriptor.

        ``False`` once the descriptor was closed underfoot (through
        :attr:`trio_socket`), too; the object is then closed.
        """
        return self._open_sock() is not None

    @property
    def local_address(self) -> Address:
        """The bound local address (``0.0.0.0``/``::`` when unbound).

        Raises:
          OSError: ``EBADF`` if closed.
        """
        sock = self._live()
        return Address._from_sockaddr(sock.family, sock.getsockname())

    @property
    def local_port(self) -> int:
        """The bound local port (``0`` when unbound).

        Raises:
          OSError: ``EBADF`` if closed.
        """
        port: int = self._live().getsockname()[1]
        return port

    @property
    def trio_socket(self) -> trio.socket.SocketType:
        """The descriptor as a :class:`trio.socket.SocketType`, for interop.

        It shares this object's descriptor (created on first access and
        kept until close).  Closing it closes this object's descriptor too.

        Raises:
          OSError: ``EBADF`` if closed.
        """
        sock = self._live()
        if self._trio_sock is None:
            self._trio_sock = trio.socket.from_stdlib_socket(sock)
            # Its users may wait on the descriptor: close() must wake them.
            self._fd_shared = True
        return self._trio_sock

    @property
    def socket(self) -> trio.socket.SocketType:
        """The same as :attr:`trio_socket`, under ``trio.SocketStream``'s name.

        Code written for :class:`trio.SocketStream` or
        :class:`trio.SocketListener` reads ``stream.socket`` (to call
        ``getpeername()``, say); it works here unchanged.

        Raises:
          OSError: ``EBADF`` if closed.
        """
        return self.trio_socket

    def _endpoints(self) -> str:
        """``v4 127.0.0.1:8080`` (family and local endpoint) for ``repr``.

        Never raises: ``repr`` must work on any object in any state.
        """
        sock = self._sock
        if sock is None or sock.fileno() < 0:
            return "closed"
        try:
            name = sock.getsockname()
        except OSError as exc:  # pragma: no cover - getsockname on an open fd
            return f"fd={sock.fileno()} ({exc.strerror})"
        return f"{family_name(sock)} {endpoint_text(sock.family, name)}"


def name_endpoint(exc: OSError, endpoint: Callable[[], str]) -> None:
    """Name the endpoint in a ``bind``/``listen`` error about the address.

    Sets ``exc.filename`` (Python's slot for what an error is about, shown
    as ``[Errno 98] Address already in use: '127.0.0.1:8080'``) for the
    errnos in ``_ADDRESS_ERRNOS``, and leaves every other error alone.  The
    exception is changed in place, so the caller re-raises the very one
    the system raised: same class, errno, ``strerror`` and traceback.
    ``endpoint`` is called only then (``listen`` asks the kernel for it);
    should that fail, the error stays as the system raised it.
    """
    if exc.errno in _ADDRESS_ERRNOS and exc.filename is None:
        with contextlib.suppress(OSError):
            exc.filename = endpoint()


def family_name(sock: _stdlib_socket.socket) -> str:
    return "v4" if sock.family == _stdlib_socket.AF_INET else "v6"


def endpoint_text(family: int, sockaddr: tuple[object, ...]) -> str:
    """``1.2.3.4:80`` or ``[::1]:80`` for a sockaddr tuple."""
    address = Address._from_sockaddr(family, sockaddr)
    port = sockaddr[1]
    assert isinstance(port, int)
    return tostring(address, port)


def check_family(sock: _stdlib_socket.socket, addr: Address) -> None:
    """Refuse an address of the other family than the open socket's.

    Raises:
      ValueError: the families differ.
    """
    if sock.family != addr.family:
        have = "IPv4" if sock.family == _stdlib_socket.AF_INET else "IPv6"
        raise ValueError(
            f"address: {addr} is not an {have} address, and the socket is {have}"
        )


def adopt(fd: int, family: int) -> _stdlib_socket.socket:
    """A stdlib socket for ``fd``, checked to be TCP of ``family``.

    Leaves ``fd`` open and unowned on every error.

    Raises:
      OSError: ``fd`` is not an open socket.
      ValueError: its type or family differs.
    """
    try:
        probe = _stdlib_socket.socket(fileno=fd)
    except OSError as exc:
        # EBADF for a closed fd, ENOTSOCK for a pipe or a file.
        raise OSError(
            exc.errno, f"fd: {fd} is not an open socket ({exc.strerror})"
        ) from None
    try:
        if probe.type != _SOCK_STREAM:
            raise ValueError(f"fd: {fd} is not a stream (TCP) socket")
        if probe.family != family:
            want = "IPv4" if family == _stdlib_socket.AF_INET else "IPv6"
            raise ValueError(f"fd: {fd} is not an {want} socket")
    except BaseException:
        probe.detach()
        raise
    probe.setblocking(False)
    return probe
