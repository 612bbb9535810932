"""The uvloop BufferedProtocol contender: callbacks into a buffer of one's own.

What a program on asyncio writes when streams are too slow for it: an
:class:`asyncio.BufferedProtocol` whose ``get_buffer`` hands the event loop
a ``bytearray`` to receive into (no ``bytes`` per read), and writes through
the transport with its flow control (``pause_writing``/``resume_writing``,
what ``StreamWriter.drain`` waits on).  It runs on uvloop (the loop is
chosen by :func:`._common.run_asyncio`).  Only the workloads whose shape a
protocol serves are written: bulk transfer, ping-pong and small requests;
a per-call read or a connection rate has no protocol equivalent that says
more than the streams contender.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

from ._common import BACKLOG, HOST, Announce, BenchError

perf_counter = time.perf_counter
_COUNT_SIZE = 8


class Endpoint(asyncio.BufferedProtocol):
    """One connection: receives into its own buffer, writes with flow control.

    ``on_data(view)`` gets each chunk received (a view of the buffer, valid
    only during the call); ``wanted(n)`` completes once ``n`` more bytes
    have arrived; ``closed`` completes at the peer's end of stream.
    """

    def __init__(
        self, size: int, on_data: Callable[[Endpoint, memoryview], None] | None = None
    ) -> None:
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._on_data = on_data
        self.transport: asyncio.Transport | None = None
        self.received = 0
        self._resume: asyncio.Future[None] | None = None
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None
        self._collected = bytearray()
        self.last = b""
        loop = asyncio.get_running_loop()
        self.made: asyncio.Future[Endpoint] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    # -- asyncio's callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not registered as an asyncio.Transport,
        # though it is one in all but name.
        self.transport = cast(asyncio.Transport, transport)
        self.made.set_result(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes
        if self._on_data is not None:
            self._on_data(self, self._view[:nbytes])
        if self._waiter is not None:
            self._want -= nbytes
            self._collected += self._view[:nbytes]
            if self._want <= 0:
                self.last = bytes(self._collected)
                self._waiter.set_result(None)
                self._waiter = None

    def eof_received(self) -> bool:
        if not self.closed.done():
            self.closed.set_result(self.received)
        # Half-closed, not closed: the receiver still answers the count.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.closed.done():
            self.closed.set_result(self.received)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(
                BenchError(f"connection lost after {self.received} bytes")
            )

    def pause_writing(self) -> None:
        self._resume = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._resume is not None:
            self._resume.set_result(None)
            self._resume = None

    # -- what the workloads call ---------------------------------------------

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write, then wait while the transport's buffer is over its limit."""
        assert self.transport is not None
        self.transport.write(data)
        if self._resume is not None:
            await self._resume

    def wanted(self, size: int) -> asyncio.Future[None]:
        """A future done once ``size`` more bytes have arrived."""
        waiter = asyncio.get_running_loop().create_future()
        self._want, self._waiter = size, waiter
        self._collected = bytearray()
        return waiter


async def _connect(port: int, size: int) -> Endpoint:
    loop = asyncio.get_running_loop()
    _, endpoint = await loop.create_connection(lambda: Endpoint(size), HOST, port)
    return endpoint


