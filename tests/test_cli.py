"""Tests for the command-line tools (``python -m trio_emtcp ...``).

The servers run as real subprocesses, started with ``--port 0``; the test
learns the port from the ``listening on`` line of their stderr.  Every
subprocess test runs under ``trio.fail_after(TIMEOUT)``: a safety net for a
hung child, not a sleep.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, final

import pytest
import trio
import trio.testing

import trio_emtcp
from tests.helpers import no_fd_leak, require_tool
from trio_emtcp import _cli, socket_pair, stream
from trio_emtcp._cli import _common, _echo
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket

PYTHON = [sys.executable, "-X", "dev"]
CLI = [*PYTHON, "-m", "trio_emtcp"]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "echo_server.py"
TIMEOUT = 30
MIB = 1 << 20

LISTENING = r"listening on 127\.0\.0\.1:(?P<port>\d+) \(pid (?P<pid>\d+)\)$"


class _Lines:
    """The lines a child writes to one of its pipes, as they arrive."""

    def __init__(self, pipe: trio.abc.ReceiveStream) -> None:
        self._pipe = pipe
        self._partial = b""
        self._changed = trio.Event()
        self.lines: list[str] = []
        self.eof = False

    async def collect(self) -> None:
        """Read the pipe to its end (every writer gone)."""
        async with self._pipe:
            while data := await self._pipe.receive_some():
                *complete, self._partial = (self._partial + data).split(b"\n")
                self.lines += [line.decode() for line in complete]
                self._wake()
        if self._partial:
            self.lines.append(self._partial.decode())
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, pattern: str, count: int = 1) -> list[re.Match[str]]:
        """The first ``count`` lines matching ``pattern``, once they are in."""
        regex = re.compile(pattern)
        while True:
            found = [m for line in self.lines if (m := regex.match(line))]
            if len(found) >= count:
                return found[:count]
            if self.eof:
                raise AssertionError(
                    f"expected {count} lines matching {pattern!r}, got:\n{self.text}"
                )
            await self._changed.wait()

    async def wait_eof(self) -> None:
        while not self.eof:
            await self._changed.wait()


@dataclass
class _Server:
    process: trio.Process
    log: _Lines
    port: int
    pid: int

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum``; the exit status."""
        self.process.send_signal(signum)
        return await self.process.wait()

    def assert_clean_stderr(self) -> None:
        assert "Traceback" not in self.log.text
        assert "Warning" not in self.log.text


@asynccontextmanager
async def _spawn(
    argv: Sequence[str], listening: str, *, stdout: bool = False
) -> AsyncIterator[_Server]:
    """Start a server; yield once its ``listening`` line (stderr) is in.

    With ``stdout``, the line is read from stdout instead (the example).
    The child is killed if still running when the block exits.
    """
    process = await trio.lowlevel.open_process(
        list(argv),
        stdout=subprocess.PIPE if stdout else None,
        stderr=None if stdout else subprocess.PIPE,
    )
    pipe = process.stdout if stdout else process.stderr
    assert pipe is not None
    log = _Lines(pipe)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(log.collect)
        try:
            (match,) = await log.wait_for(listening)
            yield _Server(process, log, int(match["port"]), process.pid)
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()


def _echo_server(*options: str) -> AbstractAsyncContextManager[_Server]:
    # With --workers, worker 0 (the process we start) says it first.
    return _spawn(
        [*CLI, "echo", "--port", "0", *options], r"^(?:worker 0: )?" + LISTENING
    )


def _recv_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(MIB):
        chunks.append(chunk)
    return b"".join(chunks)


def _send_and_shut(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)


async def _blocking_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    """Send ``payload`` and half-close while reading the echo to its end."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, _send_and_shut, sock, payload)
        return await trio.to_thread.run_sync(_recv_to_eof, sock)


def _connect_blocking(port: int) -> socket.socket:
    # The timeout only bounds a thread that would otherwise hang forever if
    # the server misbehaved (threads cannot be cancelled).
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def _lines_payload(count: int) -> bytes:
    rng = random.Random(count)
    return b"".join(
        b"line %d %s\n" % (i, rng.randbytes(rng.randrange(40)).hex().encode())
        for i in range(count)
    )


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited and been reaped."""
    return not Path(f"/proc/{pid}").exists()


# -- demo ----------------------------------------------------------------------


