"""The command-line tools: ``python -m trio_emtcp COMMAND``.

Commands:

``demo``
    Runs the first example of the manual (a connected pair and
    ``stream.write_all``), then an echo exchange over loopback, printing
    each step: addresses, ports, bytes written and read.

``echo [--host H] [--port P] [--backlog N] [--workers N] [...]``
    (also ``--max-connections N``, ``--idle-timeout S``, ``--keep-alive
    IDLE,INTERVAL,COUNT`` or ``off``)
    A real echo server.  One task per connection, in a nursery; each waits
    for readability, then reads with ``read_some`` into a buffer taken from
    a shared pool (so an idle connection holds none) and writes back with
    ``stream.write_all``.  Keep-alive probes (60, 10, 6 by default) drop
    peers that vanished.  It logs one line to stderr per event (listening,
    connected, disconnected with byte counts, stopping), from a thread that
    drops lines rather than block when stderr is full.  SIGINT (Ctrl-C)
    and SIGTERM stop it cleanly: it stops accepting, closes every
    connection and exits with status 0.

``echo-client [--host H] [--port P]``
    Sends standard input to an echo server and writes what comes back to
    standard output; at the end of input it half-closes the connection and
    exits once the server has echoed everything and closed its side.

Exit status: 0 on success, 2 for a bad command line, 1 for a failure at run
time (address in use, connection refused, ...).  Both print one line on
stderr, no traceback.

Adding a command takes one ``async def _name(args) -> int`` and one
``commands.add_parser("name", run=_name, help=...)`` call in
:func:`_build_parser` (followed by its ``add_argument`` calls).  A command
raises :class:`_CommandError` for a failure the user should read about,
and returns its exit status otherwise.
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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, final

import trio

from . import stream
from ._acceptor import Acceptor
from ._address import Address
from ._endpoint import tostring
from ._errors import EndOfFile
from ._pair import socket_pair
from ._socket import Socket

__all__ = ["main"]

PROG = "python -m trio_emtcp"

DEFAULT_HOST = "127.0.0.1"
# The port SPEC §9 names in its example; any free port would do.
DEFAULT_PORT = 7000

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

Command = Callable[[argparse.Namespace], Awaitable[int]]


@final
class _CommandError(Exception):
    """A failure to report on one line of stderr, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _describe(exc: OSError) -> str:
    """The OS's words for an error, lowercase-led: 'connection refused'."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


# -- command line --------------------------------------------------------------


@final
class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that knows which coroutine runs its command.

    ``add_parser(name, run=coroutine_function, ...)`` records the command,
    so that adding one is a single call; errors fit on one line.
    """

    def __init__(self, *args: Any, run: Command | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if run is not None:
            self.set_defaults(run=run, command_prog=self.prog)

    def error(self, message: str) -> NoReturn:
        """Print ``PROG COMMAND: error: MESSAGE`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    # Plain ASCII digits only: int() would also take " 7", "7_0" and
    # non-ASCII digits.
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(
            f"expected an integer in 0..65535, got {text!r}"
        )
    value = int(text)
    if value > 0xFFFF:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {value}")
    return value


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _keep_alive(text: str) -> tuple[int, int, int] | None:
    if text == "off":
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected IDLE,INTERVAL,COUNT (whole numbers) or 'off', got {text!r}"
        )
    idle, interval, count = (int(part) for part in parts)
    for what, value, high in (
        ("IDLE", idle, 32767),
        ("INTERVAL", interval, 32767),
        ("COUNT", count, 127),
    ):
        if not 1 <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{what} must be in 1..{high}, got {value}"
            )
    return idle, interval, count


def _add_endpoint_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"{what} address: a numeric IP or a host name (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"{what} port (default: %(default)s)",
    )


def _build_parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Tools around trio_emtcp, Emilua's TCP API on Trio.",
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    commands.add_parser(
        "demo",
        run=_demo,
        help="run the first example and an echo exchange, saying what happens",
        description="Run the manual's first example, then an echo exchange "
        "over loopback, and print each step.",
    )

    echo = commands.add_parser(
        "echo",
        run=_echo,
        help="run an echo server (Ctrl-C or SIGTERM stops it)",
        description="An echo server: everything a client sends comes back. "
        "Logs to stderr; SIGINT and SIGTERM stop it cleanly.",
    )
    _add_endpoint_arguments(echo, "listening")
    echo.add_argument(
        "--backlog",
        type=_int_at_least(0),
        default=None,
        metavar="N",
        help="listen queue length (default: the system maximum)",
    )
    echo.add_argument(
        "--workers",
        type=_int_at_least(1),
        default=1,
        metavar="N",
        help="processes sharing the port through SO_REUSEPORT (default: 1)",
    )
    echo.add_argument(
        "--max-connections",
        type=_int_at_least(1),
        default=None,
        metavar="N",
        help="serve at most N connections at once; more wait in the backlog "
        "(default: no limit)",
    )
    echo.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="close a connection that made no progress for S seconds (default: never)",
    )
    echo.add_argument(
        "--keep-alive",
        type=_keep_alive,
        default=KEEP_ALIVE,
        metavar="IDLE,INTERVAL,COUNT",
        help="keep-alive probes on every connection: the first after IDLE "
        "seconds of silence, then every INTERVAL seconds, COUNT unanswered "
        "ones drop it; 'off' to disable "
        f"(default: {','.join(map(str, KEEP_ALIVE))})",
    )
    # Internal: how the parent of --workers starts worker K (see _echo).
    echo.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)

    client = commands.add_parser(
        "echo-client",
        run=_echo_client,
        help="send stdin to an echo server, print the echo",
        description="Send standard input to an echo server and write the "
        "echo to standard output; exit when the server has echoed it all.",
    )
    _add_endpoint_arguments(client, "server")

    # The benchmark runs its own event loops (one per measurement), so it is
    # a synchronous command: main() calls it outside trio.run.
    bench = commands.add_parser(
        "bench",
        help="compare trio_emtcp with trio.SocketStream, trio.socket, asyncio",
        description="Run the benchmark of SPEC §8 and print a Markdown table "
        "of medians and ratios to trio.SocketStream.",
    )
    bench.set_defaults(command_prog=bench.prog, sync_run=_bench_main)
    from . import _bench

    _bench.add_arguments(bench)
    return parser


def _bench_main(args: argparse.Namespace) -> int:
    from . import _bench

    return _bench.main(args)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside nested exception groups (or ``exc`` itself)."""
    # Duck-typed: BaseExceptionGroup is not a builtin before Python 3.11.
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, tuple):
        for sub in inner:
            yield from _leaves(sub)
    else:
        yield exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command of the command line.

    Args:
      argv: the arguments after the program name; ``None`` for
        ``sys.argv[1:]``.

    Returns:
      The exit status: 0 on success, 1 when the command failed (the
      reason is on stderr), 130 after Ctrl-C outside the echo server (which
      handles it and returns 0).

    Raises:
      SystemExit: status 2 for a bad command line (one line on stderr), 0
        after ``--help``.
    """
    args = _build_parser().parse_args(argv)
    sync_run = getattr(args, "sync_run", None)
    if sync_run is not None:
        status: int = sync_run(args)
        return status
    run: Command = args.run
    try:
        return trio.run(run, args)
    except BaseException as exc:
        leaves = list(_leaves(exc))
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return 128 + signal.SIGINT
        errors = [leaf for leaf in leaves if isinstance(leaf, _CommandError)]
        if errors and all(
            isinstance(leaf, (_CommandError, KeyboardInterrupt)) for leaf in leaves
        ):
            print(f"{args.command_prog}: error: {errors[0]}", file=sys.stderr)
            return errors[0].status
        raise


# -- shared network helpers ----------------------------------------------------


async def _resolve(host: str, port: int, *, passive: bool) -> list[Address]:
    """The addresses ``host`` names, in the resolver's order.

    Raises:
      _CommandError: the name does not resolve.
    """
    try:
        return [Address(host)]
    except ValueError:
        pass
    try:
        infos = await trio.socket.getaddrinfo(
            host,
            port,
            type=_stdlib_socket.SOCK_STREAM,
            flags=_stdlib_socket.AI_PASSIVE if passive else 0,
        )
    except _stdlib_socket.gaierror as exc:
        raise _CommandError(f"cannot resolve {host!r}: {_describe(exc)}") from None
    found: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        if family in (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6):
            addr = Address._from_sockaddr(family, sockaddr)
            if addr not in found:
                found.append(addr)
    if not found:
        raise _CommandError(f"cannot resolve {host!r}: no IPv4 or IPv6 address")
    return found


def _listen(
    address: Address,
    port: int,
    backlog: int | None,
    *,
    reuse_port: bool,
    keep_alive: tuple[int, int, int] | None = None,
) -> Acceptor:
    """A listening acceptor, or a one-line error.

    Args:
      keep_alive: ``(idle, interval, count)`` for every accepted connection
        (set once on the acceptor; the kernel copies it), or ``None``.

    Raises:
      _CommandError: the system refused (address in use, permission, ...).
    """
    acceptor = Acceptor()
    try:
        acceptor.open(address)
        # A restarted server must be able to bind while connections of the
        # previous run linger in TIME_WAIT; it does not let two servers
        # listen on one port (Linux refuses that without SO_REUSEPORT).
        acceptor.set_option("reuse_address", True)
        if reuse_port:
            acceptor.set_option("reuse_port", True)
        if keep_alive is not None:
            idle, interval, count = keep_alive
            acceptor.set_option("keep_alive", True)
            acceptor.set_option("keep_alive_idle", idle)
            acceptor.set_option("keep_alive_interval", interval)
            acceptor.set_option("keep_alive_count", count)
        acceptor.bind(address, port)
        acceptor.listen(backlog)
    except OSError as exc:
        acceptor.close()
        raise _CommandError(
            f"cannot listen on {tostring(address, port)}: {_describe(exc)}"
        ) from None
    except BaseException:
        acceptor.close()
        raise
    return acceptor


async def _connect(addresses: Sequence[Address], port: int) -> Socket:
    """A socket connected to the first address that answers.

    Raises:
      _CommandError: no address accepted the connection (the last error).
    """
    failure = ""
    for address in addresses:
        sock = Socket()
        try:
            await sock.connect(address, port)
        except OSError as exc:
            sock.close()
            failure = f"cannot connect to {tostring(address, port)}: {_describe(exc)}"
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise _CommandError(failure)


async def _first_of(*waits: Callable[[], Awaitable[str]]) -> str:
    """Run ``waits`` concurrently; return the first result, cancel the rest."""
    results: list[str] = []
    async with trio.open_nursery() as nursery:

        async def run(wait: Callable[[], Awaitable[str]]) -> None:
            results.append(await wait())
            nursery.cancel_scope.cancel()

        for wait in waits:
            nursery.start_soon(run, wait)
    return results[0]


# -- demo ----------------------------------------------------------------------


def _endpoint(sock: Socket, side: str) -> str:
    if side == "local":
        return tostring(sock.local_address, sock.local_port)
    return tostring(sock.remote_address, sock.remote_port)


async def _demo(args: argparse.Namespace) -> int:
    """``demo``: the first example, then an echo exchange, narrated."""
    print("1. The first example: a connected pair and stream.write_all")
    a, b = await socket_pair()
    async with a, b, trio.open_nursery() as nursery:
        print(
            f"   socket_pair() connected a ({_endpoint(a, 'local')}) "
            f"to b ({_endpoint(b, 'local')})"
        )

        async def reader() -> None:
            buf = bytearray(1024)
            n = await b.read_some(buf)
            print(f"   b.read_some(buf) read {n} bytes: {bytes(buf[:n])!r}")

        nursery.start_soon(reader)
        n = await stream.write_all(a, b"Hello World")
        print(f"   stream.write_all(a, b'Hello World') returned {n}")

    print("2. An echo exchange over loopback")
    messages = [b"hello", b"echo, echo", b"goodbye"]
    async with Acceptor() as acceptor:
        loopback = Address.loopback_v4()
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen()
        server_endpoint = tostring(acceptor.local_address, acceptor.local_port)
        print(f"   server: listening on {server_endpoint} (port 0 picked a free port)")
        async with Socket() as client, trio.open_nursery() as nursery:
            await client.connect(acceptor.local_address, acceptor.local_port)
            print(
                f"   client: connected from {_endpoint(client, 'local')} "
                f"to {_endpoint(client, 'remote')}; it waits in the server's "
                "backlog until accept()"
            )
            await nursery.start(_demo_echo_once, acceptor)
            total = 0
            for message in messages:
                print(f"   client: sending {message!r}")
                written = await stream.write_all(client, message)
                back = bytearray(len(message))
                read = await stream.read_all(client, back)
                print(
                    f"   client: wrote {written} bytes, read {read} bytes back: "
                    f"{bytes(back)!r}"
                )
                total += written
            client.shutdown("send")
            print("   client: shutdown('send'): no more data from the client")
            try:
                await client.read_some(bytearray(1))
            except EndOfFile:
                print("   client: read_some raised EndOfFile: the server closed too")
    print(f"   server: acceptor closed; {total} bytes went there and back")
    return 0


async def _demo_echo_once(
    acceptor: Acceptor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    async with await acceptor.accept() as conn:
        peer = _endpoint(conn, "remote")
        print(f"   server: accept() returned the connection from {peer}")
        task_status.started()
        buf = bytearray(BUFFER_SIZE)
        view = memoryview(buf)
        total = 0
        try:
            while True:
                n = await conn.read_some(buf)
                print(f"   server: read_some read {n} bytes, writing them back")
                total += await stream.write_all(conn, view[:n])
        except EndOfFile:
            print(
                f"   server: read_some raised EndOfFile after {total} bytes; "
                "closing the connection"
            )


# -- echo server ---------------------------------------------------------------


@final
class _DroppingHandler(logging.Handler):
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
    handler = _DroppingHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(prefix + "%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log, handler


@final
class _BufferPool:
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
class _EchoSettings:
    """How the echo server treats its connections."""

    idle_timeout: float = math.inf
    pool: _BufferPool = field(default_factory=_BufferPool)


async def _echo_connection(
    conn: Socket, log: logging.Logger, settings: _EchoSettings
) -> None:
    """Echo one connection until the peer finishes, fails, idles or we stop."""
    async with conn:
        try:
            peer = _endpoint(conn, "remote")
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
            reason = _describe(exc)
        finally:
            log.info(
                "disconnected: %s (%s), received %d bytes, sent %d bytes",
                peer,
                reason,
                received,
                sent,
            )


async def _accept_loop(
    acceptor: Acceptor,
    nursery: trio.Nursery,
    log: logging.Logger,
    settings: _EchoSettings | None = None,
    max_connections: int | None = None,
) -> None:
    # Beyond max_connections the loop stops accepting: new connections wait
    # in the kernel's backlog (and are refused once it is full), which
    # costs this process nothing.
    slots = trio.Semaphore(max_connections) if max_connections else None
    chosen = settings or _EchoSettings()

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
            log.warning("accept: %s; retrying in %g s", _describe(exc), ACCEPT_BACKOFF)
            await trio.sleep(ACCEPT_BACKOFF)
            continue
        nursery.start_soon(run, conn)


async def _serve(
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
    settings = _EchoSettings(idle_timeout=idle_timeout or math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            _accept_loop, acceptor, nursery, log, settings, max_connections
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


async def _echo(args: argparse.Namespace) -> int:
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
            raise _CommandError(
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

            address = (await _resolve(args.host, args.port, passive=True))[0]
            reuse_port = workers > 1 or worker_index is not None
            async with _listen(
                address,
                args.port,
                args.backlog,
                reuse_port=reuse_port,
                keep_alive=args.keep_alive,
            ) as acceptor:
                log.info(
                    "listening on %s (pid %d)",
                    tostring(acceptor.local_address, acceptor.local_port),
                    os.getpid(),
                )
                if worker_index is not None:
                    await _serve(
                        acceptor,
                        log,
                        lambda: _first_of(wait_signal, _parent_gone),
                        args,
                    )
                elif workers > 1:
                    await _serve_with_workers(
                        args, acceptor, log, wait_signal, received
                    )
                else:
                    await _serve(acceptor, log, wait_signal, args)
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
        raise _CommandError(f"worker {index} exited with status {status}")
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
            await _serve(acceptor, log, wait_signal, args)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            signum = received[0] if received else signal.SIGTERM
            clean = await _stop_workers(processes, signum, log)
    if not clean:
        raise _CommandError("some workers did not stop cleanly")


async def _stop_workers(
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


# -- echo client ---------------------------------------------------------------


async def _echo_client(args: argparse.Namespace) -> int:
    """``echo-client``: stdin to the server, the echo to stdout.

    Standard input is read in a worker thread (a terminal's descriptor is
    shared with the shell, so it is not switched to non-blocking mode):
    each read returns what is available, a line at a time from a terminal,
    and is sent at once.  At the end of input the client half-closes
    (``shutdown("send")``) and keeps printing until the server closes its
    side, so every echo is in before it exits.
    """
    port: int = args.port
    sock = await _connect(await _resolve(args.host, port, passive=False), port)
    async with sock:
        server = _endpoint(sock, "remote")

        def broken(exc: OSError) -> _CommandError:
            return _CommandError(f"connection to {server}: {_describe(exc)}")

        input_done = trio.Event()

        async def send_input() -> None:
            # No stdin at all (Python sets it to None when fd 0 is closed)
            # is an empty input.
            fd = sys.stdin.fileno() if sys.stdin is not None else -1
            while fd >= 0:
                try:
                    chunk = await trio.to_thread.run_sync(
                        os.read, fd, BUFFER_SIZE, abandon_on_cancel=True
                    )
                except OSError as exc:
                    raise _CommandError(f"stdin: {_describe(exc)}") from None
                if not chunk:
                    break
                try:
                    await stream.write_all(sock, chunk)
                except OSError as exc:
                    raise broken(exc) from None
            try:
                sock.shutdown("send")
            except OSError as exc:
                raise broken(exc) from None
            input_done.set()

        out = sys.stdout.buffer
        buf = bytearray(BUFFER_SIZE)
        view = memoryview(buf)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_input)
            while True:
                try:
                    n = await sock.read_some(buf)
                except EndOfFile:
                    break
                except OSError as exc:
                    raise broken(exc) from None
                out.write(view[:n])
                out.flush()
            if not input_done.is_set():
                raise _CommandError(
                    f"{server} closed the connection before the end of input"
                )
    return 0
