"""Many connections at once: open ``count``, echo once on each, close all.

Runs inside a worker process (:mod:`._worker`), one per contender, so that
the peak resident memory it reports belongs to that contender alone.
Both ends live in the worker: a server (one task per connection; one
thread per connection for the blocking stdlib socket) and ``count``
clients (one task each; one thread making them in turn for the stdlib).
Each client connects, writes a short message and reads the echo; the time
runs from the first connect until the last echo is back.  Only then do the
clients close, so all ``count`` connections are open together, and the
peak RSS (``VmHWM``) is read after everything is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import resource
import socket
import threading
import time
from collections.abc import Mapping

import trio

from .. import EndOfFile, stream
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

# Descriptors besides the connections' two per connection: the interpreter's,
# the listener, trio's epoll and wake-up pipe, asyncio's self-pipe.
_SPARE_FDS = 64

# (seconds until the last echo, bytes echoed by the server, bytes received)
Outcome = tuple[float, int, int]


class _Clock:
    """Counts echoes; notes the time of the last one."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.got = 0
        self.echoed = 0
        self.start = perf_counter()
        self.end = 0.0

    def received(self) -> bool:
        """Count one echo; True when it was the last one."""
        self.got += SIZE
        if self.got == SIZE * self.count:
            self.end = perf_counter()
            return True
        return False

    def outcome(self) -> Outcome:
        return self.end - self.start, self.echoed, self.got


async def _emtcp(contender: str, count: int) -> Outcome:
    loopback = Address(HOST)
    write_all = stream.write_all
    read_exactly = _pairs.emtcp_read_exactly
    all_back = trio.Event()

    # Emilua style: close() is synchronous (contextlib.closing), like the raw
    # trio.socket contender's ``with``; ``async with`` adds a checkpoint.
    async def handle(conn: Socket) -> None:
        with contextlib.closing(conn), relaxing(contender):
            conn.set_option("tcp_no_delay", True)
            buf = bytearray(SIZE)
            await read_exactly(conn, buf, memoryview(buf))
            sent = await write_all(conn, buf)
            # Not "clock.echoed += await ...": that reads the counter before
            # the await, and other handlers update it meanwhile.
            clock.echoed += sent
            with contextlib.suppress(EndOfFile):
                await conn.read_some(buf)

    async def client() -> None:
        with contextlib.closing(Socket()) as sock, relaxing(contender):
            await sock.connect(loopback, port)
            sock.set_option("tcp_no_delay", True)
            await write_all(sock, ECHO_MESSAGE)
            buf = bytearray(SIZE)
            await read_exactly(sock, buf, memoryview(buf))
            if clock.received():
                all_back.set()
            await all_back.wait()

    async with Acceptor() as acceptor:
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen(BACKLOG)
        port = acceptor.local_port

        async def serve(nursery: trio.Nursery) -> None:
            with relaxing(contender):
                for _ in range(count):
                    nursery.start_soon(handle, await acceptor.accept())

        clock = _Clock(count)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, nursery)
            for _ in range(count):
                nursery.start_soon(client)
    return clock.outcome()


async def _stream(count: int) -> Outcome:
    read_exactly = _pairs.stream_read_exactly
    all_back = trio.Event()
    all_closed = trio.Event()
    closed = 0

    async def handle(conn: trio.SocketStream) -> None:
        nonlocal closed
        async with conn:
            await conn.send_all(await read_exactly(conn, SIZE))
            clock.echoed += SIZE
            await conn.receive_some(SIZE)
        closed += 1
        if closed == count:
            all_closed.set()

    async def client() -> None:
        async with await trio.open_tcp_stream(HOST, port) as conn:
            await conn.send_all(ECHO_MESSAGE)
            await read_exactly(conn, SIZE)
            if clock.received():
                all_back.set()
            await all_back.wait()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handle, 0, host=HOST, backlog=BACKLOG)
        )
        port = listeners[0].socket.getsockname()[1]
        clock = _Clock(count)
        async with trio.open_nursery() as clients:
            for _ in range(count):
                clients.start_soon(client)
        await all_closed.wait()
        nursery.cancel_scope.cancel()
    return clock.outcome()


async def _trio_socket(count: int) -> Outcome:
    read_exactly = _pairs.trio_socket_read_exactly
    all_back = trio.Event()

    async def send_all(sock: trio.socket.SocketType, data: bytes | bytearray) -> int:
        sent = await sock.send(data)
        while sent < len(data):
            sent += await sock.send(memoryview(data)[sent:])
        return sent

    async def handle(conn: trio.socket.SocketType) -> None:
        with conn:
            nodelay(conn)
            buf = bytearray(SIZE)
            await read_exactly(conn, buf, memoryview(buf))
            sent = await send_all(conn, buf)
            clock.echoed += sent
            await conn.recv_into(buf)

    async def client() -> None:
        with await _pairs.trio_socket_connect(port) as sock:
            await send_all(sock, ECHO_MESSAGE)
            buf = bytearray(SIZE)
            await read_exactly(sock, buf, memoryview(buf))
            if clock.received():
                all_back.set()
            await all_back.wait()

    with await _pairs.trio_socket_listener() as listener:
        port = listener.getsockname()[1]

        async def serve(nursery: trio.Nursery) -> None:
            for _ in range(count):
                conn, _ = await listener.accept()
                nursery.start_soon(handle, conn)

        clock = _Clock(count)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, nursery)
            for _ in range(count):
                nursery.start_soon(client)
    return clock.outcome()


