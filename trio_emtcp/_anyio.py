"""The anyio bridge: a Socket as an anyio SocketStream, an Acceptor as a Listener.

anyio's stream vocabulary reuses Emilua's method names with other meanings:
anyio's ``send`` means "send all of it" and ``receive`` raises
:class:`anyio.EndOfStream` at the end, while ``Socket.send`` is Emilua's
partial write and ``Socket.receive`` reads into a buffer.  So a ``Socket``
cannot be an anyio stream itself (handed to anyio code it would silently
drop whatever a partial ``send`` did not write); these wrappers give anyio
code its interface, its exceptions and its typed socket attributes, over
the socket's Trio stream methods.

anyio runs them on its trio backend only: trio_emtcp waits with
``trio.lowlevel``, which does not exist under asyncio.
"""

from __future__ import annotations

import asyncio
import socket as _stdlib_socket
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, final

import anyio
import anyio.abc
import trio

from ._acceptor import Acceptor
from ._errors import ClosedSocketError, OperationAborted
from ._socket import Socket

__all__ = ["AnyioListener", "AnyioSocketStream", "wrap_acceptor", "wrap_socket"]

#: What ``receive()`` asks for by default: anyio's own default.
DEFAULT_MAX_BYTES = 65536

_Attribute = anyio.abc.SocketAttribute


class _AnyioErrors:
    """Turn Trio's stream exceptions into anyio's, at one place.

    * :class:`trio.ClosedResourceError` (the socket is closed, or was
      closed while the call waited): :class:`anyio.ClosedResourceError`.
    * :class:`trio.BrokenResourceError` (reset, ``EPIPE``...):
      :class:`anyio.BrokenResourceError`, chained to the ``OSError``.
    * :class:`trio.BusyResourceError`: :class:`anyio.BusyResourceError`.

    Everything else passes through: the task's own cancellation, and
    :class:`~trio_emtcp.OperationAborted` from another task's
    ``cancel()`` (anyio has no word for "aborted, still usable").
    """

    __slots__ = ("_action",)

    def __init__(self, action: str) -> None:
        self._action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if isinstance(exc, trio.ClosedResourceError):
            raise anyio.ClosedResourceError from exc
        if isinstance(exc, trio.BrokenResourceError):
            raise anyio.BrokenResourceError from exc.__cause__
        if isinstance(exc, trio.BusyResourceError):
            raise anyio.BusyResourceError(self._action) from None
        return False


def _require_trio(what: str) -> None:
    """Refuse to wrap under another event loop (anyio's asyncio backend).

    Raises:
      RuntimeError: called from async code that is not running on Trio.
    """
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        pass
    else:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # synchronous code: the object may be used under Trio later
    raise RuntimeError(
        f"{what}: trio_emtcp runs on Trio only; use anyio's trio backend "
        "(anyio.run(..., backend='trio')), not asyncio"
    )


def _address_pair(sockaddr: tuple[Any, ...]) -> tuple[str, int]:
    """anyio's form of a socket address: ``(host, port)``, also for IPv6."""
    return (sockaddr[0], sockaddr[1])


def _socket_attributes(
    sock: Socket | Acceptor, connected: bool
) -> dict[Any, Callable[[], Any]]:
    raw = sock._live()
    attributes: dict[Any, Callable[[], Any]] = {
        _Attribute.family: lambda: sock._live().family,
        _Attribute.local_address: lambda: _address_pair(sock._live().getsockname()),
        _Attribute.local_port: lambda: sock.local_port,
        _Attribute.raw_socket: lambda: _raw(sock),
    }
    if connected:
        try:
            peer = _address_pair(raw.getpeername())
        except OSError:
            pass  # not connected (any more): anyio then has no remote entries
        else:
            attributes[_Attribute.remote_address] = lambda: peer
            attributes[_Attribute.remote_port] = lambda: peer[1]
    return attributes


def _raw(sock: Socket | Acceptor) -> _stdlib_socket.socket:
    """The stdlib socket, handed out: code outside may wait on it now.

    Raises:
      ClosedSocketError: closed.
    """
    raw = sock._live()
    # As for trio_socket: close() must then wake such waiters.
    sock._fd_shared = True
    return raw