async def test_demo_prints_what_it_does() -> None:
    with trio.fail_after(TIMEOUT):
        done = await trio.run_process(
            [*CLI, "demo"], capture_stdout=True, capture_stderr=True
        )
    assert done.returncode == 0
    assert done.stderr == b""
    out = done.stdout.decode()
    # The first example: its two results.
    assert re.search(
        r"^   stream\.write_all\(a, b'Hello World'\) returned 11$", out, re.M
    )
    assert re.search(
        r"^   b\.read_some\(buf\) read 11 bytes: b'Hello World'$", out, re.M
    )
    # The echo exchange: the ports it names agree with each other.
    listening = re.search(r"^   server: listening on 127\.0\.0\.1:(\d+) ", out, re.M)
    assert listening is not None
    server_port = listening[1]
    connected = re.search(
        r"^   client: connected from 127\.0\.0\.1:(\d+) "
        rf"to 127\.0\.0\.1:{server_port};",
        out,
        re.M,
    )
    assert connected is not None
    assert re.search(
        rf"^   server: accept\(\) returned the connection from 127\.0\.0\.1:"
        rf"{connected[1]}$",
        out,
        re.M,
    )
    exchanges = re.findall(
        r"^   client: wrote (\d+) bytes, read (\d+) bytes back: (b'.*')$", out, re.M
    )
    assert exchanges == [
        ("5", "5", "b'hello'"),
        ("10", "10", "b'echo, echo'"),
        ("7", "7", "b'goodbye'"),
    ]
    assert re.search(
        r"^   server: read_some raised EndOfFile after 22 bytes; closing", out, re.M
    )
    assert re.search(r"^   client: read_some raised EndOfFile", out, re.M)
    assert out.endswith("   server: acceptor closed; 22 bytes went there and back\n")


def test_main_demo_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(
        "1. The first example: a connected pair and stream.write_all\n"
    )
    assert "2. An echo exchange over loopback\n" in out


# -- echo server ---------------------------------------------------------------


async def test_echo_serves_concurrent_blocking_clients_exactly() -> None:
    payloads = [random.Random(i).randbytes(MIB) for i in range(3)]
    with trio.fail_after(TIMEOUT):
        async with _echo_server("--backlog", "8") as server:
            socks = [
                await trio.to_thread.run_sync(_connect_blocking, server.port)
                for _ in payloads
            ]
            try:
                # All three are being served at once before any data flows.
                await server.log.wait_for(r"^connected: 127\.0\.0\.1:\d+$", count=3)
                echoed: dict[int, bytes] = {}

                async def roundtrip(i: int) -> None:
                    echoed[i] = await _blocking_roundtrip(socks[i], payloads[i])

                async with trio.open_nursery() as nursery:
                    for i in range(len(payloads)):
                        nursery.start_soon(roundtrip, i)
            finally:
                for sock in socks:
                    sock.close()
            await server.log.wait_for(
                r"^disconnected: 127\.0\.0\.1:\d+ \(end of stream\), "
                r"received 1048576 bytes, sent 1048576 bytes$",
                count=3,
            )
            assert await server.stop() == 0
    assert [echoed[i] for i in range(len(payloads))] == payloads
    server.assert_clean_stderr()


async def test_echo_serves_socat() -> None:
    socat = require_tool("socat")
    data = _lines_payload(2000)
    with trio.fail_after(TIMEOUT):
        async with _echo_server() as server:
            # -t: how long socat waits for the echo after our EOF; it exits
            # as soon as the server closes, so this only bounds a failure.
            done = await trio.run_process(
                [socat, "-t", str(TIMEOUT), "-", f"TCP:127.0.0.1:{server.port}"],
                stdin=data,
                capture_stdout=True,
            )
            assert await server.stop() == 0
    assert done.stdout == data
    server.assert_clean_stderr()


