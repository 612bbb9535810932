"""The anyio contender: anyio's TCP streams on its trio backend.

What a program written for anyio uses on Trio: ``anyio.connect_tcp``,
``anyio.create_tcp_listener`` and the streams' ``send``/``receive``
(``receive`` allocates the ``bytes`` it returns, as ``SocketStream``'s
``receive_some`` does).  anyio sets TCP_NODELAY on the connections it
makes and accepts.  Each function runs its own ``anyio.run(...,
backend="trio")``.  anyio is optional: the workload modules import this
module only to run this contender.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.abc

from ._common import BACKLOG, ECHO_MESSAGE, HOST, Announce, BenchError

perf_counter = time.perf_counter
T = TypeVar("T")
_COUNT_SIZE = 8
SIZE = len(ECHO_MESSAGE)

# (seconds, bytes echoed by the server, bytes the client got back)
Outcome = tuple[float, int, int]


def _run(main: Callable[..., Awaitable[T]], *args: Any) -> T:
    return anyio.run(main, *args, backend="trio")


async def _receive_exactly(s: anyio.abc.ByteReceiveStream, size: int) -> bytes:
    data = await s.receive(size)
    while len(data) < size:
        try:
            data += await s.receive(size - len(data))
        except anyio.EndOfStream:
            raise BenchError(
                f"peer closed the connection after {len(data)} bytes"
            ) from None
    return data


async def _drain(s: anyio.abc.ByteReceiveStream, chunk: int) -> int:
    receive = s.receive
    got = 0
    try:
        while True:
            got += len(await receive(chunk))
    except anyio.EndOfStream:
        return got


async def _send(s: anyio.abc.ByteStream, chunk: int, total: int) -> None:
    data = bytes(chunk)
    send = s.send
    for _ in range(total // chunk):
        await send(data)
    await s.send_eof()


async def _listener() -> tuple[anyio.abc.SocketListener, int]:
    multi = await anyio.create_tcp_listener(
        local_host=HOST, local_port=0, backlog=BACKLOG
    )
    listener = multi.listeners[0]
    assert isinstance(listener, anyio.abc.SocketListener)
    return listener, listener.extra(anyio.abc.SocketAttribute.local_port)


async def _pair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    listener, port = await _listener()
    async with listener:
        client = await anyio.connect_tcp(HOST, port)
        return client, await listener.accept()


# -- bulk ----------------------------------------------------------------------


async def _bulk_local(chunk: int, total: int) -> tuple[float, int]:
    client, server = await _pair()
    async with client, server:
        got = 0

        async def receive() -> None:
            nonlocal got
            got = await _drain(server, chunk)

        start = perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            await _send(client, chunk, total)
        return perf_counter() - start, got


def bulk_local(chunk: int, total: int) -> tuple[float, int]:
    """Both ends in this process."""
    return _run(_bulk_local, chunk, total)


async def _bulk_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    async with await anyio.connect_tcp(HOST, port) as client:
        start = perf_counter()
        await _send(client, chunk, total)
        answer = await _receive_exactly(client, _COUNT_SIZE)
        return perf_counter() - start, int.from_bytes(answer, "big")


def bulk_remote(port: int, chunk: int, total: int) -> tuple[float, int]:
    """The sending side of the two-process bulk workload."""
    return _run(_bulk_remote, port, chunk, total)


async def _bulk_receive(chunk: int, announce: Announce) -> int:
    listener, port = await _listener()
    async with listener:
        announce(port)
        conn = await listener.accept()
    async with conn:
        got = await _drain(conn, chunk)
        await conn.send(got.to_bytes(_COUNT_SIZE, "big"))
        return got


def bulk_receive(chunk: int, announce: Announce) -> int:
    """The worker's side: receive one transfer, answer its byte count."""
    return _run(_bulk_receive, chunk, announce)


# -- ping-pong -------------------------------------------------------------------


async def _round_trips(
    s: anyio.abc.ByteStream, message: bytes, count: int
) -> tuple[float, int, bytes]:
    size = len(message)
    last = b""
    got = 0
    start = perf_counter()
    for _ in range(count):
        await s.send(message)
        last = await _receive_exactly(s, size)
        got += len(last)
    return perf_counter() - start, got, last


async def _echo(s: anyio.abc.ByteStream, size: int) -> int:
    echoed = 0
    try:
        while True:
            data = await _receive_exactly(s, size)
            await s.send(data)
            echoed += len(data)
    except (anyio.EndOfStream, BenchError):
        return echoed


async def _pingpong(message: bytes, count: int) -> tuple[float, int, bytes]:
    client, server = await _pair()
    async with client, server:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_echo, server, len(message))
            outcome = await _round_trips(client, message, count)
            await client.send_eof()
        return outcome