async def _asyncio(count: int) -> Outcome:
    read_exactly = _pairs.asyncio_read_exactly
    all_back = asyncio.Event()
    all_closed = asyncio.Event()
    closed = 0

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal closed
        try:
            _pairs.asyncio_nodelay(writer)
            writer.write(await read_exactly(reader, SIZE))
            await writer.drain()
            clock.echoed += SIZE
            await reader.read(SIZE)
        finally:
            await _pairs.asyncio_close(writer)
        closed += 1
        if closed == count:
            all_closed.set()

    async def client() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            _pairs.asyncio_nodelay(writer)
            writer.write(ECHO_MESSAGE)
            await writer.drain()
            await read_exactly(reader, SIZE)
            if clock.received():
                all_back.set()
            await all_back.wait()
        finally:
            await _pairs.asyncio_close(writer)

    server = await asyncio.start_server(handle, HOST, 0, backlog=BACKLOG)
    try:
        port = server.sockets[0].getsockname()[1]
        clock = _Clock(count)
        clients = [asyncio.ensure_future(client()) for _ in range(count)]
        try:
            await asyncio.gather(*clients)
        except BaseException:
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            raise
        await all_closed.wait()
    finally:
        server.close()
        await server.wait_closed()
    return clock.outcome()


def _stdlib(count: int) -> Outcome:
    lock = threading.Lock()
    failure: list[BaseException] = []
    handlers: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        try:
            with conn:
                nodelay(conn)
                buf = bytearray(SIZE)
                _pairs.stdlib_read_exactly(conn, buf, memoryview(buf))
                conn.sendall(buf)
                with lock:
                    clock.echoed += SIZE
                conn.recv_into(buf)
        except BaseException as exc:
            failure.append(exc)

    with _pairs.stdlib_listener() as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                for _ in range(count):
                    conn, _ = listener.accept()
                    thread = threading.Thread(target=handle, args=(conn,))
                    handlers.append(thread)
                    thread.start()
            except BaseException as exc:
                failure.append(exc)

        clock = _Clock(count)
        acceptor = threading.Thread(target=serve, name="bench-acceptor")
        acceptor.start()
        clients: list[socket.socket] = []
        try:
            for _ in range(count):
                clients.append(_pairs.stdlib_connect(port))
            for sock in clients:
                sock.sendall(ECHO_MESSAGE)
            buf = bytearray(SIZE)
            view = memoryview(buf)
            for sock in clients:
                _pairs.stdlib_read_exactly(sock, buf, view)
                clock.received()
        except BaseException:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            raise
        finally:
            for sock in clients:
                sock.close()
            acceptor.join()
            for thread in handlers:
                thread.join()
    if failure:
        raise failure[0]
    return clock.outcome()


def _memory_kib(field: str) -> int | None:
    """A ``Vm*`` line of ``/proc/self/status``, in KiB (None if absent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); True if done."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def _ensure_descriptors(count: int) -> None:
    """Raise the soft descriptor limit so ``count`` connections fit.

    Raises:
      OSError: the hard limit is too low (``ulimit -Hn``).
    """
    need = 2 * count + _SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise OSError(
                f"concurrent: {count} connections need {need} descriptors, "
                f"the hard limit is {hard} (ulimit -Hn)"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def measure(contender: str, count: int) -> dict[str, float]:
    """Worker side: run one round, return its figures.

    Returns:
      ``seconds``, ``echoed`` and ``received`` (bytes), ``rss_before_kib``
      (resident memory before), ``rss_peak_kib`` (peak during the round;
      since the worker started if the peak could not be reset).

    Raises:
      OSError: a socket operation failed, or too few descriptors.
    """
    _ensure_descriptors(count)
    gc.collect()
    reset = _reset_peak()
    before = _memory_kib("VmRSS") or 0
    if contender in (EMTCP, EMTCP_RELAXED):
        seconds, echoed, got = trio.run(_emtcp, contender, count)
    elif contender == SOCKET_STREAM:
        seconds, echoed, got = trio.run(_stream, count)
    elif contender == TRIO_SOCKET:
        seconds, echoed, got = trio.run(_trio_socket, count)
    elif contender == ANYIO:
        from . import _anyio_contender  # anyio is optional

        seconds, echoed, got = _anyio_contender.concurrent(count)
    elif contender in (ASYNCIO, UVLOOP):
        seconds, echoed, got = run_asyncio(contender, _asyncio(count))
    elif contender == STDLIB:
        seconds, echoed, got = _stdlib(count)
    else:
        raise ValueError(f"contender: unknown, got {contender!r}")
    peak = _memory_kib("VmHWM")
    if peak is None:
        # ru_maxrss is in KiB on Linux, and never reset.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": seconds,
        "echoed": echoed,
        "received": got,
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "peak_reset": float(reset),
    }


def sample(contender: str, count: int, figures: Mapping[str, float]) -> Sample:
    """The parent's sample from a worker's figures, after the checks.

    Returns:
      A sample in connections per second, with ``peak_rss_mib`` and
      ``rss_growth_mib`` (peak minus the resident memory before) as extras.

    Raises:
      BenchError: a side echoed or received the wrong byte count.
    """
    check_count(
        f"concurrent {contender}, server side", int(figures["echoed"]), SIZE * count
    )
    check_count(
        f"concurrent {contender}, client side", int(figures["received"]), SIZE * count
    )
    seconds = figures["seconds"]
    peak = figures["rss_peak_kib"]
    return Sample(
        value=count / seconds,
        seconds=seconds,
        extra={
            "peak_rss_mib": peak / 1024,
            "rss_growth_mib": (peak - figures["rss_before_kib"]) / 1024,
        },
    )
