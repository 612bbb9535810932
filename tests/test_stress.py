"""Stress (SPEC §4): many connections through the echo server, and many
connect/accept/close cycles with the descriptor count unchanged.

The default sizes keep this file to a few seconds; the ``soak`` variants
(``nox -s soak``, excluded by default) run ten times as much.
"""

from __future__ import annotations

import logging
import os
import random
import resource
from collections.abc import Iterator

import pytest
import trio

from trio_emtcp import EndOfFile, ip, stream
from trio_emtcp._cli import _echo
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import open_fds

LOOPBACK = "127.0.0.1"

# Concurrent echo clients.  Each holds two descriptors (its socket and the
# server's), so the process needs a little over twice this many.
CONNECTIONS = 1000
# The largest payload one echo client sends, in bytes (sizes are uniform in
# 0..this): large enough that most payloads take several reads and writes.
MAX_PAYLOAD = 64 * 1024
# Connect/accept/close cycles in a row.
CYCLES = 10_000
# How often the cycle test compares the descriptor count, in cycles: a leak
# shows up early, and counting (a directory listing) stays cheap.
FD_CHECK_EVERY = 1000
# Headroom over the descriptors the connections need, for the interpreter,
# pytest, Trio's epoll and wakeup fds, and the listener.
FD_HEADROOM = 256


@pytest.fixture
def fd_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Raise RLIMIT_NOFILE's soft limit for ``request.param`` connections.

    Restored afterwards.  Skips when the hard limit is too low (only root
    can raise that), except under CI, where it fails.
    """
    connections: int = request.param
    need = 2 * connections + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft >= need:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        message = f"RLIMIT_NOFILE's hard limit is {hard}; this test needs {need}"
        if os.environ.get("CI"):
            # CI's machines allow it: a skip there would hide the test.
            pytest.fail(message)
        pytest.skip(message)
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _quiet_logger() -> logging.Logger:
    """The echo server logs each connection; here that would be noise."""
    log = logging.getLogger("tests.test_stress.echo")
    log.setLevel(logging.WARNING)
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


class _Gate:
    """Holds every client until all of them are connected."""

    def __init__(self, clients: int) -> None:
        self.waiting = clients
        self.open = trio.Event()

    async def arrive(self) -> None:
        self.waiting -= 1
        if not self.waiting:
            self.open.set()
        await self.open.wait()


async def _echo_client(port: int, payload: bytes, gate: _Gate, done: list[int]) -> None:
    """Send ``payload``, half-close, and check the echo is exactly it."""
    async with Socket() as sock:
        await sock.connect(LOOPBACK, port)
        # So that all the connections are open at once, not merely started
        # at once (a small payload's exchange could end before the last
        # client connects).
        await gate.arrive()
        echoed = bytearray(len(payload))
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                assert await stream.write_all(sock, payload) == len(payload)
                sock.shutdown("send")

            # Sending and reading at once: the server echoes as it reads, so
            # a client that only read after sending everything could fill
            # both directions' buffers and deadlock with the server.
            nursery.start_soon(send)
            assert await stream.read_all(sock, echoed) == len(payload)
        assert echoed == payload
        # And nothing after it: the server closes once it has echoed all.
        with pytest.raises(EndOfFile):
            await sock.read_some(bytearray(1))
    done.append(len(payload))


async def _run_echo_clients(connections: int, max_payload: int) -> None:
    before = open_fds()
    rng = random.Random(f"echo-{connections}-{max_payload}")
    payloads = [rng.randbytes(rng.randint(0, max_payload)) for _ in range(connections)]
    stop = trio.Event()

    async def wait_stop() -> str:
        await stop.wait()
        return "the test is done"

    done: list[int] = []
    gate = _Gate(connections)
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor, trio.open_nursery() as nursery:
        # The real echo server of `python -m trio_emtcp echo`, in-process.
        nursery.start_soon(_echo.serve, acceptor, _quiet_logger(), wait_stop)
        async with trio.open_nursery() as clients:
            for payload in payloads:
                clients.start_soon(
                    _echo_client, acceptor.local_port, payload, gate, done
                )
        stop.set()
    assert sorted(done) == sorted(len(p) for p in payloads)
    assert open_fds() == before


@pytest.mark.parametrize(
    ("fd_limit", "max_payload"),
    [
        pytest.param(CONNECTIONS, MAX_PAYLOAD, id="default"),
        pytest.param(CONNECTIONS, 10 * MAX_PAYLOAD, id="10x", marks=pytest.mark.soak),
    ],
    indirect=["fd_limit"],
)
async def test_echo_server_echoes_concurrent_connections_exactly(
    fd_limit: None, max_payload: int
) -> None:
    await _run_echo_clients(CONNECTIONS, max_payload)


async def _cycle(acceptor: Acceptor, port: int) -> None:
    client = Socket()
    try:
        await client.connect(LOOPBACK, port)
        server = await acceptor.accept()
    except BaseException:
        client.close()
        raise
    # The accepted side closes first, so TIME_WAIT lands on the server's
    # end of each connection and not on the client's ephemeral port: the
    # soak variant's 100,000 cycles would otherwise run the port range dry.
    server.close()
    client.close()


@pytest.mark.parametrize(
    "cycles",
    [
        pytest.param(CYCLES, id="default"),
        pytest.param(10 * CYCLES, id="10x", marks=pytest.mark.soak),
    ],
)
async def test_Acceptor_connect_accept_close_cycles_keep_the_fd_count(
    cycles: int,
) -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
        port = acceptor.local_port
        before = open_fds()
        for i in range(1, cycles + 1):
            await _cycle(acceptor, port)
            if i % FD_CHECK_EVERY == 0:
                assert open_fds() == before, f"after {i} cycles"
        assert open_fds() == before
