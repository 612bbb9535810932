"""``echo``: a real echo server, and the supervisor of ``--workers``.

One task per connection, in a nursery.  A connection waits for readability,
then reads into a buffer (SPEC §10: an idle connection holds none), writes
the bytes back with ``stream.write_all``, and gives the buffer back.  The
log goes to stderr from a thread, so that a stderr nobody drains never
stops the server.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import queue
import signal
import socket as _stdlib_socket
import stat
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, final

import trio

from .. import EndOfFile, ip, stream
from ..ip.tcp import Acceptor, Socket
from ._common import CommandError, describe, endpoint, first_of, listen, resolve

# The echo server's read size.  64 KiB is what Trio's own streams ask for
# per receive (trio's DEFAULT_RECEIVE_SIZE) and what Linux moves per
# loopback segment at most: a bulk transfer costs one read_some per segment.
# A connection holds a buffer only while it moves data (SPEC §10: it waits
# for readability first), so idle connections cost none of it.
BUFFER_SIZE = 64 * 1024

# Buffers kept for reuse once no connection needs them: enough for the
# connections that move data at one moment on a busy server.
BUFFERS_KEPT = 32

# Reads of fewer bytes than this (what the kernel holds, FIONREAD) take a
# buffer of just that size instead of a pooled 64 KiB one.  A wave of
# clients that each trickle a byte (slowloris) wakes its connections
# together, and each read checkpoints before its syscall: with pooled
# buffers a thousand of them held 64 KiB each at once, and the allocator
# kept those 64 MiB after they left.
SMALL_READ = 4096

# Keep-alive on accepted connections (SPEC §10): a peer that vanished is
# dropped after about IDLE + INTERVAL x COUNT = 2 minutes of silence, not
# held for ever.  ``--keep-alive`` changes or disables it.
KEEP_ALIVE = (60, 10, 6)

# Log lines waiting for a stderr that nobody drains: beyond this many the
# server drops lines (and later says how many) rather than block.
LOG_QUEUE_SIZE = 1000

# accept() errors that mean "this process is out of descriptors or memory",
# not "the listening socket is broken".  The acceptor does not retry them
# (spinning would burn the CPU); the server backs off and retries, as
# trio.serve_listeners does, with the same 100 ms pause.
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


ACCEPT_BACKOFF = 0.100

# How long the parent of ``echo --workers`` waits for its workers to stop
# after forwarding the signal before it kills them.  They only have to
# cancel their tasks and close their sockets, which takes milliseconds;
# 10 s leaves room for a loaded machine without hanging a service manager
# (systemd's own stop timeout is 90 s).
WORKER_STOP_TIMEOUT = 10.0

# A worker that ends with one of these stopped because it was told to (by a
# forwarded signal, or by the terminal sending SIGINT to the whole process
# group): 0 from a handled signal, -SIG from one that arrived before the
# worker installed its handler, 130 (128 + SIGINT) from KeyboardInterrupt.
_STOPPED_STATUSES = frozenset({0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT})


@final
class DroppingHandler(logging.Handler):
    """A log handler that never blocks the event loop (SPEC §10).

    A plain ``StreamHandler`` writes to stderr in the event loop's thread:
    when nobody drains that pipe (a supervisor that stopped reading), the
    first full write stops the whole server.  This one hands each line to a
    writer thread through a bounded queue; when the queue is full the line
    is dropped and counted, and the next line that gets through is preceded
    by ``(N log lines dropped)``.
    """

    def __init__(self, stream: Any, capacity: int = LOG_QUEUE_SIZE) -> None:
        super().__init__()
        self._stream = stream
        self._lines: queue.Queue[str | None] = queue.Queue(capacity)
        self._dropped = 0
        self._lock = threading.Lock()
        # A daemon: a writer stuck on a pipe that is never drained must not
        # keep the process alive at exit.
        self._writer = threading.Thread(
            target=self._write_lines, name="trio_emtcp-echo-log", daemon=True
        )
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:  # pragma: no cover - logging's own convention
            self.handleError(record)
            return
        with self._lock:
            if self._dropped:
                note = f"({self._dropped} log lines dropped: stderr was full)\n"
                try:
                    self._lines.put_nowait(note)
                except queue.Full:
                    self._dropped += 1
                    return
                self._dropped = 0
            try:
                self._lines.put_nowait(line)
            except queue.Full:
                self._dropped += 1

    @property
    def dropped(self) -> int:
        """Lines dropped since the last note about it."""
        return self._dropped

    def _write_lines(self) -> None:
        while (line := self._lines.get()) is not None:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError):  # stderr closed: nothing to tell
                pass

    def close(self) -> None:
        """Write what is queued (within a second), then stop the writer."""
        with contextlib.suppress(queue.Full):
            self._lines.put(None, timeout=1.0)
        self._writer.join(timeout=1.0)
        super().close()


def _echo_logger(prefix: str) -> tuple[logging.Logger, logging.Handler]:
    # Its own logger, not the root one: main() may run inside another
    # program (the tests do that), whose logging setup we leave alone.  No
    # timestamps: service managers (systemd, docker) add their own.
    log = logging.getLogger("trio_emtcp.echo")
    handler = DroppingHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(prefix + "%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log, handler


@final
class BufferPool:
    """The echo buffers: taken while a connection moves data, then kept.

    At most ``keep`` are kept for reuse; the rest go back to the allocator.
    """

    def __init__(self, size: int = BUFFER_SIZE, keep: int = BUFFERS_KEPT) -> None:
        self._size = size
        self._keep = keep
        self._free: list[bytearray] = []
        self.in_use = 0

    def take(self) -> bytearray:
        self.in_use += 1
        return self._free.pop() if self._free else bytearray(self._size)

    def give(self, buf: bytearray) -> None:
        self.in_use -= 1
        if len(self._free) < self._keep:
            self._free.append(buf)

    @property
    def kept(self) -> int:
        """Buffers waiting for reuse."""
        return len(self._free)


@final
@dataclass(frozen=True)
class EchoSettings:
    """How the echo server treats its connections."""

    idle_timeout: float = math.inf
    pool: BufferPool = field(default_factory=BufferPool)


async def _echo_connection(
    conn: Socket, log: logging.Logger, settings: EchoSettings
) -> None:
    """Echo one connection until the peer finishes, fails, idles or we stop."""
    async with conn:
        try:
            peer = endpoint(conn, "remote")
        except OSError:
            # Reset before we asked (getpeername says ENOTCONN).
            peer = "a peer already gone"
        log.info("connected: %s", peer)
        received = sent = 0
        reason = "server stopping"
        pool = settings.pool
        try:
            while True:
                # No progress for idle_timeout (nothing to read, or an echo
                # the peer does not take): the connection goes.
                with trio.move_on_after(settings.idle_timeout) as idle:
                    # Wait for data before taking a buffer: an idle
                    # connection holds none (SPEC §10).
                    ready = conn.io_control("bytes_readable")
                    if not ready:
                        await conn.wait("read")
                        ready = conn.io_control("bytes_readable")
                    # (0 at the end of the stream: a 1-byte read says so.)
                    pooled = ready >= SMALL_READ
                    buf = pool.take() if pooled else bytearray(max(ready, 1))
                    try:
                        n = await conn.read_some(buf)
                        received += n
                        try:
                            with memoryview(buf) as view:
                                sent += await stream.write_all(conn, view[:n])
                        except BaseException as exc:
                            # write_all says how much it wrote before
                            # failing, also when cancelled.
                            sent += getattr(exc, "bytes_transferred", 0)
                            raise
                    finally:
                        if pooled:
                            pool.give(buf)
                if idle.cancelled_caught:
                    reason = f"idle for {settings.idle_timeout:g} s"
                    break
        except EndOfFile:
            reason = "end of stream"
        except OSError as exc:
            # Reset, broken pipe, ...: only this connection ends.
            reason = describe(exc)
        finally:
            log.info(
                "disconnected: %s (%s), received %d bytes, sent %d bytes",
                peer,
                reason,
                received,
                sent,
            )


async def accept_loop(
    acceptor: Acceptor,
    nursery: trio.Nursery,
    log: logging.Logger,
    settings: EchoSettings | None = None,
    max_connections: int | None = None,
) -> None:
    # Beyond max_connections the loop stops accepting: new connections wait
    # in the kernel's backlog (and are refused once it is full), which
    # costs this process nothing.
    slots = trio.Semaphore(max_connections) if max_connections else None
    chosen = settings or EchoSettings()

    async def run(conn: Socket) -> None:
        try:
            await _echo_connection(conn, log, chosen)
        finally:
            if slots is not None:
                slots.release()

    while True:
        if slots is not None:
            await slots.acquire()
        try:
            conn = await acceptor.accept()
        except BaseException as exc:
            if slots is not None:
                slots.release()
            if not isinstance(exc, OSError) or exc.errno not in _CAPACITY_ERRNOS:
                raise
            log.warning("accept: %s; retrying in %g s", describe(exc), ACCEPT_BACKOFF)
            await trio.sleep(ACCEPT_BACKOFF)
            continue
        nursery.start_soon(run, conn)


async def serve(
    acceptor: Acceptor,
    log: logging.Logger,
    wait_stop: Callable[[], Awaitable[str]],
    args: argparse.Namespace | None = None,
) -> None:
    """Echo every connection until ``wait_stop`` returns, then close them all.

    ``args`` (the command line's) sets the idle timeout and the connection
    limit; without it there are neither.
    """
    idle_timeout = getattr(args, "idle_timeout", None)
    max_connections = getattr(args, "max_connections", None)
    settings = EchoSettings(idle_timeout=idle_timeout or math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            accept_loop, acceptor, nursery, log, settings, max_connections
        )
        log.info("stopping: %s", await wait_stop())
        # Cancelling the nursery stops the accept loop and every connection
        # task; each closes its socket on the way out (``async with``).
        nursery.cancel_scope.cancel()


async def _parent_gone() -> str:
    # A worker's stdin is a pipe whose write end only its parent holds: EOF
    # means the parent exited, even by SIGKILL, and a worker must not
    # outlive it holding the port.  Anything else (a worker started by hand
    # from a terminal) is left alone: FdStream would make it non-blocking
    # for every process that shares it.
    if not stat.S_ISFIFO(os.fstat(0).st_mode):
        await trio.sleep_forever()
    async with trio.lowlevel.FdStream(os.dup(0)) as pipe:
        while await pipe.receive_some():
            pass  # the parent never writes; ignore anything that comes
    return "the parent process is gone"


async def echo_command(args: argparse.Namespace) -> int:
    """``echo``: a real echo server.

    ``--workers N`` (N > 1) runs N processes accepting on one port.  The
    parent binds the port first, with ``reuse_port`` (``SO_REUSEPORT``), so
    that ``--port 0`` picks the port once; it then serves as worker 0 and
    starts workers 1..N-1 as ``python -m trio_emtcp echo --port PORT
    --worker-index K``, which bind the same address and port with
    ``reuse_port`` too.  The kernel spreads new connections over the
    listening sockets.  Each process logs with a ``worker K:`` prefix.

    The parent forwards SIGINT and SIGTERM to the workers, stops its own
    connections, waits for the workers (killing any that have not stopped
    after ``WORKER_STOP_TIMEOUT``) and exits 0 if every worker stopped
    cleanly.  A worker that exits on its own with a failure status stops
    the whole server (exit status 1); one that exits 0 or by SIGINT/SIGTERM
    (as when the terminal sends Ctrl-C to the whole process group) is
    logged and not replaced.  Each worker watches its stdin, a pipe from
    the parent, and stops at EOF, so workers never outlive a parent that
    was killed outright.  A stopping worker's kernel queue of connections
    not yet accepted is reset (SO_REUSEPORT does not move them to the
    other sockets).
    """
    worker_index: int | None = args.worker_index
    workers: int = args.workers
    if worker_index is not None:
        prefix = f"worker {worker_index}: "
    elif workers > 1:
        if not hasattr(_stdlib_socket, "SO_REUSEPORT"):
            raise CommandError(
                "--workers: needs SO_REUSEPORT, which this system lacks", status=2
            )
        prefix = "worker 0: "
    else:
        prefix = ""
    log, handler = _echo_logger(prefix)
    try:
        # Opened before anything else, so that a signal is ours to handle
        # from the moment "listening on" is logged.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            received: list[int] = []

            async def wait_signal() -> str:
                received.append(await signals.__anext__())
                return signal.Signals(received[0]).name

            address = (await resolve(args.host, args.port, passive=True))[0]
            reuse_port = workers > 1 or worker_index is not None
            async with listen(
                address,
                args.port,
                args.backlog,
                reuse_port=reuse_port,
                keep_alive=args.keep_alive,
            ) as acceptor:
                log.info(
                    "listening on %s (pid %d)",
                    ip.tostring(acceptor.local_address, acceptor.local_port),
                    os.getpid(),
                )
                if worker_index is not None:
                    await serve(
                        acceptor,
                        log,
                        lambda: first_of(wait_signal, _parent_gone),
                        args,
                    )
                elif workers > 1:
                    await _serve_with_workers(
                        args, acceptor, log, wait_signal, received
                    )
                else:
                    await serve(acceptor, log, wait_signal, args)
        log.info("stopped")
    finally:
        log.removeHandler(handler)
    return 0


def _worker_argv(args: argparse.Namespace, acceptor: Acceptor, index: int) -> list[str]:
    argv = [sys.executable, "-m", "trio_emtcp", "echo"]
    argv += ["--host", str(acceptor.local_address)]
    argv += ["--port", str(acceptor.local_port)]
    argv += ["--worker-index", str(index)]
    if args.backlog is not None:
        argv += ["--backlog", str(args.backlog)]
    if args.max_connections is not None:
        argv += ["--max-connections", str(args.max_connections)]
    if args.idle_timeout is not None:
        argv += ["--idle-timeout", repr(args.idle_timeout)]
    keep_alive = args.keep_alive
    argv += [
        "--keep-alive",
        "off" if keep_alive is None else ",".join(map(str, keep_alive)),
    ]
    return argv


async def _watch_worker(index: int, process: trio.Process, log: logging.Logger) -> None:
    status = await process.wait()
    if status not in _STOPPED_STATUSES:
        raise CommandError(f"worker {index} exited with status {status}")
    log.warning("worker %d (pid %d) stopped with status %d", index, process.pid, status)


async def _serve_with_workers(
    args: argparse.Namespace,
    acceptor: Acceptor,
    log: logging.Logger,
    wait_signal: Callable[[], Awaitable[str]],
    received: list[int],
) -> None:
    processes: list[trio.Process] = []
    try:
        for index in range(1, args.workers):
            processes.append(
                await trio.lowlevel.open_process(
                    _worker_argv(args, acceptor, index), stdin=subprocess.PIPE
                )
            )
        async with trio.open_nursery() as nursery:
            for index, process in enumerate(processes, 1):
                nursery.start_soon(_watch_worker, index, process, log)
            await serve(acceptor, log, wait_signal, args)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            signum = received[0] if received else signal.SIGTERM
            clean = await stop_workers(processes, signum, log)
    if not clean:
        raise CommandError("some workers did not stop cleanly")


async def stop_workers(
    processes: Sequence[trio.Process], signum: int, log: logging.Logger
) -> bool:
    """Forward ``signum``, wait, kill stragglers; whether all stopped cleanly."""
    for process in processes:
        if process.returncode is None:
            process.send_signal(signum)
    with trio.move_on_after(WORKER_STOP_TIMEOUT):
        for process in processes:
            await process.wait()
    clean = True
    for index, process in enumerate(processes, 1):
        if process.returncode is None:
            log.warning(
                "worker %d (pid %d) still running after %g s; killing it",
                index,
                process.pid,
                WORKER_STOP_TIMEOUT,
            )
            process.kill()
            clean = False
        await process.wait()  # reaps it
        if process.stdin is not None:
            await process.stdin.aclose()
        if process.returncode not in _STOPPED_STATUSES:
            clean = False
    return clean
