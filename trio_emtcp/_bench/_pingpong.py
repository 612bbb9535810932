"""Ping-pong: one message back and forth, ``count`` times, in one process.

The client writes ``size`` bytes and reads exactly ``size`` back; the
server reads exactly ``size`` and writes them back.  Every read blocks (the
data is never there yet), so this is the slow path of every contender: the
wait for readiness, the wake-up and the retry.  The client counts the bytes
that came back and compares the last echo with what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import trio

from .. import EndOfFile, ip, stream
from ..ip.tcp import Socket
from . import _pairs, _protocol
from ._common import (
    ANYIO,
    ASYNCIO,
    BACKLOG,
    EMTCP,
    EMTCP_RELAXED,
    HOST,
    SOCKET_STREAM,
    STDLIB,
    TRIO_SOCKET,
    UVLOOP,
    UVLOOP_PROTOCOL,
    Announce,
    BenchError,
    Sample,
    check_count,
    nodelay,
    relaxing,
    run_asyncio,
)

perf_counter = time.perf_counter


def _message(size: int) -> bytes:
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


async def _emtcp_echo(contender: str, sock: Socket, size: int) -> int:
    """Echo ``size``-byte messages until the peer's end of stream."""
    write_all = stream.write_all
    read_exactly = _pairs.emtcp_read_exactly
    buf = bytearray(size)
    view = memoryview(buf)
    echoed = 0
    with relaxing(contender), contextlib.suppress(EndOfFile):
        while True:
            await read_exactly(sock, buf, view)
            echoed += await write_all(sock, buf)
    return echoed


async def _emtcp_round_trips(
    contender: str, sock: Socket, size: int, count: int
) -> tuple[float, int, bytes]:
    write_all = stream.write_all
    read_exactly = _pairs.emtcp_read_exactly
    message = _message(size)
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    with relaxing(contender):
        start = perf_counter()
        for _ in range(count):
            await write_all(sock, message)
            await read_exactly(sock, buf, view)
            got += len(buf)
        elapsed = perf_counter() - start
    sock.shutdown("send")
    return elapsed, got, bytes(buf)


async def _emtcp(contender: str, size: int, count: int) -> tuple[float, int, bytes]:
    a, b = await _pairs.emtcp_pair()
    async with a, b, trio.open_nursery() as nursery:
        nursery.start_soon(_emtcp_echo, contender, b, size)
        return await _emtcp_round_trips(contender, a, size, count)


async def _stream(size: int, count: int) -> tuple[float, int, bytes]:
    a, b = await _pairs.stream_pair()
    async with a, b:
        read_exactly = _pairs.stream_read_exactly

        async def echo() -> None:
            for _ in range(count):
                await b.send_all(await read_exactly(b, size))

        message = _message(size)
        last = b""
        got = 0
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            for _ in range(count):
                await a.send_all(message)
                last = await read_exactly(a, size)
                got += len(last)
        return perf_counter() - start, got, last


async def _trio_socket(size: int, count: int) -> tuple[float, int, bytes]:
    a, b = await _pairs.trio_socket_pair()
    with a, b:
        read_exactly = _pairs.trio_socket_read_exactly

        async def send_all(
            sock: trio.socket.SocketType, data: bytes | bytearray
        ) -> None:
            sent = await sock.send(data)
            if sent < len(data):
                view = memoryview(data)
                while sent < len(data):
                    sent += await sock.send(view[sent:])

        async def echo() -> None:
            buf = bytearray(size)
            view = memoryview(buf)
            for _ in range(count):
                await read_exactly(b, buf, view)
                await send_all(b, buf)

        message = _message(size)
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            for _ in range(count):
                await send_all(a, message)
                await read_exactly(a, buf, view)
                got += len(buf)
        return perf_counter() - start, got, bytes(buf)


async def _asyncio(size: int, count: int) -> tuple[float, int, bytes]:
    async with _pairs.asyncio_pair() as (
        (ca_reader, ca_writer),
        (sv_reader, sv_writer),
    ):
        read_exactly = _pairs.asyncio_read_exactly

        async def echo() -> None:
            for _ in range(count):
                sv_writer.write(await read_exactly(sv_reader, size))
                await sv_writer.drain()

        message = _message(size)
        last = b""
        got = 0
        start = perf_counter()
        echoing = asyncio.ensure_future(echo())
        try:
            for _ in range(count):
                ca_writer.write(message)
                await ca_writer.drain()
                last = await read_exactly(ca_reader, size)
                got += len(last)
            await echoing
        except BaseException:
            echoing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await echoing
            raise
        return perf_counter() - start, got, last