def pingpong(message: bytes, count: int) -> tuple[float, int, bytes]:
    """Round trips of ``message`` with an echo task in this process."""
    return _run(_pingpong, message, count)


async def _pingpong_remote(
    port: int, message: bytes, count: int
) -> tuple[float, int, bytes]:
    async with await anyio.connect_tcp(HOST, port) as client:
        outcome = await _round_trips(client, message, count)
        await client.send_eof()
        return outcome


def pingpong_remote(port: int, message: bytes, count: int) -> tuple[float, int, bytes]:
    """The client of the two-process ping-pong."""
    return _run(_pingpong_remote, port, message, count)


async def _echo_one(size: int, announce: Announce) -> int:
    listener, port = await _listener()
    async with listener:
        announce(port)
        conn = await listener.accept()
    async with conn:
        return await _echo(conn, size)


def echo_one(size: int, announce: Announce) -> int:
    """The worker's echo server: one connection, until its end of stream."""
    return _run(_echo_one, size, announce)


# -- per call --------------------------------------------------------------------


async def _percall(count: int) -> tuple[float, int]:
    client, server = await _pair()
    async with client, server:
        await client.send(b"r" * count)
        await anyio.sleep(0.01)
        receive = server.receive
        got = 0
        start = perf_counter()
        for _ in range(count):
            got += len(await receive(1))
        return perf_counter() - start, got


def percall(count: int) -> tuple[float, int]:
    """``count`` 1-byte receives with the data already queued."""
    return _run(_percall, count)


# -- connections -----------------------------------------------------------------


async def _connect(count: int) -> Outcome:
    echoed = 0
    all_served = anyio.Event()
    listener, port = await _listener()

    async def handle(conn: anyio.abc.SocketStream) -> None:
        nonlocal echoed
        async with conn:
            await conn.send(await _receive_exactly(conn, SIZE))
            echoed += SIZE
        if echoed == SIZE * count:
            all_served.set()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        got = 0
        start = perf_counter()
        for _ in range(count):
            async with await anyio.connect_tcp(HOST, port) as client:
                await client.send(ECHO_MESSAGE)
                got += len(await _receive_exactly(client, SIZE))
        await all_served.wait()
        elapsed = perf_counter() - start
        tg.cancel_scope.cancel()
    return elapsed, echoed, got


def connect(count: int) -> Outcome:
    """``count`` connections one after the other, each echoing once."""
    return _run(_connect, count)


async def _concurrent(count: int) -> Outcome:
    listener, port = await _listener()
    all_back = anyio.Event()
    all_closed = anyio.Event()
    state = {"echoed": 0, "got": 0, "closed": 0, "start": 0.0, "end": 0.0}

    async def handle(conn: anyio.abc.SocketStream) -> None:
        async with conn:
            await conn.send(await _receive_exactly(conn, SIZE))
            state["echoed"] += SIZE
            with contextlib.suppress(anyio.EndOfStream):
                await conn.receive(SIZE)
        state["closed"] += 1
        if state["closed"] == count:
            all_closed.set()

    async def client() -> None:
        async with await anyio.connect_tcp(HOST, port) as conn:
            await conn.send(ECHO_MESSAGE)
            # Not "+= await ...": that reads the count before the await,
            # and other clients update it meanwhile.
            back = await _receive_exactly(conn, SIZE)
            state["got"] += len(back)
            if state["got"] == SIZE * count:
                state["end"] = perf_counter()
                all_back.set()
            await all_back.wait()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        state["start"] = perf_counter()
        async with anyio.create_task_group() as clients:
            for _ in range(count):
                clients.start_soon(client)
        await all_closed.wait()
        tg.cancel_scope.cancel()
    return state["end"] - state["start"], int(state["echoed"]), int(state["got"])


def concurrent(count: int) -> Outcome:
    """``count`` connections open at once, one echo on each."""
    return _run(_concurrent, count)


# -- small requests --------------------------------------------------------------


async def _request(
    head: bytes, body: bytes, reply: bytes, count: int
) -> tuple[list[float], bytes]:
    client, server = await _pair()
    request_size = len(head) + len(body)

    async def serve() -> None:
        try:
            while True:
                await _receive_exactly(server, request_size)
                await server.send(reply)
        except (anyio.EndOfStream, BenchError):
            return

    async with client, server, anyio.create_task_group() as tg:
        tg.start_soon(serve)
        latencies = []
        last = b""
        for _ in range(count):
            start = perf_counter()
            await client.send(head)
            await client.send(body)
            last = await _receive_exactly(client, len(reply))
            latencies.append(perf_counter() - start)
        await client.send_eof()
    return latencies, last


def request(
    head: bytes, body: bytes, reply: bytes, count: int
) -> tuple[list[float], bytes]:
    """Requests of two writes, each answered by ``reply``."""
    return _run(_request, head, body, reply, count)
