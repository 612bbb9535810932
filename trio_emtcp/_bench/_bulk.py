"""Bulk transfer: one side writes ``total`` bytes in ``chunk``-sized writes.

The receiver reads with the same chunk size until end of stream.  Two
shapes:

*one process*: sender and receiver are two tasks of one event loop (two
threads for the blocking stdlib socket), so each byte costs the library
twice, on one core;

*two processes*: the receiver is a worker process (:mod:`._worker`) running
the same contender, so the sender has a core to itself.  The receiver
answers the byte count it got, in 8 bytes, after end of stream; the time
runs from the first write to that answer.

Either way the count received is checked against the count sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import trio

from .. import EndOfFile, ip, stream
from ..ip import Address
from ..ip.tcp import Acceptor, Socket
from . import _pairs, _protocol
from ._common import (
    ANYIO,
    ASYNCIO,
    BACKLOG,
    EMTCP,
    EMTCP_RELAXED,
    EMTCP_TRIO,
    HOST,
    MIB,
    SOCKET_STREAM,
    STDLIB,
    TRIO_SOCKET,
    UVLOOP,
    UVLOOP_PROTOCOL,
    Announce,
    Sample,
    check_count,
    nodelay,
    relaxing,
    run_asyncio,
)

perf_counter = time.perf_counter
_COUNT_SIZE = 8


def _sample(what: str, seconds: float, got: int, total: int) -> Sample:
    check_count(what, got, total)
    return Sample(value=total / MIB / seconds, seconds=seconds)


# -- the receivers' loops (shared by both shapes) ---------------------------


async def _emtcp_drain(sock: Socket, chunk: int) -> int:
    buf = bytearray(chunk)
    read_some = sock.read_some
    got = 0
    try:
        while True:
            got += await read_some(buf)
    except EndOfFile:
        return got


async def _stream_drain(s: trio.abc.ReceiveStream, chunk: int) -> int:
    receive_some = s.receive_some
    got = 0
    while data := await receive_some(chunk):
        got += len(data)
    return got


async def _trio_socket_drain(sock: trio.socket.SocketType, chunk: int) -> int:
    buf = bytearray(chunk)
    recv_into = sock.recv_into
    got = 0
    while n := await recv_into(buf):
        got += n
    return got


async def _asyncio_drain(reader: asyncio.StreamReader, chunk: int) -> int:
    read = reader.read
    got = 0
    while data := await read(chunk):
        got += len(data)
    return got


def _stdlib_drain(sock: socket.socket, chunk: int) -> int:
    buf = bytearray(chunk)
    recv_into = sock.recv_into
    got = 0
    while n := recv_into(buf):
        got += n
    return got


# -- the senders' loops ------------------------------------------------------


async def _emtcp_send(sock: Socket, data: bytes, count: int) -> None:
    write_all = stream.write_all
    for _ in range(count):
        await write_all(sock, data)
    sock.shutdown("send")


async def _stream_send(
    s: trio.abc.HalfCloseableStream, data: bytes, count: int
) -> None:
    send_all = s.send_all
    for _ in range(count):
        await send_all(data)
    await s.send_eof()


async def _trio_socket_send(
    sock: trio.socket.SocketType, data: bytes, count: int
) -> None:
    view = memoryview(data)
    size = len(data)
    send = sock.send
    for _ in range(count):
        sent = await send(view)
        while sent < size:
            sent += await send(view[sent:])
    sock.shutdown(socket.SHUT_WR)


async def _asyncio_send(writer: asyncio.StreamWriter, data: bytes, count: int) -> None:
    write = writer.write
    drain = writer.drain
    for _ in range(count):
        write(data)
        await drain()
    writer.write_eof()


def _stdlib_send(sock: socket.socket, data: bytes, count: int) -> None:
    sendall = sock.sendall
    for _ in range(count):
        sendall(data)
    sock.shutdown(socket.SHUT_WR)


# -- one process -------------------------------------------------------------


async def _emtcp_local(contender: str, chunk: int, total: int) -> tuple[float, int]:
    a, b = await _pairs.emtcp_pair()
    async with a, b:
        got = 0

        async def receive() -> None:
            nonlocal got
            with relaxing(contender):
                got = await _emtcp_drain(b, chunk)

        data = bytes(chunk)
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            with relaxing(contender):
                await _emtcp_send(a, data, total // chunk)
        return perf_counter() - start, got


async def _emtcp_trio_local(chunk: int, total: int) -> tuple[float, int]:
    # trio.SocketStream's loops over trio_emtcp sockets.
    a, b = await _pairs.emtcp_pair()
    return await _stream_over(a, b, chunk, total)


async def _stream_local(chunk: int, total: int) -> tuple[float, int]:
    a, b = await _pairs.stream_pair()
    return await _stream_over(a, b, chunk, total)


async def _stream_over(
    a: trio.abc.HalfCloseableStream,
    b: trio.abc.HalfCloseableStream,
    chunk: int,
    total: int,
) -> tuple[float, int]:
    async with a, b:
        got = 0

        async def receive() -> None:
            nonlocal got
            got = await _stream_drain(b, chunk)

        data = bytes(chunk)
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await _stream_send(a, data, total // chunk)
        return perf_counter() - start, got


async def _trio_socket_local(chunk: int, total: int) -> tuple[float, int]:
    a, b = await _pairs.trio_socket_pair()
    with a, b:
        got = 0

        async def receive() -> None:
            nonlocal got
            got = await _trio_socket_drain(b, chunk)

        data = bytes(chunk)
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await _trio_socket_send(a, data, total // chunk)
        return perf_counter() - start, got


async def _asyncio_local(chunk: int, total: int) -> tuple[float, int]:
    async with _pairs.asyncio_pair() as ((_, writer), (reader, _)):
        data = bytes(chunk)
        start = perf_counter()
        receiving = asyncio.ensure_future(_asyncio_drain(reader, chunk))
        try:
            await _asyncio_send(writer, data, total // chunk)
            got = await receiving
        except BaseException:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiving
            raise
        return perf_counter() - start, got


def _stdlib_local(chunk: int, total: int) -> tuple[float, int]:
    a, b = _pairs.stdlib_pair()
    with a, b:
        outcome: list[int | BaseException] = []

        def receive() -> None:
            try:
                outcome.append(_stdlib_drain(b, chunk))
            except BaseException as exc:
                outcome.append(exc)

        data = bytes(chunk)
        thread = threading.Thread(target=receive, name="bench-receiver")
        start = perf_counter()
        thread.start()
        try:
            _stdlib_send(a, data, total // chunk)
        except BaseException:
            # Wake the receiver, blocked in recv, so that join() returns.
            with contextlib.suppress(OSError):
                a.shutdown(socket.SHUT_RDWR)
            raise
        finally:
            thread.join()
        elapsed = perf_counter() - start
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return elapsed, result


def run_local(contender: str, chunk: int, total: int) -> Sample:
    """Transfer ``total`` bytes between two ends in this process.

    Raises:
      BenchError: the receiver got a different byte count.
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        seconds, got = trio.run(_emtcp_local, contender, chunk, total)
    elif contender == EMTCP_TRIO:
        seconds, got = trio.run(_emtcp_trio_local, chunk, total)
    elif contender == SOCKET_STREAM:
        seconds, got = trio.run(_stream_local, chunk, total)
    elif contender == TRIO_SOCKET:
        seconds, got = trio.run(_trio_socket_local, chunk, total)
    elif contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        seconds, got = _anyio_contender.bulk_local(chunk, total)
    elif contender in (ASYNCIO, UVLOOP):
        seconds, got = run_asyncio(contender, _asyncio_local(chunk, total))
    elif contender == UVLOOP_PROTOCOL:
        seconds, got = run_asyncio(contender, _protocol.bulk_local(chunk, total))
    elif contender == STDLIB:
        seconds, got = _stdlib_local(chunk, total)
    else:
        raise ValueError(f"contender: unknown, got {contender!r}")
    return _sample(f"bulk {contender}", seconds, got, total)