async def test_echo_serves_nc() -> None:
    # nc is optional, even under CI: skip when absent (require_tool would
    # fail under CI).
    nc = shutil.which("nc")
    if nc is None:
        pytest.skip("nc is not installed")
    with trio.fail_after(TIMEOUT):
        usage = await trio.run_process(
            [nc, "-h"], check=False, capture_stdout=True, capture_stderr=True
        )
        if b"-N" not in usage.stdout + usage.stderr:
            pytest.skip("this nc has no -N (shut down after EOF on stdin)")
        data = _lines_payload(500)
        async with _echo_server() as server:
            done = await trio.run_process(
                [nc, "-N", "127.0.0.1", str(server.port)],
                stdin=data,
                capture_stdout=True,
            )
            assert await server.stop() == 0
    assert done.stdout == data
    server.assert_clean_stderr()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_echo_signal_closes_connections_and_exits_0(signum: int) -> None:
    name = signal.Signals(signum).name
    with trio.fail_after(TIMEOUT):
        async with _echo_server() as server:
            client = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with client:
                port = client.socket.getsockname()[1]
                await client.send_all(b"ping")
                assert await client.receive_some(4) == b"ping"
                assert await server.stop(signum) == 0
                # The server closed our connection on its way out.
                assert await client.receive_some(1) == b""
            # And it no longer accepts.
            with pytest.raises(OSError, match=r"^all attempts to connect"):
                await trio.open_tcp_stream("127.0.0.1", server.port)
        await server.log.wait_eof()
    assert server.log.lines[1:] == [
        f"connected: 127.0.0.1:{port}",
        f"stopping: {name}",
        f"disconnected: 127.0.0.1:{port} "
        "(server stopping), received 4 bytes, sent 4 bytes",
        "stopped",
    ]
    server.assert_clean_stderr()


async def test_echo_peer_reset_ends_only_that_connection() -> None:
    with trio.fail_after(TIMEOUT):
        async with _echo_server() as server:
            rude = trio.socket.socket()
            with rude:
                await rude.connect(("127.0.0.1", server.port))
                rude_port = rude.getsockname()[1]
                await rude.send(b"ping")
                assert await rude.recv(4) == b"ping"
                # Linger 0: close() sends RST instead of FIN.
                rude.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            await server.log.wait_for(
                rf"^disconnected: 127\.0\.0\.1:{rude_port} \(connection reset by "
                r"peer\), received 4 bytes, sent 4 bytes$"
            )
            # The server carries on.
            async with await trio.open_tcp_stream("127.0.0.1", server.port) as polite:
                await polite.send_all(b"still there?")
                assert await polite.receive_some(12) == b"still there?"
            assert await server.stop() == 0
    server.assert_clean_stderr()


async def test_echo_workers_share_the_port_and_stop_together() -> None:
    with trio.fail_after(TIMEOUT):
        async with _echo_server("--workers", "2") as server:
            workers = await server.log.wait_for(r"^worker (\d): " + LISTENING, count=2)
            assert [(m[1], int(m["port"])) for m in workers] == [
                ("0", server.port),
                ("1", server.port),
            ]
            assert int(workers[0]["pid"]) == server.pid
            child = int(workers[1]["pid"])
            # The kernel hashes each connection to one of the two listening
            # sockets; 64 tries all landing on one has odds of 2**-63.
            served_by: set[str] = set()
            for i in range(64):
                async with await trio.open_tcp_stream("127.0.0.1", server.port) as conn:
                    message = b"message %d" % i
                    await conn.send_all(message)
                    assert await conn.receive_some(len(message)) == message
                    port = conn.socket.getsockname()[1]
                (match,) = await server.log.wait_for(
                    rf"^worker (\d): connected: 127\.0\.0\.1:{port}$"
                )
                served_by.add(match[1])
                if served_by == {"0", "1"}:
                    break
            assert served_by == {"0", "1"}
            assert await server.stop() == 0
        await server.log.wait_eof()
    assert _gone(child)
    await server.log.wait_for(r"^worker 0: stopping: SIGTERM$")
    await server.log.wait_for(r"^worker 1: stopping: SIGTERM$")
    await server.log.wait_for(r"^worker 1: stopped$")
    assert server.log.lines[-1] == "worker 0: stopped"
    server.assert_clean_stderr()


async def test_echo_worker_failure_stops_the_server_with_status_1() -> None:
    with trio.fail_after(TIMEOUT):
        async with _echo_server("--workers", "2") as server:
            (child,) = await server.log.wait_for(r"^worker 1: " + LISTENING)
            os.kill(int(child["pid"]), signal.SIGKILL)
            assert await server.process.wait() == 1
        await server.log.wait_eof()
    assert server.log.lines[-1] == (
        "python -m trio_emtcp echo: error: worker 1 exited with status -9"
    )
    server.assert_clean_stderr()


