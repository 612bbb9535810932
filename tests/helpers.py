"""Helpers shared by the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
import trio
import trio.testing

from trio_emtcp import OperationAborted
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket

# ``nox -s fuzz``: how many examples each property runs (0: the tests
# session's own counts).
FUZZ_EXAMPLES = int(os.environ.get("TRIO_EMTCP_FUZZ_EXAMPLES", "0"))


def examples(count: int) -> int:
    """A property's number of examples: ``count``, or more under fuzzing."""
    return max(count, FUZZ_EXAMPLES)


def open_fds() -> int:
    """How many descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def no_fd_leak() -> Iterator[None]:
    """Fail if the block leaves more descriptors open than it found."""
    before = open_fds()
    yield
    assert open_fds() == before


def fill_send_buffer(sock: Socket) -> int:
    """Write until the kernel refuses more; returns how much was queued.

    Shrinks the send buffer first so that the peer's receive buffer and
    ours fill within a few hundred KiB.
    """
    sock.set_option("send_buffer_size", 4096)
    raw = sock._sock
    assert raw is not None
    total = 0
    chunk = b"x" * 65536
    for _ in range(10_000):
        try:
            total += raw.send(chunk)
        except BlockingIOError:
            return total
    raise AssertionError("send buffer never filled")


def blocking_pair(
    family: int = socket.AF_INET,
) -> tuple[socket.socket, socket.socket]:
    """A connected pair of blocking stdlib sockets (a real, foreign peer)."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = socket.socket(family)
        client.connect(listener.getsockname()[:2])
        server, _ = listener.accept()
    return client, server


def require_tool(name: str) -> str:
    """The path of a command-line peer; skip when absent, except under CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required under CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


def listening(address: Address | None = None, backlog: int | None = None) -> Acceptor:
    """An acceptor bound to an ephemeral port on loopback, listening."""
    if address is None:
        address = Address.loopback_v4()
    acceptor = Acceptor()
    try:
        acceptor.open(address)
        acceptor.bind(address, 0)
        acceptor.listen(backlog)
    except BaseException:
        acceptor.close()
        raise
    return acceptor


# -- buffers released however an operation ends (SPEC §7) ------------------------

Op = Callable[[], Awaitable[object]]


def assert_not_exported(buf: bytearray) -> None:
    """Fail if a view still exports ``buf``: resizing it needs none."""
    size = len(buf)
    buf.append(0)  # BufferError: Existing exports of data
    del buf[size:]


async def _when_blocked(then: Callable[[], object]) -> None:
    await trio.testing.wait_all_tasks_blocked()
    then()


async def cancelled_midway(op: Op, buf: bytearray) -> None:
    """Cancel ``op``'s own scope once it blocks; then ``buf`` must be free.

    The check runs in the same task right after the scope catches the
    cancellation, with no checkpoint in between, as a caller would resize
    its buffer.
    """
    scope = trio.CancelScope()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_when_blocked, scope.cancel)
            with scope:
                await op()
            assert scope.cancelled_caught, "the operation did not block"
            assert_not_exported(buf)


async def aborted_midway(
    op: Op,
    buf: bytearray,
    abort: Callable[[], object],
    expected: type[BaseException] = OperationAborted,
) -> BaseException:
    """Run ``abort()`` once ``op`` blocks; ``buf`` must be free in ``except``.

    The check runs inside the ``except`` block, while the exception (and
    its traceback, with every frame the operation went through) is alive.
    """
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_when_blocked, abort)
            try:
                await op()
            except expected as exc:
                assert_not_exported(buf)
                return exc
    raise AssertionError("the operation was not aborted")


async def failing(
    op: Op,
    buf: bytearray,
    expected: type[BaseException] | tuple[type[BaseException], ...],
) -> None:
    """``op`` fails with ``expected``; ``buf`` must be free in ``except``."""
    try:
        await op()
    except expected:
        assert_not_exported(buf)
    else:
        raise AssertionError(f"expected {expected}")


# -- a peer that vanished (SPEC §10) ----------------------------------------------


@contextmanager
def blackhole(port: int) -> Iterator[None]:
    """Drop every packet sent to loopback ``port``, as if its owner vanished.

    A packet-filter rule for the test's own port only (nothing else on the
    machine is touched), deleted on the way out.  Skips where the machine
    does not allow it: not root, no ``iptables`` (required under CI,
    which installs it), or a kernel without the packet filter.
    """
    if os.geteuid() != 0:
        pytest.skip("blackholing a port needs root (a packet-filter rule)")
    tool = require_tool("iptables")
    rule = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP"]
    added = subprocess.run(
        [tool, "-w", "-I", *rule], capture_output=True, text=True, check=False
    )
    if added.returncode != 0:
        pytest.skip(f"iptables refused the rule: {added.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([tool, "-w", "-D", *rule], check=True, capture_output=True)


# -- blocking an operation, then acting on it ---------------------------------------

LOOPBACK = Address.loopback_v4()

#: Another task's three ways to end what is pending on a socket or acceptor.
ABORTS: dict[str, Callable[[Socket | Acceptor], object]] = {
    "close": lambda s: s.close(),
    "cancel": lambda s: s.cancel(),
    "release": lambda s: os.close(s.release()),
}


async def blocked_then(
    op: Op,
    then: Callable[[], object],
    *,
    scope: trio.CancelScope | None = None,
) -> object:
    """Start ``op`` in a task, wait until it blocks, call ``then()``.

    ``op`` runs inside ``scope`` if given (for the task's own
    cancellation).  Returns what ``op`` returned, or the exception it
    raised (``trio.Cancelled`` included).  Fails instead of hanging if
    ``then()`` does not end the operation (only a broken build waits that
    long), or if the operation did not block.
    """
    outcome: list[object] = []

    async def task() -> None:
        with scope or trio.CancelScope():
            try:
                outcome.append(await op())
            except BaseException as exc:
                outcome.append(exc)
                if isinstance(exc, trio.Cancelled):
                    raise

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(task)
            await trio.testing.wait_all_tasks_blocked()
            assert not outcome, f"the operation did not block: {outcome}"
            then()
    assert len(outcome) == 1
    return outcome[0]