# -- two processes: the sender (here) ------------------------------------------


def _decode_count(raw: bytes | bytearray) -> int:
    return int.from_bytes(raw, "big")


async def _emtcp_remote(
    contender: str, port: int, chunk: int, total: int
) -> tuple[float, int]:
    sock = Socket()
    async with sock:
        sock.open("v4")
        sock.set_option("tcp_no_delay", True)
        await sock.connect(HOST, port)
        data = bytes(chunk)
        answer = bytearray(_COUNT_SIZE)
        start = perf_counter()
        with relaxing(contender):
            await _emtcp_send(sock, data, total // chunk)
            await stream.read_all(sock, answer)
        return perf_counter() - start, _decode_count(answer)


async def _emtcp_trio_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    return await _stream_send_over(await ip.dial(HOST, port), chunk, total)


async def _stream_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    return await _stream_send_over(await trio.open_tcp_stream(HOST, port), chunk, total)


async def _stream_send_over(
    s: trio.SocketStream | Socket, chunk: int, total: int
) -> tuple[float, int]:
    async with s:
        data = bytes(chunk)
        start = perf_counter()
        await _stream_send(s, data, total // chunk)
        answer = await _pairs.stream_read_exactly(s, _COUNT_SIZE)
        return perf_counter() - start, _decode_count(answer)


async def _trio_socket_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    sock = await _pairs.trio_socket_connect(port)
    with sock:
        data = bytes(chunk)
        answer = bytearray(_COUNT_SIZE)
        start = perf_counter()
        await _trio_socket_send(sock, data, total // chunk)
        await _pairs.trio_socket_read_exactly(sock, answer, memoryview(answer))
        return perf_counter() - start, _decode_count(answer)


async def _asyncio_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        _pairs.asyncio_nodelay(writer)
        data = bytes(chunk)
        start = perf_counter()
        await _asyncio_send(writer, data, total // chunk)
        answer = await _pairs.asyncio_read_exactly(reader, _COUNT_SIZE)
        return perf_counter() - start, _decode_count(answer)
    finally:
        await _pairs.asyncio_close(writer)


def _stdlib_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    with _pairs.stdlib_connect(port) as sock:
        data = bytes(chunk)
        answer = bytearray(_COUNT_SIZE)
        start = perf_counter()
        _stdlib_send(sock, data, total // chunk)
        _pairs.stdlib_read_exactly(sock, answer, memoryview(answer))
        return perf_counter() - start, _decode_count(answer)


def run_remote(contender: str, chunk: int, total: int, port: int) -> tuple[float, int]:
    """Send ``total`` bytes to a receiver worker listening on ``port``.

    Returns:
      The seconds from the first write to the receiver's answer, and the
      byte count the receiver answered.

    Raises:
      BenchError: the receiver closed without answering.
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        return trio.run(_emtcp_remote, contender, port, chunk, total)
    if contender == EMTCP_TRIO:
        return trio.run(_emtcp_trio_remote, port, chunk, total)
    if contender == SOCKET_STREAM:
        return trio.run(_stream_remote, port, chunk, total)
    if contender == TRIO_SOCKET:
        return trio.run(_trio_socket_remote, port, chunk, total)
    if contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        return _anyio_contender.bulk_remote(port, chunk, total)
    if contender in (ASYNCIO, UVLOOP):
        return run_asyncio(contender, _asyncio_remote(port, chunk, total))
    if contender == UVLOOP_PROTOCOL:
        return run_asyncio(contender, _protocol.bulk_remote(port, chunk, total))
    if contender == STDLIB:
        return _stdlib_remote(port, chunk, total)
    raise ValueError(f"contender: unknown, got {contender!r}")


def sample_remote(contender: str, seconds: float, got: int, total: int) -> Sample:
    """The sample of a two-process round, after checking the count.

    Raises:
      BenchError: the receiver got a different byte count.
    """
    return _sample(f"bulk (2 processes) {contender}", seconds, got, total)


# -- two processes: the receiver (in the worker) -------------------------------


async def _emtcp_receive(contender: str, chunk: int, announce: Announce) -> int:
    loopback = Address(HOST)
    async with Acceptor() as acceptor:
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen(BACKLOG)
        announce(acceptor.local_port)
        conn = await acceptor.accept()
    async with conn:
        conn.set_option("tcp_no_delay", True)
        with relaxing(contender):
            got = await _emtcp_drain(conn, chunk)
            await stream.write_all(conn, got.to_bytes(_COUNT_SIZE, "big"))
        return got


async def _emtcp_trio_receive(chunk: int, announce: Announce) -> int:
    async with ip.tcp.listen(HOST, 0, BACKLOG) as acceptor:
        announce(acceptor.local_port)
        conn = await acceptor.accept()
    return await _stream_receive_over(conn, chunk)


async def _stream_receive(chunk: int, announce: Announce) -> int:
    listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=BACKLOG)
    try:
        announce(listeners[0].socket.getsockname()[1])
        conn = await listeners[0].accept()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
    return await _stream_receive_over(conn, chunk)


async def _stream_receive_over(conn: trio.abc.HalfCloseableStream, chunk: int) -> int:
    async with conn:
        got = await _stream_drain(conn, chunk)
        await conn.send_all(got.to_bytes(_COUNT_SIZE, "big"))
        return got


async def _trio_socket_receive(chunk: int, announce: Announce) -> int:
    with await _pairs.trio_socket_listener() as listener:
        announce(listener.getsockname()[1])
        conn, _ = await listener.accept()
    with conn:
        nodelay(conn)
        got = await _trio_socket_drain(conn, chunk)
        answer = memoryview(got.to_bytes(_COUNT_SIZE, "big"))
        sent = 0
        while sent < _COUNT_SIZE:
            sent += await conn.send(answer[sent:])
        return got


async def _asyncio_receive(chunk: int, announce: Announce) -> int:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[_pairs.AsyncioEnd] = loop.create_future()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, HOST, 0, backlog=BACKLOG)
    try:
        announce(server.sockets[0].getsockname()[1])
        reader, writer = await accepted
        try:
            _pairs.asyncio_nodelay(writer)
            got = await _asyncio_drain(reader, chunk)
            writer.write(got.to_bytes(_COUNT_SIZE, "big"))
            await writer.drain()
        finally:
            await _pairs.asyncio_close(writer)
    finally:
        server.close()
        await server.wait_closed()
    return got


def _stdlib_receive(chunk: int, announce: Announce) -> int:
    with _pairs.stdlib_listener() as listener:
        announce(listener.getsockname()[1])
        conn, _ = listener.accept()
    with conn:
        nodelay(conn)
        got = _stdlib_drain(conn, chunk)
        conn.sendall(got.to_bytes(_COUNT_SIZE, "big"))
        return got


def receive_one(contender: str, chunk: int, announce: Announce) -> int:
    """Worker side: listen, ``announce(port)``, receive one transfer.

    Reads with ``chunk``-sized reads until end of stream, answers the count
    in 8 bytes (big-endian) and closes.

    Returns:
      The byte count received.

    Raises:
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        return trio.run(_emtcp_receive, contender, chunk, announce)
    if contender == EMTCP_TRIO:
        return trio.run(_emtcp_trio_receive, chunk, announce)
    if contender == SOCKET_STREAM:
        return trio.run(_stream_receive, chunk, announce)
    if contender == TRIO_SOCKET:
        return trio.run(_trio_socket_receive, chunk, announce)
    if contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        return _anyio_contender.bulk_receive(chunk, announce)
    if contender in (ASYNCIO, UVLOOP):
        return run_asyncio(contender, _asyncio_receive(chunk, announce))
    if contender == UVLOOP_PROTOCOL:
        return run_asyncio(contender, _protocol.bulk_receive(chunk, announce))
    if contender == STDLIB:
        return _stdlib_receive(chunk, announce)
    raise ValueError(f"contender: unknown, got {contender!r}")