def _stdlib(size: int, count: int) -> tuple[float, int, bytes]:
    a, b = _pairs.stdlib_pair()
    with a, b:
        failure: list[BaseException] = []

        def echo() -> None:
            buf = bytearray(size)
            view = memoryview(buf)
            try:
                for _ in range(count):
                    _pairs.stdlib_read_exactly(b, buf, view)
                    b.sendall(buf)
            except BaseException as exc:
                failure.append(exc)
                # Wake the client, blocked in recv, rather than leave it.
                with contextlib.suppress(OSError):
                    b.shutdown(socket.SHUT_RDWR)

        message = _message(size)
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        thread = threading.Thread(target=echo, name="bench-echo")
        start = perf_counter()
        thread.start()
        try:
            for _ in range(count):
                a.sendall(message)
                _pairs.stdlib_read_exactly(a, buf, view)
                got += len(buf)
        finally:
            if got < size * count:
                # The client failed: wake the echo thread the same way.
                with contextlib.suppress(OSError):
                    a.shutdown(socket.SHUT_RDWR)
            thread.join()
        elapsed = perf_counter() - start
    if failure:
        raise failure[0]
    return elapsed, got, bytes(buf)


def run(contender: str, size: int, count: int) -> Sample:
    """Make ``count`` round trips of a ``size``-byte message.

    Returns:
      A sample in round trips per second.

    Raises:
      BenchError: a wrong byte count, or the echo is not what was sent.
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        outcome = trio.run(_emtcp, contender, size, count)
    elif contender == SOCKET_STREAM:
        outcome = trio.run(_stream, size, count)
    elif contender == TRIO_SOCKET:
        outcome = trio.run(_trio_socket, size, count)
    elif contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        outcome = _anyio_contender.pingpong(_message(size), count)
    elif contender in (ASYNCIO, UVLOOP):
        outcome = run_asyncio(contender, _asyncio(size, count))
    elif contender == UVLOOP_PROTOCOL:
        outcome = run_asyncio(contender, _protocol.pingpong(_message(size), count))
    elif contender == STDLIB:
        outcome = _stdlib(size, count)
    else:
        raise ValueError(f"contender: unknown, got {contender!r}")
    return _sample(f"ping-pong {contender}", size, count, outcome)


def _sample(
    what: str, size: int, count: int, outcome: tuple[float, int, bytes]
) -> Sample:
    seconds, got, last = outcome
    check_count(what, got, size * count)
    if last != _message(size):
        raise BenchError(f"{what}: the echo differs from the message")
    return Sample(value=count / seconds, seconds=seconds)


# -- two processes: the client here, the echo server in a worker ---------------


async def _emtcp_remote(
    contender: str, port: int, size: int, count: int
) -> tuple[float, int, bytes]:
    async with await ip.dial(HOST, port) as sock:
        return await _emtcp_round_trips(contender, sock, size, count)


async def _stream_remote(port: int, size: int, count: int) -> tuple[float, int, bytes]:
    async with await trio.open_tcp_stream(HOST, port) as s:
        message = _message(size)
        last = b""
        got = 0
        start = perf_counter()
        for _ in range(count):
            await s.send_all(message)
            last = await _pairs.stream_read_exactly(s, size)
            got += len(last)
        elapsed = perf_counter() - start
        await s.send_eof()
        return elapsed, got, last


async def _trio_socket_remote(
    port: int, size: int, count: int
) -> tuple[float, int, bytes]:
    with await _pairs.trio_socket_connect(port) as sock:
        message = _message(size)
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        start = perf_counter()
        for _ in range(count):
            sent = await sock.send(message)
            while sent < size:
                sent += await sock.send(message[sent:])
            await _pairs.trio_socket_read_exactly(sock, buf, view)
            got += size
        elapsed = perf_counter() - start
        sock.shutdown(socket.SHUT_WR)
        return elapsed, got, bytes(buf)


async def _asyncio_remote(port: int, size: int, count: int) -> tuple[float, int, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        _pairs.asyncio_nodelay(writer)
        message = _message(size)
        last = b""
        got = 0
        start = perf_counter()
        for _ in range(count):
            writer.write(message)
            await writer.drain()
            last = await _pairs.asyncio_read_exactly(reader, size)
            got += len(last)
        elapsed = perf_counter() - start
        writer.write_eof()
        return elapsed, got, last
    finally:
        await _pairs.asyncio_close(writer)


def _stdlib_remote(port: int, size: int, count: int) -> tuple[float, int, bytes]:
    with _pairs.stdlib_connect(port) as sock:
        message = _message(size)
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        start = perf_counter()
        for _ in range(count):
            sock.sendall(message)
            _pairs.stdlib_read_exactly(sock, buf, view)
            got += size
        elapsed = perf_counter() - start
        sock.shutdown(socket.SHUT_WR)
        return elapsed, got, bytes(buf)


def run_remote(contender: str, size: int, count: int, port: int) -> Sample:
    """Make ``count`` round trips with the echo worker listening on ``port``.

    Returns:
      A sample in round trips per second.

    Raises:
      BenchError: a wrong byte count, or the echo is not what was sent.
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        outcome = trio.run(_emtcp_remote, contender, port, size, count)
    elif contender == SOCKET_STREAM:
        outcome = trio.run(_stream_remote, port, size, count)
    elif contender == TRIO_SOCKET:
        outcome = trio.run(_trio_socket_remote, port, size, count)
    elif contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        outcome = _anyio_contender.pingpong_remote(port, _message(size), count)
    elif contender in (ASYNCIO, UVLOOP):
        outcome = run_asyncio(contender, _asyncio_remote(port, size, count))
    elif contender == UVLOOP_PROTOCOL:
        outcome = run_asyncio(
            contender, _protocol.pingpong_remote(port, _message(size), count)
        )
    elif contender == STDLIB:
        outcome = _stdlib_remote(port, size, count)
    else:
        raise ValueError(f"contender: unknown, got {contender!r}")
    return _sample(f"ping-pong (2 processes) {contender}", size, count, outcome)