async def _pair(
    size: int, on_server_data: Callable[[Endpoint, memoryview], None] | None = None
) -> tuple[asyncio.Server, Endpoint, Endpoint]:
    """A server with one accepted connection, and the client connected to it."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Endpoint] = loop.create_future()

    def factory() -> Endpoint:
        endpoint = Endpoint(size, on_server_data)
        endpoint.made.add_done_callback(lambda f: accepted.set_result(f.result()))
        return endpoint

    server = await loop.create_server(factory, HOST, 0, backlog=BACKLOG)
    client = await _connect(server.sockets[0].getsockname()[1], size)
    return server, client, await accepted


def _close(*endpoints: Endpoint) -> None:
    for endpoint in endpoints:
        if endpoint.transport is not None:
            endpoint.transport.close()


async def _closed(endpoint: Endpoint) -> None:
    """Close, and wait until what was written is flushed and it is gone."""
    _close(endpoint)
    await endpoint.lost


# -- bulk ----------------------------------------------------------------------


async def _send(endpoint: Endpoint, chunk: int, total: int) -> None:
    data = bytes(chunk)
    write = endpoint.write
    for _ in range(total // chunk):
        await write(data)
    assert endpoint.transport is not None
    endpoint.transport.write_eof()


async def bulk_local(chunk: int, total: int) -> tuple[float, int]:
    """Both ends in this process; the receiver reads ``chunk`` at a time."""
    server, client, served = await _pair(chunk)
    try:
        start = perf_counter()
        await _send(client, chunk, total)
        got = await served.closed
        return perf_counter() - start, got
    finally:
        _close(client, served)
        server.close()


async def bulk_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    """The sending side of the two-process bulk workload."""
    client = await _connect(port, _COUNT_SIZE)
    try:
        answer = client.wanted(_COUNT_SIZE)
        start = perf_counter()
        await _send(client, chunk, total)
        await answer
        return perf_counter() - start, int.from_bytes(client.last, "big")
    finally:
        _close(client)


async def bulk_receive(chunk: int, announce: Announce) -> int:
    """The worker's side: receive one transfer, answer its byte count."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Endpoint] = loop.create_future()

    def factory() -> Endpoint:
        endpoint = Endpoint(chunk)
        endpoint.made.add_done_callback(lambda f: accepted.set_result(f.result()))
        return endpoint

    server = await loop.create_server(factory, HOST, 0, backlog=BACKLOG)
    try:
        announce(server.sockets[0].getsockname()[1])
        conn = await accepted
        got = await conn.closed
        await conn.write(got.to_bytes(_COUNT_SIZE, "big"))
        await _closed(conn)
        return got
    finally:
        server.close()


# -- ping-pong -------------------------------------------------------------------


def _echo(size: int) -> Callable[[Endpoint, memoryview], None]:
    """A server's data callback: send each ``size`` bytes back as they come."""
    pending = bytearray()

    def on_data(endpoint: Endpoint, view: memoryview) -> None:
        pending.extend(view)
        if len(pending) >= size:
            assert endpoint.transport is not None
            endpoint.transport.write(bytes(pending[:size]))
            del pending[:size]

    return on_data


async def _round_trips(
    client: Endpoint, message: bytes, count: int
) -> tuple[float, int, bytes]:
    size = len(message)
    got = 0
    start = perf_counter()
    for _ in range(count):
        back = client.wanted(size)
        await client.write(message)
        await back
        got += size
    return perf_counter() - start, got, client.last


async def pingpong(message: bytes, count: int) -> tuple[float, int, bytes]:
    """Round trips of ``message`` with an echo server in this process."""
    size = len(message)
    server, client, served = await _pair(max(size, 1), _echo(size))
    try:
        return await _round_trips(client, message, count)
    finally:
        _close(client, served)
        server.close()


async def pingpong_remote(
    port: int, message: bytes, count: int
) -> tuple[float, int, bytes]:
    """The client of the two-process ping-pong."""
    client = await _connect(port, max(len(message), 1))
    try:
        return await _round_trips(client, message, count)
    finally:
        _close(client)


async def echo_one(size: int, announce: Announce) -> int:
    """The worker's echo server: one connection, until its end of stream."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Endpoint] = loop.create_future()

    def factory() -> Endpoint:
        endpoint = Endpoint(max(size, 1), _echo(size))
        endpoint.made.add_done_callback(lambda f: accepted.set_result(f.result()))
        return endpoint

    server = await loop.create_server(factory, HOST, 0, backlog=BACKLOG)
    try:
        announce(server.sockets[0].getsockname()[1])
        conn = await accepted
        echoed = await conn.closed
        await _closed(conn)
        return echoed
    finally:
        server.close()


# -- small requests --------------------------------------------------------------


async def request(
    head: bytes, body: bytes, reply: bytes, count: int
) -> tuple[list[float], bytes]:
    """Requests of two writes, each answered by ``reply`` once complete."""
    request_size = len(head) + len(body)
    pending = 0

    def serve(endpoint: Endpoint, view: memoryview) -> None:
        nonlocal pending
        pending += len(view)
        while pending >= request_size:
            pending -= request_size
            assert endpoint.transport is not None
            endpoint.transport.write(reply)

    server, client, served = await _pair(64, serve)
    try:
        latencies = []
        for _ in range(count):
            start = perf_counter()
            back = client.wanted(len(reply))
            await client.write(head)
            await client.write(body)
            await back
            latencies.append(perf_counter() - start)
        return latencies, client.last
    finally:
        _close(client, served)
        server.close()