@final
class AnyioSocketStream(anyio.abc.SocketStream):
    """A :class:`~trio_emtcp.ip.tcp.Socket` as an :class:`anyio.abc.SocketStream`.

    Made by :func:`wrap_socket`.  ``send`` sends all of its bytes (anyio's
    meaning), ``receive`` returns at least one byte or raises
    :class:`anyio.EndOfStream`, ``send_eof`` shuts the sending side down,
    ``aclose`` closes the socket.  Errors are anyio's:
    :class:`anyio.ClosedResourceError`, :class:`anyio.BrokenResourceError`
    (chained to the ``OSError``), :class:`anyio.BusyResourceError` for a
    second task sending (or receiving) at the same time.  Every
    :class:`anyio.abc.SocketAttribute` is provided.

    The socket stays reachable as :attr:`socket`; its own ``close()`` and
    ``cancel()`` still abort what the stream has pending (``cancel()``
    raises :class:`~trio_emtcp.OperationAborted`, which anyio has no name
    for).

    Args:
      socket: the connected socket; build the stream with
        :func:`wrap_socket`, which checks it.
    """

    __slots__ = ("_socket",)

    def __init__(self, socket: Socket) -> None:
        """Use :func:`wrap_socket`, which checks its argument."""
        self._socket = socket

    @property
    def socket(self) -> Socket:
        """The wrapped socket."""
        return self._socket

    async def receive(self, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        """Receive at least one byte and at most ``max_bytes``.

        Args:
          max_bytes: as for :meth:`Socket.receive_some
            <trio_emtcp.ip.tcp.Socket.receive_some>`: an ``int`` in
            1..2**31 - 1.

        Raises:
          anyio.EndOfStream: the peer closed its sending side.
          anyio.ClosedResourceError: the socket is closed.
          anyio.BrokenResourceError: the connection broke.
          anyio.BusyResourceError: another task is receiving.
          TypeError, ValueError: ``max_bytes`` is not an ``int`` in its
            range.
        """
        with _AnyioErrors("reading from"):
            data = await self._socket.receive_some(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Send all of ``item``.

        Args:
          item: a one-dimensional C-contiguous bytes-like object.

        Raises:
          anyio.ClosedResourceError: the socket is closed, or
            :meth:`send_eof` was called.
          anyio.BrokenResourceError: the connection broke.
          anyio.BusyResourceError: another task is sending.
          TypeError: ``item`` is not a one-dimensional C-contiguous
            bytes-like object.
          ValueError: ``item`` is a released ``memoryview``.
        """
        with _AnyioErrors("writing to"):
            await self._socket.send_all(item)

    async def send_eof(self) -> None:
        """Shut down the sending side; receiving goes on.

        Raises:
          anyio.ClosedResourceError: the socket is closed.
          anyio.BusyResourceError: another task is sending.
        """
        with _AnyioErrors("writing to"):
            await self._socket.send_eof()

    async def aclose(self) -> None:
        """Close the socket (idempotent), then checkpoint."""
        await self._socket.aclose()

    @property
    def _raw_socket(self) -> _stdlib_socket.socket:
        return _raw(self._socket)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The typed attributes anyio defines for sockets.

        Family, local and remote address and port, and ``raw_socket`` (the
        stdlib socket object).

        Raises:
          ClosedSocketError: the socket is closed.
        """
        return _socket_attributes(self._socket, connected=True)


@final
class AnyioListener(anyio.abc.SocketListener):
    """An :class:`~trio_emtcp.ip.tcp.Acceptor` as an :class:`anyio.abc.SocketListener`.

    Made by :func:`wrap_acceptor`.  :meth:`accept` returns an
    :class:`AnyioSocketStream` with ``tcp_no_delay`` on, as anyio's own
    TCP listeners do; ``serve`` (anyio's) runs a handler per
    connection in a task group.

    Args:
      acceptor: the listening acceptor; build the listener with
        :func:`wrap_acceptor`, which checks it.
    """

    __slots__ = ("_acceptor",)

    def __init__(self, acceptor: Acceptor) -> None:
        """Use :func:`wrap_acceptor`, which checks its argument."""
        self._acceptor = acceptor

    @property
    def acceptor(self) -> Acceptor:
        """The wrapped acceptor."""
        return self._acceptor

    async def accept(self) -> AnyioSocketStream:
        """Wait for a connection.

        Raises:
          anyio.ClosedResourceError: the acceptor is closed, or was closed
            while this call waited.
          OSError: the kernel's error (``EMFILE``...).
        """
        acceptor = self._acceptor
        try:
            sock = await acceptor.accept()
        except ClosedSocketError as exc:
            raise anyio.ClosedResourceError from exc
        except OperationAborted:
            if acceptor.is_open:
                raise  # cancel(): still listening
            raise anyio.ClosedResourceError from None
        try:
            sock.set_option("tcp_no_delay", True)
        except BaseException:
            sock.close()
            raise
        return AnyioSocketStream(sock)

    async def aclose(self) -> None:
        """Close the acceptor (idempotent), then checkpoint."""
        await self._acceptor.aclose()

    @property
    def _raw_socket(self) -> _stdlib_socket.socket:
        return _raw(self._acceptor)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The typed attributes anyio defines for listeners.

        Family, local address and port, and ``raw_socket``.

        Raises:
          ClosedSocketError: the acceptor is closed.
        """
        return _socket_attributes(self._acceptor, connected=False)


def wrap_socket(socket: Socket) -> AnyioSocketStream:
    """Wrap a connected ``Socket`` as an :class:`anyio.abc.SocketStream`.

    The stream uses the socket and owns nothing more: closing either
    closes both.  Options are left as they are (``tcp_no_delay`` as the
    socket was made: on from ``ip.dial`` and ``ip.tcp.listen``).

    Args:
      socket: a connected :class:`~trio_emtcp.ip.tcp.Socket`.

    Raises:
      TypeError: ``socket`` is not an ``ip.tcp.Socket``.
      RuntimeError: called under an event loop other than Trio (anyio's
        asyncio backend).
    """
    if not isinstance(socket, Socket):
        raise TypeError(
            f"socket: expected an ip.tcp.Socket, got {type(socket).__name__}"
        )
    _require_trio("wrap_socket")
    return AnyioSocketStream(socket)


def wrap_acceptor(acceptor: Acceptor) -> AnyioListener:
    """Wrap a listening ``Acceptor`` as an :class:`anyio.abc.SocketListener`.

    Args:
      acceptor: a listening :class:`~trio_emtcp.ip.tcp.Acceptor`.

    Raises:
      TypeError: ``acceptor`` is not an ``ip.tcp.Acceptor``.
      RuntimeError: called under an event loop other than Trio.
    """
    if not isinstance(acceptor, Acceptor):
        raise TypeError(
            f"acceptor: expected an ip.tcp.Acceptor, got {type(acceptor).__name__}"
        )
    _require_trio("wrap_acceptor")
    return AnyioListener(acceptor)
