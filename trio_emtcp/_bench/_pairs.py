"""Connected loopback pairs and exact reads, written once per contender.

Each contender gets its connections the way its users would: trio_emtcp
through :func:`~trio_emtcp.socket_pair` and ``Socket.connect``,
``trio.SocketStream`` through ``open_tcp_listeners``/``open_tcp_stream``,
asyncio through ``start_server``/``open_connection``.  Setting up is never
timed.  TCP_NODELAY is on everywhere: ``trio.SocketStream`` sets it
itself; asyncio does too, but it is set again so as not to depend on that;
the others set it here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import trio

from .. import socket_pair
from ..ip.tcp import Socket
from ._common import BACKLOG, HOST, BenchError, nodelay

AsyncioEnd = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _early_eof(got: int, want: int) -> BenchError:
    return BenchError(f"peer closed the connection after {got} of {want} bytes")


# -- trio_emtcp ------------------------------------------------------------


async def emtcp_pair() -> tuple[Socket, Socket]:
    """A connected pair of trio_emtcp sockets, TCP_NODELAY on."""
    a, b = await socket_pair()
    try:
        a.set_option("tcp_no_delay", True)
        b.set_option("tcp_no_delay", True)
    except BaseException:
        a.close()
        b.close()
        raise
    return a, b


async def emtcp_read_exactly(sock: Socket, buf: bytearray, view: memoryview) -> None:
    """Fill ``buf`` (``view`` is a memoryview of it) with ``read_some``."""
    # EndOfFile ends the loop if the peer closes early.
    n = await sock.read_some(buf)
    while n < len(buf):
        n += await sock.read_some(view[n:])


# -- trio.SocketStream ---------------------------------------------------------


def _listener_port(listener: trio.SocketListener) -> int:
    port: int = listener.socket.getsockname()[1]
    return port


async def stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """A connected pair of ``trio.SocketStream`` (they set TCP_NODELAY)."""
    listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=BACKLOG)
    try:
        client = await trio.open_tcp_stream(HOST, _listener_port(listeners[0]))
        try:
            server = await listeners[0].accept()
        except BaseException:
            await trio.aclose_forcefully(client)
            raise
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
    return client, server


async def stream_read_exactly(stream: trio.SocketStream | Socket, size: int) -> bytes:
    """Receive exactly ``size`` bytes with ``receive_some``."""
    data = await stream.receive_some(size)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = await stream.receive_some(size - got)
        if not more:
            raise _early_eof(got, size)
        parts.append(more)
        got += len(more)
    return b"".join(parts)


# -- raw trio.socket -----------------------------------------------------------


async def trio_socket_listener() -> trio.socket.SocketType:
    """A listening trio socket on the loopback, ephemeral port."""
    listener = trio.socket.socket()
    try:
        await listener.bind((HOST, 0))
        listener.listen(BACKLOG)
    except BaseException:
        listener.close()
        raise
    return listener


async def trio_socket_connect(port: int) -> trio.socket.SocketType:
    """A trio socket connected to ``HOST:port``, TCP_NODELAY on."""
    sock = trio.socket.socket()
    try:
        nodelay(sock)
        await sock.connect((HOST, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def trio_socket_pair() -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    """A connected pair of raw trio sockets, TCP_NODELAY on."""
    with await trio_socket_listener() as listener:
        client = await trio_socket_connect(listener.getsockname()[1])
        try:
            server, _ = await listener.accept()
            nodelay(server)
        except BaseException:
            client.close()
            raise
    return client, server


async def trio_socket_read_exactly(
    sock: trio.socket.SocketType, buf: bytearray, view: memoryview
) -> None:
    """Fill ``buf`` with ``recv_into``."""
    n = await sock.recv_into(buf)
    while n < len(buf):
        got = await sock.recv_into(view[n:])
        if not got:
            raise _early_eof(n, len(buf))
        n += got


# -- asyncio -------------------------------------------------------------------


def asyncio_nodelay(writer: asyncio.StreamWriter) -> None:
    """TCP_NODELAY on the stream's socket (asyncio sets it too, since 3.7)."""
    nodelay(writer.get_extra_info("socket"))


async def asyncio_close(writer: asyncio.StreamWriter) -> None:
    """Close a writer and wait until its transport is gone."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


@contextlib.asynccontextmanager
async def asyncio_pair() -> AsyncIterator[tuple[AsyncioEnd, AsyncioEnd]]:
    """A connected pair of asyncio streams ``(client, server)``, closed after.

    Each end is a ``(reader, writer)`` pair.
    """
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[AsyncioEnd] = loop.create_future()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, HOST, 0, backlog=BACKLOG)
    try:
        port = server.sockets[0].getsockname()[1]
        client = await asyncio.open_connection(HOST, port)
        try:
            served = await accepted
            try:
                asyncio_nodelay(client[1])
                asyncio_nodelay(served[1])
                yield client, served
            finally:
                await asyncio_close(served[1])
        finally:
            await asyncio_close(client[1])
    finally:
        # From Python 3.12 on, wait_closed() waits for the connections too,
        # so it comes after they are closed.
        server.close()
        await server.wait_closed()


async def asyncio_read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    """Read exactly ``size`` bytes with ``reader.read``."""
    data = await reader.read(size)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = await reader.read(size - got)
        if not more:
            raise _early_eof(got, size)
        parts.append(more)
        got += len(more)
    return b"".join(parts)


# -- blocking stdlib -----------------------------------------------------------


def stdlib_listener() -> socket.socket:
    """A listening blocking socket on the loopback, ephemeral port."""
    listener = socket.socket()
    try:
        listener.bind((HOST, 0))
        listener.listen(BACKLOG)
    except BaseException:
        listener.close()
        raise
    return listener


def stdlib_connect(port: int) -> socket.socket:
    """A blocking socket connected to ``HOST:port``, TCP_NODELAY on."""
    sock = socket.socket()
    try:
        nodelay(sock)
        sock.connect((HOST, port))
    except BaseException:
        sock.close()
        raise
    return sock


def stdlib_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of blocking stdlib sockets, TCP_NODELAY on."""
    with stdlib_listener() as listener:
        client = stdlib_connect(listener.getsockname()[1])
        try:
            server, _ = listener.accept()
            nodelay(server)
        except BaseException:
            client.close()
            raise
    return client, server


def stdlib_read_exactly(sock: socket.socket, buf: bytearray, view: memoryview) -> None:
    """Fill ``buf`` with ``recv_into``."""
    n = sock.recv_into(buf)
    while n < len(buf):
        got = sock.recv_into(view[n:])
        if not got:
            raise _early_eof(n, len(buf))
        n += got
