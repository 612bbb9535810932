"""Per-call cost of a 1-byte read when the data is already there (SPEC §8).

This is the fast path alone: every read finds its byte in the kernel's
buffer, so the figure is the cost of one call (a Trio checkpoint plus the
syscall) and nothing else.  SPEC §8 asks that trio_emtcp's ``read_some``
cost no more than raw ``trio.socket``'s ``recv_into``.  asyncio's
``StreamReader.read(1)`` is served from its own buffer after the first
call, so its figure is a user-space buffer read, shown for context.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import trio

from . import _pairs
from ._common import (
    ANYIO,
    ASYNCIO,
    EMTCP,
    EMTCP_RELAXED,
    SOCKET_STREAM,
    STDLIB,
    TRIO_SOCKET,
    UVLOOP,
    Sample,
    check_count,
    relaxing,
    run_asyncio,
)

perf_counter = time.perf_counter


def _payload(count: int) -> bytes:
    return b"r" * count


async def _emtcp(contender: str, count: int) -> tuple[float, int]:
    a, b = await _pairs.emtcp_pair()
    with contextlib.closing(a), contextlib.closing(b):
        await _fill(a.trio_socket, count)
        buf = bytearray(1)
        read_some = b.read_some
        got = 0
        with relaxing(contender):
            start = perf_counter()
            for _ in range(count):
                got += await read_some(buf)
            return perf_counter() - start, got


async def _stream(count: int) -> tuple[float, int]:
    a, b = await _pairs.stream_pair()
    async with a, b:
        await _fill(a.socket, count)
        receive_some = b.receive_some
        got = 0
        start = perf_counter()
        for _ in range(count):
            got += len(await receive_some(1))
        return perf_counter() - start, got


async def _trio_socket(count: int) -> tuple[float, int]:
    a, b = await _pairs.trio_socket_pair()
    with a, b:
        await _fill(a, count)
        buf = bytearray(1)
        recv_into = b.recv_into
        got = 0
        start = perf_counter()
        for _ in range(count):
            got += await recv_into(buf)
        return perf_counter() - start, got


async def _fill(sender: trio.socket.SocketType, count: int) -> None:
    """Queue ``count`` bytes for the reader, then let them arrive."""
    view = memoryview(_payload(count))
    sent = 0
    while sent < count:
        sent += await sender.send(view[sent:])
    await trio.sleep(0.01)


async def _asyncio(count: int) -> tuple[float, int]:
    async with _pairs.asyncio_pair() as ((_, writer), (reader, _)):
        writer.write(_payload(count))
        await writer.drain()
        await asyncio.sleep(0.01)
        read = reader.read
        got = 0
        start = perf_counter()
        for _ in range(count):
            got += len(await read(1))
        return perf_counter() - start, got


def _stdlib(count: int) -> tuple[float, int]:
    client, server = _pairs.stdlib_pair()
    with client, server:
        client.sendall(_payload(count))
        time.sleep(0.01)
        buf = bytearray(1)
        recv_into = server.recv_into
        got = 0
        start = perf_counter()
        for _ in range(count):
            got += recv_into(buf)
        return perf_counter() - start, got


def run(contender: str, count: int) -> Sample:
    """Make ``count`` 1-byte reads with the data already queued.

    Returns:
      A sample in calls per second.

    Raises:
      BenchError: a wrong byte count.
    """
    if contender in (EMTCP, EMTCP_RELAXED):
        seconds, got = trio.run(_emtcp, contender, count)
    elif contender == SOCKET_STREAM:
        seconds, got = trio.run(_stream, count)
    elif contender == TRIO_SOCKET:
        seconds, got = trio.run(_trio_socket, count)
    elif contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        seconds, got = _anyio_contender.percall(count)
    elif contender in (ASYNCIO, UVLOOP):
        seconds, got = run_asyncio(contender, _asyncio(count))
    elif contender == STDLIB:
        seconds, got = _stdlib(count)
    else:
        raise ValueError(f"contender: unknown, got {contender!r}")
    check_count(f"per-call read {contender}", got, count)
    return Sample(value=count / seconds, seconds=seconds)