# -- two processes: the echo server (in the worker) ------------------------------


async def _emtcp_echo_one(contender: str, size: int, announce: Announce) -> int:
    async with ip.tcp.listen(HOST, 0, BACKLOG) as acceptor:
        announce(acceptor.local_port)
        conn = await acceptor.accept()
    async with conn:
        return await _emtcp_echo(contender, conn, size)


async def _stream_echo_one(size: int, announce: Announce) -> int:
    listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=BACKLOG)
    try:
        announce(listeners[0].socket.getsockname()[1])
        conn = await listeners[0].accept()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
    echoed = 0
    async with conn:
        while data := await conn.receive_some(size):
            if len(data) < size:
                data += await _pairs.stream_read_exactly(conn, size - len(data))
            await conn.send_all(data)
            echoed += size
    return echoed


async def _trio_socket_echo_one(size: int, announce: Announce) -> int:
    with await _pairs.trio_socket_listener() as listener:
        announce(listener.getsockname()[1])
        conn, _ = await listener.accept()
    with conn:
        nodelay(conn)
        buf = bytearray(size)
        view = memoryview(buf)
        echoed = 0
        while n := await conn.recv_into(buf):
            while n < size:
                more = await conn.recv_into(view[n:])
                if not more:
                    raise BenchError(f"echo: the client left mid-message ({n} bytes)")
                n += more
            sent = 0
            while sent < size:
                sent += await conn.send(view[sent:])
            echoed += size
        return echoed


async def _asyncio_echo_one(size: int, announce: Announce) -> int:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[_pairs.AsyncioEnd] = loop.create_future()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, HOST, 0, backlog=BACKLOG)
    try:
        announce(server.sockets[0].getsockname()[1])
        reader, writer = await accepted
        echoed = 0
        try:
            _pairs.asyncio_nodelay(writer)
            while data := await reader.read(size):
                if len(data) < size:
                    data += await reader.readexactly(size - len(data))
                writer.write(data)
                await writer.drain()
                echoed += size
        finally:
            await _pairs.asyncio_close(writer)
    finally:
        server.close()
        await server.wait_closed()
    return echoed


def _stdlib_echo_one(size: int, announce: Announce) -> int:
    with _pairs.stdlib_listener() as listener:
        announce(listener.getsockname()[1])
        conn, _ = listener.accept()
    with conn:
        nodelay(conn)
        buf = bytearray(size)
        view = memoryview(buf)
        echoed = 0
        while n := conn.recv_into(buf):
            while n < size:
                more = conn.recv_into(view[n:])
                if not more:
                    raise BenchError(f"echo: the client left mid-message ({n} bytes)")
                n += more
            conn.sendall(buf)
            echoed += size
        return echoed


def echo_one(contender: str, size: int, announce: Announce) -> int:
    """Worker side: listen, ``announce(port)``, echo one connection.

    Echoes ``size``-byte messages until the client's end of stream.

    Returns:
      The bytes echoed.

    Raises:
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        return trio.run(_emtcp_echo_one, contender, size, announce)
    if contender == SOCKET_STREAM:
        return trio.run(_stream_echo_one, size, announce)
    if contender == TRIO_SOCKET:
        return trio.run(_trio_socket_echo_one, size, announce)
    if contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        return _anyio_contender.echo_one(size, announce)
    if contender in (ASYNCIO, UVLOOP):
        return run_asyncio(contender, _asyncio_echo_one(size, announce))
    if contender == UVLOOP_PROTOCOL:
        return run_asyncio(contender, _protocol.echo_one(size, announce))
    if contender == STDLIB:
        return _stdlib_echo_one(size, announce)
    raise ValueError(f"contender: unknown, got {contender!r}")
