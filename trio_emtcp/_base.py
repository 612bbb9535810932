"""What sockets and acceptors share: life cycle, bind, local address."""

from __future__ import annotations

import socket as _stdlib_socket
from types import TracebackType
from typing import TypeVar

import trio

from ._address import Address, address_arg, family_arg, port_arg
from ._driver import Driver, checkpoint
from ._errors import AlreadyOpenError, closed_error

_S = TypeVar("_S", bound="SocketBase")
_SOCK_STREAM = _stdlib_socket.SOCK_STREAM


class SocketBase(Driver):
    """Members common to :class:`Socket` and :class:`Acceptor`."""

    __slots__ = ("_trio_sock",)

    def __init__(self) -> None:
        super().__init__()
        self._trio_sock: trio.socket.SocketType | None = None

    def _live(self) -> _stdlib_socket.socket:
        sock = self._sock
        if sock is None:
            raise closed_error()
        return sock

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
        if self._sock is not None:
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
            self._trio_sock = None
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
        if self._sock is None:
            raise closed_error()
        self._abort_pending()

    def assign(self, family: str | Address, fd: int) -> None:
        """Adopt an existing TCP socket descriptor (connected or not).

        On success the object owns ``fd`` and closes it on :meth:`close`.
        On any error ``fd`` is left untouched and still belongs to the
        caller.

        Args:
          family: ``"v4"``, ``"v6"`` or an ``Address``; must match the
            descriptor's family.
          fd: an open socket descriptor of type ``SOCK_STREAM``.

        Raises:
          TypeError: ``family`` or ``fd`` has the wrong type.
          ValueError: ``family`` is unknown, ``fd`` is negative, or the
            descriptor's family or type does not match.
          AlreadyOpenError: already open.
          OSError: ``fd`` is not an open socket (``EBADF``, ``ENOTSOCK``).
        """
        fam = family_arg(family)
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(
                f"fd: expected an int file descriptor, got {type(fd).__name__}"
            )
        if fd < 0:
            raise ValueError(f"fd: must be >= 0, got {fd}")
        if self._sock is not None:
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
        sock = self._detach_sock(releasing=True)
        if sock is None:
            raise closed_error()
        self._trio_sock = None
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
            (``EADDRINUSE``, ``EADDRNOTAVAIL``, ``EINVAL`` if already bound).
        """
        addr = address_arg(address)
        p = port_arg(port)
        sock = self._live()
        check_family(sock, addr)
        sock.bind(addr._sockaddr(p))

    @property
    def is_open(self) -> bool:
        """Whether the socket has a descriptor."""
        return self._sock is not None

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