async def test_echo_workers_stop_when_the_parent_is_killed() -> None:
    with trio.fail_after(TIMEOUT):
        async with _echo_server("--workers", "2") as server:
            (child,) = await server.log.wait_for(r"^worker 1: " + LISTENING)
            # Opened while the worker runs, so its pid cannot be reused.
            pidfd = os.pidfd_open(int(child["pid"]))
            try:
                assert await server.stop(signal.SIGKILL) == -signal.SIGKILL
                # Readable once the orphaned worker has exited.
                await trio.lowlevel.wait_readable(pidfd)
            finally:
                os.close(pidfd)
        await server.log.wait_eof()
    assert server.log.lines[-2:] == [
        "worker 1: stopping: the parent process is gone",
        "worker 1: stopped",
    ]


def test_echo_address_in_use_is_one_line_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _cli.main(["echo", "--port", str(port)]) == 1
    assert capsys.readouterr() == (
        "",
        f"python -m trio_emtcp echo: error: cannot listen on 127.0.0.1:{port}: "
        "address already in use\n",
    )


def test_echo_workers_need_reuse_port(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    assert _cli.main(["echo", "--port", "0", "--workers", "2"]) == 2
    assert capsys.readouterr() == (
        "",
        "python -m trio_emtcp echo: error: --workers: needs SO_REUSEPORT, "
        "which this system lacks\n",
    )


async def test_example_echo_server_serves_and_stops() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            _spawn(
                [*PYTHON, str(EXAMPLE), "0"],
                r"^listening on 127\.0\.0\.1:(?P<port>\d+)$",
                stdout=True,
            ) as server,
            await trio.open_tcp_stream("127.0.0.1", server.port) as conn,
        ):
            await conn.send_all(b"hello")
            assert await conn.receive_some(5) == b"hello"
            assert await server.stop(signal.SIGINT) == 0
            assert await conn.receive_some(1) == b""
        await server.log.wait_eof()
    assert server.log.lines[-1] == "stopped"


@final
class _FlakyAcceptor:
    """Fails ``accept`` with ``errors`` in turn, then hands out ``conns``."""

    def __init__(self, errors: list[OSError], conns: list[Socket]) -> None:
        self.errors = errors
        self.conns = conns
        self.calls: list[float] = []

    async def accept(self) -> Socket:
        self.calls.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        if self.conns:
            return self.conns.pop(0)
        await trio.sleep_forever()


