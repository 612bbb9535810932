"""Relay: the bytes go through a relay process between client and server.

Three processes on the loopback: the client (this process), a relay (a
worker of the contender) and a server (a worker too).  Only the relay
differs between the contenders; both ends are the same blocking stdlib
socket code for every contender, the cheapest ends Python has, so that
they are not what is measured:

``trio_emtcp``
    accepts with :func:`trio_emtcp.ip.tcp.listen`, dials the server with
    :func:`trio_emtcp.ip.tcp.dial` and runs
    ``await trio_emtcp.stream.relay(client, server)`` (zero-copy between
    the two Sockets on Linux, half-closes passed on).
``trio.SocketStream``
    accepts from :func:`trio.open_tcp_listeners`, dials with
    :func:`trio.open_tcp_stream`, and runs two tasks, each ``while data :=
    await src.receive_some(65536): await dst.send_all(data)`` and then
    ``await dst.send_eof()``: what its users write.

Two shapes:

*bulk*: the client writes ``total`` bytes in 1 MiB writes and shuts its
sending side down; the server (the stdlib receiver of :mod:`._bulk`) reads
until the end of stream, answers the count in 8 bytes and closes.  The time
runs from the first write to that answer, as in the two-process bulk
workloads.  MiB/s.

*ping-pong*: the client writes a ``size``-byte message and reads it back,
``count`` times; the server is the stdlib echo of :mod:`._pingpong`.
Round trips/s.

After the timed part the client shuts its side down and waits for the end
of stream the relay passes back, so every relay ends cleanly and reports
what it moved each way: the client, the server and the relay's own counts
must all agree.
"""

from __future__ import annotations

import socket
import time

import trio

from .. import ip, stream
from . import _pairs
from ._common import (
    BACKLOG,
    EMTCP,
    HOST,
    MIB,
    SOCKET_STREAM,
    Announce,
    BenchError,
    Sample,
    check_count,
)

perf_counter = time.perf_counter

#: The relay contenders, in table order.
CONTENDERS = (EMTCP, SOCKET_STREAM)

#: The client's writes and the server's reads in the bulk shape.
CHUNK = MIB

#: The message of the ping-pong shape.
MESSAGE_SIZE = 64

#: What ``trio.SocketStream`` users pass to ``receive_some`` in a relay.
STREAM_CHUNK = 65536

# The bulk server answers its byte count in this many bytes (as _bulk).
_COUNT_SIZE = 8


# -- the relays (in a worker) ----------------------------------------------------


async def _emtcp_relay_one(target: int, announce: Announce) -> tuple[int, int]:
    async with ip.tcp.listen(HOST, 0, BACKLOG) as acceptor:
        announce(acceptor.local_port)
        client = await acceptor.accept()
    async with client:
        server = await ip.tcp.dial(HOST, target)
        async with server:
            return await stream.relay(client, server)


async def _stream_relay_one(target: int, announce: Announce) -> tuple[int, int]:
    listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=BACKLOG)
    try:
        announce(listeners[0].socket.getsockname()[1])
        client = await listeners[0].accept()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
    async with client:
        server = await trio.open_tcp_stream(HOST, target)
        async with server:
            counts = [0, 0]

            async def one_way(
                i: int, src: trio.SocketStream, dst: trio.SocketStream
            ) -> None:
                while data := await src.receive_some(STREAM_CHUNK):
                    await dst.send_all(data)
                    counts[i] += len(data)
                await dst.send_eof()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(one_way, 0, client, server)
                nursery.start_soon(one_way, 1, server, client)
            return counts[0], counts[1]


def relay_one(contender: str, target: int, announce: Announce) -> tuple[int, int]:
    """Worker side: listen, ``announce(port)``, relay one connection.

    Accepts one client, dials ``HOST:target`` and copies both ways until
    both directions have ended (each end of stream passed on as a
    half-close), then closes both connections.

    Returns:
      The bytes moved client to server, and server to client.

    Raises:
      ValueError: ``contender`` has no relay.
      OSError: a socket operation failed.
    """
    if contender == EMTCP:
        return trio.run(_emtcp_relay_one, target, announce)
    if contender == SOCKET_STREAM:
        return trio.run(_stream_relay_one, target, announce)
    raise ValueError(f"contender: unknown, got {contender!r}")


