"""Connections per second: connect, accept, echo a short message, close.

One client makes ``count`` connections one after the other; the server,
in the same process, accepts each, reads the message, writes it back and
closes (one task per connection, as a server would; a thread that serves
them in turn for the blocking stdlib socket).  The time runs from the
first connect until the client has closed the last connection and the
server has finished with it.  Both sides count the echoed bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
import time

import trio

from .. import stream
from ..ip import Address
from ..ip.tcp import Acceptor, Socket
from . import _pairs
from ._common import (
    ANYIO,
    ASYNCIO,
    BACKLOG,
    ECHO_MESSAGE,
    EMTCP,
    EMTCP_RELAXED,
    HOST,
    SOCKET_STREAM,
    STDLIB,
    TRIO_SOCKET,
    UVLOOP,
    Sample,
    check_count,
    nodelay,
    relaxing,
    run_asyncio,
)

perf_counter = time.perf_counter
SIZE = len(ECHO_MESSAGE)

# (seconds, bytes echoed by the server, bytes the client got back)
Outcome = tuple[float, int, int]


async def _emtcp(contender: str, count: int) -> Outcome:
    loopback = Address(HOST)
    write_all = stream.write_all
    read_exactly = _pairs.emtcp_read_exactly
    echoed = 0

    # Emilua style: close() is synchronous, like the raw trio.socket
    # contender's ``with``; ``async with`` would add a checkpoint per close.
    async def handle(conn: Socket) -> None:
        nonlocal echoed
        try:
            with relaxing(contender):
                conn.set_option("tcp_no_delay", True)
                buf = bytearray(SIZE)
                await read_exactly(conn, buf, memoryview(buf))
                sent = await write_all(conn, buf)
                echoed += sent
        finally:
            conn.close()

    async with Acceptor() as acceptor:
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen(BACKLOG)
        port = acceptor.local_port

        async def serve(nursery: trio.Nursery) -> None:
            with relaxing(contender):
                for _ in range(count):
                    nursery.start_soon(handle, await acceptor.accept())

        buf = bytearray(SIZE)
        view = memoryview(buf)
        got = 0
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, nursery)
            with relaxing(contender):
                for _ in range(count):
                    sock = Socket()
                    try:
                        await sock.connect(loopback, port)
                        sock.set_option("tcp_no_delay", True)
                        await write_all(sock, ECHO_MESSAGE)
                        await read_exactly(sock, buf, view)
                        got += SIZE
                    finally:
                        sock.close()
        return perf_counter() - start, echoed, got


async def _stream(count: int) -> Outcome:
    read_exactly = _pairs.stream_read_exactly
    echoed = 0
    all_served = trio.Event()

    async def handle(conn: trio.SocketStream) -> None:
        nonlocal echoed
        async with conn:
            await conn.send_all(await read_exactly(conn, SIZE))
            echoed += SIZE
        if echoed == SIZE * count:
            all_served.set()

    got = 0
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handle, 0, host=HOST, backlog=BACKLOG)
        )
        port = listeners[0].socket.getsockname()[1]
        start = perf_counter()
        for _ in range(count):
            async with await trio.open_tcp_stream(HOST, port) as client:
                await client.send_all(ECHO_MESSAGE)
                got += len(await read_exactly(client, SIZE))
        await all_served.wait()
        elapsed = perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed, echoed, got


async def _trio_socket(count: int) -> Outcome:
    read_exactly = _pairs.trio_socket_read_exactly
    echoed = 0

    async def handle(conn: trio.socket.SocketType) -> None:
        nonlocal echoed
        with conn:
            nodelay(conn)
            buf = bytearray(SIZE)
            await read_exactly(conn, buf, memoryview(buf))
            sent = await conn.send(buf)
            while sent < SIZE:
                sent += await conn.send(memoryview(buf)[sent:])
            echoed += sent

    with await _pairs.trio_socket_listener() as listener:
        port = listener.getsockname()[1]

        async def serve(nursery: trio.Nursery) -> None:
            for _ in range(count):
                conn, _ = await listener.accept()
                nursery.start_soon(handle, conn)

        buf = bytearray(SIZE)
        view = memoryview(buf)
        got = 0
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, nursery)
            for _ in range(count):
                with await _pairs.trio_socket_connect(port) as sock:
                    sent = await sock.send(ECHO_MESSAGE)
                    while sent < SIZE:
                        sent += await sock.send(ECHO_MESSAGE[sent:])
                    await read_exactly(sock, buf, view)
                    got += SIZE
        return perf_counter() - start, echoed, got


async def _asyncio(count: int) -> Outcome:
    read_exactly = _pairs.asyncio_read_exactly
    echoed = 0
    all_served = asyncio.Event()

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal echoed
        try:
            _pairs.asyncio_nodelay(writer)
            writer.write(await read_exactly(reader, SIZE))
            await writer.drain()
        finally:
            await _pairs.asyncio_close(writer)
        echoed += SIZE
        if echoed == SIZE * count:
            all_served.set()

    server = await asyncio.start_server(handle, HOST, 0, backlog=BACKLOG)
    try:
        port = server.sockets[0].getsockname()[1]
        got = 0
        start = perf_counter()
        for _ in range(count):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                _pairs.asyncio_nodelay(writer)
                writer.write(ECHO_MESSAGE)
                await writer.drain()
                got += len(await read_exactly(reader, SIZE))
            finally:
                await _pairs.asyncio_close(writer)
        await all_served.wait()
        elapsed = perf_counter() - start
    finally:
        server.close()
        await server.wait_closed()
    return elapsed, echoed, got


def _stdlib(count: int) -> Outcome:
    echoed = 0
    failure: list[BaseException] = []

    with _pairs.stdlib_listener() as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            nonlocal echoed
            buf = bytearray(SIZE)
            view = memoryview(buf)
            try:
                for _ in range(count):
                    conn, _ = listener.accept()
                    with conn:
                        nodelay(conn)
                        _pairs.stdlib_read_exactly(conn, buf, view)
                        conn.sendall(buf)
                        echoed += SIZE
            except BaseException as exc:
                failure.append(exc)

        buf = bytearray(SIZE)
        view = memoryview(buf)
        got = 0
        thread = threading.Thread(target=serve, name="bench-server")
        start = perf_counter()
        thread.start()
        try:
            for _ in range(count):
                with _pairs.stdlib_connect(port) as sock:
                    sock.sendall(ECHO_MESSAGE)
                    _pairs.stdlib_read_exactly(sock, buf, view)
                    got += SIZE
        except BaseException:
            # The server thread may be blocked in accept(): shutting the
            # listener down wakes it (with EINVAL) so that join() returns.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            raise
        finally:
            thread.join()
        elapsed = perf_counter() - start
    if failure:
        raise failure[0]
    return elapsed, echoed, got


def run(contender: str, count: int) -> Sample:
    """Make ``count`` connections, one after the other, each echoing once.

    Returns:
      A sample in connections per second.

    Raises:
      BenchError: a side echoed or received the wrong byte count.
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        seconds, echoed, got = trio.run(_emtcp, contender, count)
    elif contender == SOCKET_STREAM:
        seconds, echoed, got = trio.run(_stream, count)
    elif contender == TRIO_SOCKET:
        seconds, echoed, got = trio.run(_trio_socket, count)
    elif contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        seconds, echoed, got = _anyio_contender.connect(count)
    elif contender in (ASYNCIO, UVLOOP):
        seconds, echoed, got = run_asyncio(contender, _asyncio(count))
    elif contender == STDLIB:
        seconds, echoed, got = _stdlib(count)
    else:
        raise ValueError(f"contender: unknown, got {contender!r}")
    check_count(f"connections {contender}, server side", echoed, SIZE * count)
    check_count(f"connections {contender}, client side", got, SIZE * count)
    return Sample(value=count / seconds, seconds=seconds)