async def test_accept_loop_backs_off_on_capacity_errors(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await socket_pair()
    fake = _FlakyAcceptor(
        [OSError(errno.EMFILE, "Too many open files"), OSError(errno.ENOBUFS, "x")],
        [b],
    )
    log = logging.getLogger("tests.test_cli")
    async with a, trio.open_nursery() as nursery:
        nursery.start_soon(_echo.accept_loop, cast(Acceptor, fake), nursery, log)
        # The connection handed out after the errors is served.
        await stream.write_all(a, b"ping")
        buf = bytearray(4)
        await stream.read_all(a, buf)
        assert buf == b"ping"
        nursery.cancel_scope.cancel()
    start = fake.calls[0]
    assert [t - start for t in fake.calls[:3]] == pytest.approx(
        [0, _echo.ACCEPT_BACKOFF, 2 * _echo.ACCEPT_BACKOFF]
    )
    assert [r.getMessage() for r in caplog.records][:2] == [
        "accept: too many open files; retrying in 0.1 s",
        "accept: x; retrying in 0.1 s",
    ]


async def test_accept_loop_raises_other_errors() -> None:
    fake = _FlakyAcceptor([OSError(errno.EINVAL, "Invalid argument")], [])
    log = logging.getLogger("tests.test_cli")
    with pytest.raises(OSError, match=r"Invalid argument$") as raised:
        await _echo.accept_loop(cast(Acceptor, fake), cast(trio.Nursery, None), log)
    assert raised.value.errno == errno.EINVAL


async def test_stop_workers_kills_a_worker_that_ignores_the_signal(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn = (
        "import signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", stubborn],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with process.stdout:
            # Its SIGTERM handler is in place once it says so.
            assert await process.stdout.receive_some() == b"ready\n"
        start = trio.current_time()
        log = logging.getLogger("tests.test_cli")
        assert not await _echo.stop_workers([process], signal.SIGTERM, log)
        assert trio.current_time() - start == pytest.approx(_echo.WORKER_STOP_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
    assert process.returncode == -signal.SIGKILL
    assert process.stdin is not None
    with pytest.raises(trio.ClosedResourceError):
        await process.stdin.send_all(b"x")  # _stop_workers closed our end
    assert [r.getMessage() for r in caplog.records] == [
        f"worker 1 (pid {process.pid}) still running after 10 s; killing it"
    ]


# -- echo client ---------------------------------------------------------------


async def test_echo_client_pipes_stdin_through_the_server() -> None:
    data = _lines_payload(100) + b"x" * (300 * 1024) + b"\nno newline at the end"
    with trio.fail_after(TIMEOUT):
        async with _echo_server() as server:
            done = await trio.run_process(
                [*CLI, "echo-client", "--port", str(server.port)],
                stdin=data,
                capture_stdout=True,
                capture_stderr=True,
            )
            await server.log.wait_for(
                r"^disconnected: 127\.0\.0\.1:\d+ \(end of stream\), "
                rf"received {len(data)} bytes, sent {len(data)} bytes$"
            )
            assert await server.stop() == 0
    assert done.returncode == 0
    assert done.stderr == b""
    assert done.stdout == data


async def test_echo_client_empty_input_exits_0() -> None:
    with trio.fail_after(TIMEOUT):
        async with _echo_server() as server:
            done = await trio.run_process(
                [*CLI, "echo-client", "--port", str(server.port)],
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
            )
            assert await server.stop() == 0
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


async def _run_client_against(behaviour: str) -> tuple[int, bytes, bytes]:
    """echo-client against a server that closes (FIN) or resets (RST) at once.

    The client's stdin is a pipe kept open, so the client is still sending
    when the server goes.
    """
    async with Acceptor() as acceptor:
        loopback = Address.loopback_v4()
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen()
        process = await trio.lowlevel.open_process(
            [*CLI, "echo-client", "--port", str(acceptor.local_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            await process.stdin.send_all(b"hi\n")
            async with await acceptor.accept() as conn:
                # Read what the client sent: it is connected and running,
                # so what follows hits its transfer, not its connect.
                assert await stream.read_all(conn, bytearray(3)) == 3
                if behaviour == "reset":
                    conn.set_option("linger", True, 0)
            out = _Lines(process.stdout)
            err = _Lines(process.stderr)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(out.collect)
                nursery.start_soon(err.collect)
                status = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
                await process.stdin.aclose()
    return status, out.text.encode(), err.text.encode()


async def test_echo_client_server_closing_early_is_an_error() -> None:
    with trio.fail_after(TIMEOUT):
        status, out, err = await _run_client_against("close")
    assert (status, out) == (1, b"")
    assert re.fullmatch(
        rb"python -m trio_emtcp echo-client: error: 127\.0\.0\.1:\d+ closed the "
        rb"connection before the end of input",
        err,
    )


async def test_echo_client_server_reset_is_an_error() -> None:
    with trio.fail_after(TIMEOUT):
        status, out, err = await _run_client_against("reset")
    assert (status, out) == (1, b"")
    assert re.fullmatch(
        rb"python -m trio_emtcp echo-client: error: connection to "
        rb"127\.0\.0\.1:\d+: connection reset by peer",
        err,
    )


async def test_echo_client_unreadable_stdin_is_an_error() -> None:
    async with Acceptor() as acceptor:
        loopback = Address.loopback_v4()
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen()  # the connection waits in the backlog: enough
        # The write end of a pipe: reading it fails with EBADF.
        read_end, write_end = os.pipe()
        try:
            with trio.fail_after(TIMEOUT):
                done = await trio.run_process(
                    [*CLI, "echo-client", "--port", str(acceptor.local_port)],
                    stdin=write_end,
                    check=False,
                    capture_stdout=True,
                    capture_stderr=True,
                )
        finally:
            os.close(read_end)
            os.close(write_end)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr == (
        b"python -m trio_emtcp echo-client: error: stdin: bad file descriptor\n"
    )


def test_echo_client_connection_refused_is_one_line_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Bound but not listening: the port is ours and refuses connections.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        assert _cli.main(["echo-client", "--port", str(port)]) == 1
    assert capsys.readouterr() == (
        "",
        f"python -m trio_emtcp echo-client: error: cannot connect to "
        f"127.0.0.1:{port}: connection refused\n",
    )


# -- helpers of _cli: resolution and connection --------------------------------


async def test_resolve_numeric_address_skips_the_resolver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("resolver called")

    monkeypatch.setattr(trio.socket, "getaddrinfo", refuse)
    assert await _common.resolve("::1", 7, passive=False) == [Address("::1")]


async def test_resolve_name_keeps_order_drops_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[object, ...]] = []

    async def fake(host: str, port: int, **kwargs: object) -> list[Any]:
        seen.append((host, port, kwargs["flags"]))
        stream = socket.SOCK_STREAM
        return [
            (socket.AF_INET6, stream, 6, "", ("::1", port, 0, 0)),
            (socket.AF_INET, stream, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET6, stream, 6, "", ("::1", port, 0, 0)),
        ]

    monkeypatch.setattr(trio.socket, "getaddrinfo", fake)
    assert await _common.resolve("example", 7, passive=True) == [
        Address("::1"),
        Address("127.0.0.1"),
    ]
    # Through ip.tcp.get_address_info, which adds numeric_service for an
    # int port.
    assert seen == [("example", 7, socket.AI_PASSIVE | socket.AI_NUMERICSERV)]


async def test_resolve_failure_is_a_command_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fail(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(trio.socket, "getaddrinfo", fail)
    with pytest.raises(
        _common.CommandError,
        match=r"^cannot resolve 'nowhere': name or service not known$",
    ):
        await _common.resolve("nowhere", 7, passive=False)


def test_listen_keep_alive_refused_is_a_command_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A kernel without one of the keep-alive options: a one-line error,
    # and the acceptor closed.
    made: list[Acceptor] = []
    set_option = Acceptor.set_option

    def refuse(self: Acceptor, name: str, value: object) -> None:
        made.append(self)
        if name == "keep_alive_interval":
            raise OSError(errno.ENOPROTOOPT, os.strerror(errno.ENOPROTOOPT))
        set_option(self, name, value)  # type: ignore[arg-type]

    monkeypatch.setattr(Acceptor, "set_option", refuse)
    with (
        no_fd_leak(),
        pytest.raises(
            _common.CommandError,
            match=r"^cannot listen on 127\.0\.0\.1:0: protocol not available$",
        ),
    ):
        _common.listen(
            Address.loopback_v4(), 0, None, reuse_port=False, keep_alive=(5, 2, 3)
        )
    assert made
    assert not made[-1].is_open


async def test_connect_falls_back_to_the_next_address() -> None:
    async with Acceptor() as acceptor:
        loopback = Address.loopback_v4()
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen()
        port = acceptor.local_port
        # 127.0.0.2 is loopback too, but nothing listens there: refused.
        sock = await _common.connect([Address("127.0.0.2"), loopback], port)
        async with sock, await acceptor.accept() as peer:
            assert sock.remote_address == loopback
            assert peer.remote_port == sock.local_port


async def test_connect_reports_the_last_failure() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with pytest.raises(
            _common.CommandError,
            match=rf"^cannot connect to 127\.0\.0\.1:{port}: connection refused$",
        ):
            await _common.connect([Address("127.0.0.2"), Address("127.0.0.1")], port)


# -- command line --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["echo", "--port", "70000"],
            r"echo: error: argument --port: must be in 0\.\.65535, got 70000",
        ),
        (
            ["echo", "--port", "7x"],
            r"echo: error: argument --port: expected an integer in 0\.\.65535, "
            r"got '7x'",
        ),
        (
            ["echo-client", "--port", "-1"],
            r"echo-client: error: argument --port: expected an integer in "
            r"0\.\.65535, got '-1'",
        ),
        (
            ["echo", "--workers", "0"],
            r"echo: error: argument --workers: must be >= 1, got 0",
        ),
        (
            ["echo", "--backlog", "-1"],
            r"echo: error: argument --backlog: must be >= 0, got -1",
        ),
        (
            ["echo", "--backlog", "many"],
            r"echo: error: argument --backlog: expected an integer, got 'many'",
        ),
        ([], r": error: the following arguments are required: COMMAND"),
        (["bogus"], r": error: argument COMMAND: invalid choice: 'bogus' .*"),
        (["demo", "--loud"], r": error: unrecognized arguments: --loud"),
    ],
)
def test_main_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        _cli.main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert re.fullmatch(rf"python -m trio_emtcp ?{message}\n", err)


async def test_bad_port_from_the_shell_exits_2_without_traceback() -> None:
    with trio.fail_after(TIMEOUT):
        done = await trio.run_process(
            [*CLI, "echo", "--port", "65536"],
            check=False,
            capture_stdout=True,
            capture_stderr=True,
        )
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr == (
        b"python -m trio_emtcp echo: error: argument --port: "
        b"must be in 0..65535, got 65536\n"
    )


# -- the echo server under load (SPEC §10) ----------------------------------------


async def _clients(port: int, count: int) -> list[Socket]:
    clients = []
    for _ in range(count):
        sock = Socket()
        await sock.connect(Address.loopback_v4(), port)
        clients.append(sock)
    return clients


async def test_echo_idle_connections_hold_no_buffer() -> None:
    settings = _echo.EchoSettings()
    pool = settings.pool
    log = logging.getLogger("tests.test_cli.idle")
    async with _listening_acceptor() as acceptor, trio.open_nursery() as nursery:
        nursery.start_soon(_echo.accept_loop, acceptor, nursery, log, settings)
        clients = await _clients(acceptor.local_port, 20)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.in_use == 0
        assert pool.kept == 0  # nothing was ever needed
        for sock in clients[:5]:
            await sock.write_some(b"ping")
        for sock in clients[:5]:
            buf = bytearray(4)
            await stream.read_all(sock, buf)
            assert buf == b"ping"
        await trio.testing.wait_all_tasks_blocked()
        # Small reads take a buffer of their own size, not a pooled one.
        assert (pool.in_use, pool.kept) == (0, 0)
        payload = bytes(range(256)) * 512  # 128 KiB: pooled 64 KiB reads
        async with trio.open_nursery() as inner:
            inner.start_soon(stream.write_all, clients[0], payload)
            back = bytearray(len(payload))
            await stream.read_all(clients[0], back)
        assert back == payload
        await trio.testing.wait_all_tasks_blocked()
        assert pool.in_use == 0
        assert pool.kept == 1  # given back, kept for the next large read
        for sock in clients:
            sock.close()
        nursery.cancel_scope.cancel()


def test_BufferPool_keeps_at_most_its_limit() -> None:
    pool = _echo.BufferPool(size=8, keep=2)
    taken = [pool.take() for _ in range(5)]
    assert pool.in_use == 5
    for buf in taken:
        pool.give(buf)
    assert (pool.in_use, pool.kept) == (0, 2)
    assert pool.take() is taken[1]  # reused


@asynccontextmanager
async def _listening_acceptor() -> AsyncIterator[Acceptor]:
    from trio_emtcp import ip

    async with ip.tcp.listen(Address.loopback_v4(), 0) as acceptor:
        yield acceptor


async def test_echo_idle_timeout_closes_a_silent_connection(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _echo.EchoSettings(idle_timeout=5.0)
    log = logging.getLogger("tests.test_cli.timeout")
    caplog.set_level(logging.INFO, logger=log.name)
    async with _listening_acceptor() as acceptor, trio.open_nursery() as nursery:
        nursery.start_soon(_echo.accept_loop, acceptor, nursery, log, settings)
        (busy, silent) = await _clients(acceptor.local_port, 2)
        start = trio.current_time()
        closed_at: list[float] = []

        async def wait_close() -> None:
            with pytest.raises(trio_emtcp.EndOfFile):
                await silent.read_some(bytearray(1))
            closed_at.append(trio.current_time() - start)

        async with busy, silent, trio.open_nursery() as inner:
            inner.start_soon(wait_close)
            for _ in range(4):  # busy sends every 3 s: never idle 5 s
                await trio.sleep(3)
                await busy.write_some(b"x")
                await stream.read_all(busy, bytearray(1))
        assert closed_at == [pytest.approx(5, abs=0.01)]
        nursery.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("(idle for 5 s)" in m for m in messages) == 1


async def test_echo_max_connections_leaves_the_rest_in_the_backlog() -> None:
    log = logging.getLogger("tests.test_cli.max")
    settings = _echo.EchoSettings()
    async with _listening_acceptor() as acceptor, trio.open_nursery() as nursery:
        nursery.start_soon(_echo.accept_loop, acceptor, nursery, log, settings, 2)
        first, second, third = await _clients(acceptor.local_port, 3)
        for sock in (first, second, third):
            await sock.write_some(b"q")
        for sock in (first, second):
            await stream.read_all(sock, bytearray(1))
        await trio.testing.wait_all_tasks_blocked()
        # The third connection was made by the kernel, not accepted.
        assert third.io_control("bytes_readable") == 0
        first.close()
        with trio.fail_after(10):
            await stream.read_all(third, bytearray(1))  # its turn came
        second.close()
        third.close()
        nursery.cancel_scope.cancel()


async def test_echo_keep_alive_reaches_accepted_connections() -> None:
    acceptor = _common.listen(
        Address.loopback_v4(), 0, None, reuse_port=False, keep_alive=_echo.KEEP_ALIVE
    )
    async with acceptor:
        (client,) = await _clients(acceptor.local_port, 1)
        async with client, await acceptor.accept() as server:
            assert server.get_option("keep_alive") is True
            assert server.get_option("keep_alive_idle") == 60
            assert server.get_option("keep_alive_interval") == 10
            assert server.get_option("keep_alive_count") == 6


def test_echo_keep_alive_idle_timeout_and_max_connections_options() -> None:
    parse = _cli.build_parser().parse_args
    args = parse(["echo"])
    assert args.keep_alive == (60, 10, 6)
    assert args.idle_timeout is None
    assert args.max_connections is None
    args = parse(
        [
            "echo",
            "--keep-alive",
            "30,5,3",
            "--idle-timeout",
            "2.5",
            "--max-connections",
            "9",
        ]
    )
    assert (args.keep_alive, args.idle_timeout, args.max_connections) == (
        (30, 5, 3),
        2.5,
        9,
    )
    assert parse(["echo", "--keep-alive", "off"]).keep_alive is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keep-alive", "60,10"], "expected IDLE,INTERVAL,COUNT"),
        (["--keep-alive", "0,10,6"], "IDLE must be in 1..32767, got 0"),
        (["--keep-alive", "60,10,200"], "COUNT must be in 1..127, got 200"),
        (["--idle-timeout", "0"], "must be > 0, got 0"),
        (["--idle-timeout", "soon"], "expected a number of seconds"),
        (["--max-connections", "0"], "must be >= 1, got 0"),
    ],
)
def test_echo_load_options_refuse_bad_values(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _cli.build_parser().parse_args(["echo", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_DroppingHandler_never_blocks_and_counts_what_it_dropped() -> None:
    class Stuck:
        """A stderr nobody drains: every write waits until released."""

        def __init__(self) -> None:
            self.gate = threading.Event()
            self.entered = threading.Event()
            self.drained = threading.Event()
            self.lines: list[str] = []

        def write(self, text: str) -> None:
            self.entered.set()
            self.gate.wait(10)
            self.lines.append(text)
            if handler._lines.empty():  # the queue is written out
                self.drained.set()

        def flush(self) -> None:
            pass

    out = Stuck()
    handler = _echo.DroppingHandler(out, capacity=10)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("tests.test_cli.dropping")
    log.propagate = False
    log.addHandler(handler)
    try:
        start = time.monotonic()
        log.warning("line 0")
        # The writer holds the first line before the rest come: a writer
        # thread slow to start would take queued lines later and reset the
        # count with its note (the race a loaded machine showed).
        assert out.entered.wait(10)
        for n in range(1, 100):
            log.warning("line %d", n)
        assert time.monotonic() - start < 1  # not one write waited
        assert handler.dropped >= 100 - 11
        out.gate.set()
        assert out.drained.wait(10)
        log.warning("after")
    finally:
        log.removeHandler(handler)
        handler.close()
    assert out.lines[0] == "line 0\n"
    assert re.fullmatch(r"\(\d+ log lines dropped: stderr was full\)\n", out.lines[-2])
    assert out.lines[-1] == "after\n"


async def test_echo_keeps_serving_when_nobody_reads_its_stderr() -> None:
    # The old server wrote its log in the event loop: with stderr a pipe
    # nobody drained it froze after ~1,500 connections.
    process = await trio.lowlevel.open_process(
        [*CLI, "echo", "--port", "0"], stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        with trio.fail_after(TIMEOUT):
            first = await process.stderr.receive_some(4096)
            match = re.search(rb"listening on 127\.0\.0\.1:(\d+)", first)
            assert match, first
            port = int(match[1])
            # 1,500 connections log 3,000 lines: far more than the pipe
            # (64 KiB) and the handler's queue hold.
            for _ in range(1500):
                async with await trio_emtcp.ip.dial("127.0.0.1", port) as sock:
                    await sock.write_some(b"e")
                    await stream.read_all(sock, bytearray(1))
            # Drain the pipe; the next lines say how many were dropped.
            log = _Lines(process.stderr)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(log.collect)
                await trio.testing.wait_all_tasks_blocked()
                async with await trio_emtcp.ip.dial("127.0.0.1", port) as sock:
                    await sock.write_some(b"e")
                    await stream.read_all(sock, bytearray(1))
                (dropped,) = await log.wait_for(
                    r"^\((\d+) log lines dropped: stderr was full\)$"
                )
                assert int(dropped[1]) > 0
                process.send_signal(signal.SIGTERM)
                await log.wait_for(r"^stopped$")
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
