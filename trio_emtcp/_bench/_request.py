"""Small requests: two small writes, then a small reply, ``count`` times.

The client writes a request as two writes, a head then a body (as HTTP
clients write headers and then the body); the server reads the whole
request and writes a small reply; the client reads the reply.  Each
request is timed on its own, so a round gives both the request rate (the
row's value) and the median latency of one request (an extra figure).

This is the exchange that Nagle's algorithm and delayed acknowledgements
turn into a ~40 ms wait per request on Linux loopback: the second write
waits for the acknowledgement of the first, which the server delays while
it waits for the rest of the request.  So the connections come from each
contender's own "Trio-style" helpers, with nothing set by hand where the
helper is expected to do it: trio_emtcp's ``ip.tcp.listen`` and
``ip.dial`` (TCP_NODELAY on, SPEC §7), ``trio.open_tcp_listeners`` and
``trio.open_tcp_stream`` (``SocketStream`` sets it), asyncio's
``start_server``/``open_connection`` (asyncio sets it).  Raw
``trio.socket`` and the blocking stdlib socket have no such helper: their
users set TCP_NODELAY themselves, and so does this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable

import trio

from .. import EndOfFile, ip, stream
from . import _pairs, _protocol
from ._common import (
    ANYIO,
    ASYNCIO,
    BACKLOG,
    EMTCP,
    EMTCP_RELAXED,
    EMTCP_TRIO,
    HOST,
    SOCKET_STREAM,
    STDLIB,
    TRIO_SOCKET,
    UVLOOP,
    UVLOOP_PROTOCOL,
    BenchError,
    Sample,
    relaxing,
    run_asyncio,
)

perf_counter = time.perf_counter

HEAD = b"POST /r HTTP/1.1\r\n"  # 18 bytes
BODY = b"content-length: 30\r\n\r\n" + b"x" * 8  # 30 bytes
REQUEST_SIZE = len(HEAD) + len(BODY)
REPLY = b"HTTP/1.1 200 OK\r\nok\r\n"
REPLY_SIZE = len(REPLY)

# (the latency of each request in seconds, the last reply)
Outcome = tuple[list[float], bytes]


# -- trio_emtcp: Emilua's stream functions, or the Trio stream methods --------


async def _emtcp_exchange(
    count: int,
    client_request: Callable[[ip.tcp.Socket], Awaitable[bytes]],
    serve: Callable[[ip.tcp.Socket], Awaitable[None]],
    contender: str = EMTCP,
) -> Outcome:
    async with ip.tcp.listen(HOST, 0, BACKLOG) as acceptor:
        async with trio.open_nursery() as nursery:

            async def server() -> None:
                async with await acceptor.accept() as conn:
                    with relaxing(contender):
                        await serve(conn)

            nursery.start_soon(server)
            async with await ip.dial(HOST, acceptor.local_port) as sock:
                latencies = []
                reply = b""
                with relaxing(contender):
                    for _ in range(count):
                        start = perf_counter()
                        reply = await client_request(sock)
                        latencies.append(perf_counter() - start)
                sock.shutdown("send")
        return latencies, reply


async def _emtcp(contender: str, count: int) -> Outcome:
    write_all = stream.write_all
    read_all = stream.read_all

    async def request(sock: ip.tcp.Socket) -> bytes:
        await write_all(sock, HEAD)
        await write_all(sock, BODY)
        reply = bytearray(REPLY_SIZE)
        await read_all(sock, reply)
        return bytes(reply)

    async def serve(conn: ip.tcp.Socket) -> None:
        buf = bytearray(REQUEST_SIZE)
        with contextlib.suppress(EndOfFile):
            while True:
                await read_all(conn, buf)
                await write_all(conn, REPLY)

    return await _emtcp_exchange(count, request, serve, contender)


async def _receive_exactly(s: trio.abc.ReceiveStream, size: int) -> bytes:
    data = bytes(await s.receive_some(size))
    while len(data) < size:
        more = await s.receive_some(size - len(data))
        if not more:
            raise BenchError(f"peer closed the connection after {len(data)} bytes")
        data += more
    return data


async def _emtcp_trio(count: int) -> Outcome:
    async def request(sock: ip.tcp.Socket) -> bytes:
        await sock.send_all(HEAD)
        await sock.send_all(BODY)
        return await _receive_exactly(sock, REPLY_SIZE)

    async def serve(conn: ip.tcp.Socket) -> None:
        while await conn.receive_some(1):  # b"" at the client's end
            await _receive_exactly(conn, REQUEST_SIZE - 1)
            await conn.send_all(REPLY)

    return await _emtcp_exchange(count, request, serve)


# -- trio.SocketStream --------------------------------------------------------


async def _stream(count: int) -> Outcome:
    listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=BACKLOG)
    port: int = listeners[0].socket.getsockname()[1]
    try:
        async with trio.open_nursery() as nursery:

            async def server() -> None:
                async with await listeners[0].accept() as conn:
                    while await conn.receive_some(1):
                        await _receive_exactly(conn, REQUEST_SIZE - 1)
                        await conn.send_all(REPLY)

            nursery.start_soon(server)
            async with await trio.open_tcp_stream(HOST, port) as s:
                latencies = []
                reply = b""
                for _ in range(count):
                    start = perf_counter()
                    await s.send_all(HEAD)
                    await s.send_all(BODY)
                    reply = await _receive_exactly(s, REPLY_SIZE)
                    latencies.append(perf_counter() - start)
                await s.send_eof()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
    return latencies, reply


# -- raw trio.socket ----------------------------------------------------------


async def _trio_socket(count: int) -> Outcome:
    a, b = await _pairs.trio_socket_pair()  # TCP_NODELAY set by hand
    with a, b:

        async def send_all(sock: trio.socket.SocketType, data: bytes) -> None:
            view = memoryview(data)
            sent = 0
            while sent < len(data):
                sent += await sock.send(view[sent:])

        async def server() -> None:
            buf = bytearray(REQUEST_SIZE)
            view = memoryview(buf)
            for _ in range(count):
                await _pairs.trio_socket_read_exactly(b, buf, view)
                await send_all(b, REPLY)

        latencies = []
        reply = bytearray(REPLY_SIZE)
        view = memoryview(reply)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            for _ in range(count):
                start = perf_counter()
                await send_all(a, HEAD)
                await send_all(a, BODY)
                await _pairs.trio_socket_read_exactly(a, reply, view)
                latencies.append(perf_counter() - start)
        return latencies, bytes(reply)


# -- asyncio streams ----------------------------------------------------------


async def _asyncio(count: int) -> Outcome:
    # asyncio_pair sets TCP_NODELAY again, as asyncio itself does (3.7+).
    async with _pairs.asyncio_pair() as ((c_reader, c_writer), (s_reader, s_writer)):

        async def server() -> None:
            for _ in range(count):
                await s_reader.readexactly(REQUEST_SIZE)
                s_writer.write(REPLY)
                await s_writer.drain()

        serving = asyncio.ensure_future(server())
        try:
            latencies = []
            reply = b""
            for _ in range(count):
                start = perf_counter()
                c_writer.write(HEAD)
                await c_writer.drain()
                c_writer.write(BODY)
                await c_writer.drain()
                reply = await c_reader.readexactly(REPLY_SIZE)
                latencies.append(perf_counter() - start)
            await serving
        except BaseException:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await serving
            raise
        return latencies, reply


# -- blocking stdlib socket ---------------------------------------------------


def _stdlib(count: int) -> Outcome:
    a, b = _pairs.stdlib_pair()  # TCP_NODELAY set by hand
    with a, b:
        failure: list[BaseException] = []

        def server() -> None:
            buf = bytearray(REQUEST_SIZE)
            view = memoryview(buf)
            try:
                for _ in range(count):
                    _pairs.stdlib_read_exactly(b, buf, view)
                    b.sendall(REPLY)
            except BaseException as exc:
                failure.append(exc)
                with contextlib.suppress(OSError):
                    b.shutdown(socket.SHUT_RDWR)

        thread = threading.Thread(target=server, name="bench-request-server")
        thread.start()
        latencies = []
        reply = bytearray(REPLY_SIZE)
        view = memoryview(reply)
        try:
            for _ in range(count):
                start = perf_counter()
                a.sendall(HEAD)
                a.sendall(BODY)
                _pairs.stdlib_read_exactly(a, reply, view)
                latencies.append(perf_counter() - start)
        finally:
            if len(latencies) < count:
                with contextlib.suppress(OSError):
                    a.shutdown(socket.SHUT_RDWR)
            thread.join()
    if failure:
        raise failure[0]
    return latencies, bytes(reply)


def run(contender: str, count: int) -> Sample:
    """Make ``count`` small requests on one connection.

    Returns:
      A sample in requests per second, with the median latency of one
      request in microseconds as the extra figure ``latency_us``.

    Raises:
      BenchError: a reply differs from what the server sent, or a request
        went missing.
      OSError: a socket operation failed.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        latencies, reply = trio.run(_emtcp, contender, count)
    elif contender == EMTCP_TRIO:
        latencies, reply = trio.run(_emtcp_trio, count)
    elif contender == SOCKET_STREAM:
        latencies, reply = trio.run(_stream, count)
    elif contender == TRIO_SOCKET:
        latencies, reply = trio.run(_trio_socket, count)
    elif contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        latencies, reply = _anyio_contender.request(HEAD, BODY, REPLY, count)
    elif contender in (ASYNCIO, UVLOOP):
        latencies, reply = run_asyncio(contender, _asyncio(count))
    elif contender == UVLOOP_PROTOCOL:
        latencies, reply = run_asyncio(
            contender, _protocol.request(HEAD, BODY, REPLY, count)
        )
    elif contender == STDLIB:
        latencies, reply = _stdlib(count)
    else:
        raise ValueError(f"contender: unknown, got {contender!r}")
    if len(latencies) != count or reply != REPLY:
        raise BenchError(
            f"request {contender}: {len(latencies)} of {count} requests, "
            f"last reply {reply!r}"
        )
    seconds = sum(latencies)
    return Sample(
        value=count / seconds,
        seconds=seconds,
        extra={"latency_us": statistics.median(latencies) * 1e6},
    )