def parse_counts(text: str) -> tuple[int, int]:
    """A relay worker's ``ok`` answer, ``"A B"``, as ``(A, B)``.

    Raises:
      BenchError: not two integers.
    """
    parts = text.split()
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise BenchError(f"relay: expected two byte counts, got {text!r}")
    return int(parts[0]), int(parts[1])


# -- the client (here) -----------------------------------------------------------


def _finish(sock: socket.socket) -> None:
    """Shut the sending side down, then wait for the relay's end of stream.

    Raises:
      BenchError: bytes came instead of the end of stream.
    """
    sock.shutdown(socket.SHUT_WR)
    extra = sock.recv(1)
    if extra:
        raise BenchError("relay client: bytes after the last answer")


def run_bulk(chunk: int, total: int, port: int) -> tuple[float, int]:
    """Send ``total`` bytes in ``chunk`` writes through the relay on ``port``.

    Returns:
      The seconds from the first write to the server's answer, and the
      count the server answered.

    Raises:
      BenchError: the connection ended early, or more bytes came.
      OSError: a socket operation failed.
    """
    with _pairs.stdlib_connect(port) as sock:
        data = bytes(chunk)
        answer = bytearray(_COUNT_SIZE)
        sendall = sock.sendall
        start = perf_counter()
        for _ in range(total // chunk):
            sendall(data)
        sock.shutdown(socket.SHUT_WR)
        _pairs.stdlib_read_exactly(sock, answer, memoryview(answer))
        elapsed = perf_counter() - start
        if sock.recv(1):
            raise BenchError("relay client: bytes after the last answer")
        return elapsed, int.from_bytes(answer, "big")


def _message(size: int) -> bytes:
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


def run_pingpong(size: int, count: int, port: int) -> tuple[float, int, bytes]:
    """Make ``count`` round trips of ``size`` bytes through the relay on ``port``.

    Returns:
      The seconds of the round trips, the bytes that came back, and the
      last echo.

    Raises:
      BenchError: the connection ended early, or more bytes came.
      OSError: a socket operation failed.
    """
    with _pairs.stdlib_connect(port) as sock:
        message = _message(size)
        buf = bytearray(size)
        view = memoryview(buf)
        sendall = sock.sendall
        read_exactly = _pairs.stdlib_read_exactly
        got = 0
        start = perf_counter()
        for _ in range(count):
            sendall(message)
            read_exactly(sock, buf, view)
            got += size
        elapsed = perf_counter() - start
        _finish(sock)
        return elapsed, got, bytes(buf)


# -- the samples ------------------------------------------------------------------


def _check_relayed(
    what: str, moved: tuple[int, int], expected: tuple[int, int]
) -> None:
    if moved != expected:
        raise BenchError(
            f"{what}: the relay moved {moved[0]} bytes to the server and "
            f"{moved[1]} back, expected {expected[0]} and {expected[1]}"
        )


def bulk_sample(
    contender: str,
    total: int,
    outcome: tuple[float, int],
    received: int,
    moved: tuple[int, int],
) -> Sample:
    """The sample of a bulk round, after checking every count.

    Args:
      outcome: :func:`run_bulk`'s result.
      received: the count the server reported to the parent.
      moved: the relay's counts, both ways.

    Raises:
      BenchError: a count differs.
    """
    what = f"relay bulk {contender}"
    seconds, answered = outcome
    check_count(what, answered, total)
    check_count(f"{what} (server)", received, total)
    _check_relayed(what, moved, (total, _COUNT_SIZE))
    return Sample(value=total / MIB / seconds, seconds=seconds)


def pingpong_sample(
    contender: str,
    size: int,
    count: int,
    outcome: tuple[float, int, bytes],
    echoed: int,
    moved: tuple[int, int],
) -> Sample:
    """The sample of a ping-pong round, after checking every count.

    Args:
      outcome: :func:`run_pingpong`'s result.
      echoed: the count the server reported to the parent.
      moved: the relay's counts, both ways.

    Raises:
      BenchError: a count differs, or the echo is not the message.
    """
    what = f"relay ping-pong {contender}"
    seconds, got, last = outcome
    expected = size * count
    check_count(what, got, expected)
    check_count(f"{what} (server)", echoed, expected)
    _check_relayed(what, moved, (expected, expected))
    if last != _message(size):
        raise BenchError(f"{what}: the echo differs from the message")
    return Sample(value=count / seconds, seconds=seconds)
