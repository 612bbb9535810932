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

from .. import stream
from . import _pairs
from ._common import (
    ASYNCIO,
    EMTCP,
    SOCKET_STREAM,
    TRIO_SOCKET,
    BenchError,
    Sample,
    check_count,
)

perf_counter = time.perf_counter


def _message(size: int) -> bytes:
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


async def _emtcp(size: int, count: int) -> tuple[float, int, bytes]:
    a, b = await _pairs.emtcp_pair()
    async with a, b:
        write_all = stream.write_all
        read_exactly = _pairs.emtcp_read_exactly

        async def echo() -> None:
            buf = bytearray(size)
            view = memoryview(buf)
            for _ in range(count):
                await read_exactly(b, buf, view)
                await write_all(b, buf)

        message = _message(size)
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        start = perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            for _ in range(count):
                await write_all(a, message)
                await read_exactly(a, buf, view)
                got += len(buf)
        return perf_counter() - start, got, bytes(buf)


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
    if contender == EMTCP:
        seconds, got, last = trio.run(_emtcp, size, count)
    elif contender == SOCKET_STREAM:
        seconds, got, last = trio.run(_stream, size, count)
    elif contender == TRIO_SOCKET:
        seconds, got, last = trio.run(_trio_socket, size, count)
    elif contender == ASYNCIO:
        seconds, got, last = asyncio.run(_asyncio(size, count))
    else:
        seconds, got, last = _stdlib(size, count)
    check_count(f"ping-pong {contender}", got, size * count)
    if last != _message(size):
        raise BenchError(f"ping-pong {contender}: the echo differs from the message")
    return Sample(value=count / seconds, seconds=seconds)
