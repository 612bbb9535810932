"""Relaxed schedule points (SPEC §8, §11): opt-in, per task, never the cancel point.

Time is Trio's: the tests run on a MockClock that does not move unless a
test jumps it (``mock_clock``), so that "less than ``interval`` ago" is
decided by the test, never by the machine.  Whether the operations of a
task yield is seen from the outside: a *bystander* task, always runnable,
counts the times it gets to run.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

import trio_emtcp
from trio_emtcp import (
    EndOfFile,
    OperationAborted,
    RelaxedSchedulePoints,
    relaxed_schedule_points,
    stream,
)
from trio_emtcp.ip.tcp import Socket

from .helpers import blackhole, listening

Pair = tuple[Socket, Socket]
INTERVAL = 0.001


class Yields(trio.abc.Instrument):
    """Counts the times a task is resumed: once per yield (schedule point)."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.count = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.count += 1


@contextlib.contextmanager
def yields() -> Iterator[Yields]:
    """Count the current task's yields inside the block."""
    counter = Yields(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(counter)
    try:
        yield counter
    finally:
        trio.lowlevel.remove_instrument(counter)


async def _yields_of(op: Callable[[], Awaitable[object]]) -> int:
    with yields() as counter:
        await op()
    return counter.count


class Bystander:
    """A task that is always runnable and counts its turns."""

    def __init__(self) -> None:
        self.turns = 0

    async def run(self) -> None:
        while True:
            self.turns += 1
            await trio.lowlevel.checkpoint()


@contextlib.asynccontextmanager
async def bystander() -> AsyncIterator[Bystander]:
    b = Bystander()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.run)
        await trio.lowlevel.checkpoint()
        yield b
        nursery.cancel_scope.cancel()


# -- what the block changes ---------------------------------------------------


async def test_operations_that_do_not_block_skip_the_schedule_point(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    buf = bytearray(1)
    # Outside the block: every operation lets the bystander run.
    assert await _yields_of(lambda: a.write_some(b"x")) == 1
    with relaxed_schedule_points(INTERVAL):
        for _ in range(50):
            assert await _yields_of(lambda: a.write_some(b"x")) == 0
            assert await _yields_of(lambda: b.read_some(buf)) == 0
    # And after it, again.
    assert await _yields_of(lambda: b.read_some(buf)) == 1


async def test_a_schedule_point_once_the_interval_has_passed(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    buf = bytearray(1)
    with relaxed_schedule_points(INTERVAL):
        assert await _yields_of(lambda: a.write_some(b"x")) == 0
        mock_clock.jump(INTERVAL * 0.99)
        assert await _yields_of(lambda: b.read_some(buf)) == 0
        mock_clock.jump(INTERVAL * 0.02)
        # The interval has passed: this one yields, and counts anew.
        assert await _yields_of(lambda: a.write_some(b"x")) == 1
        assert await _yields_of(lambda: b.read_some(buf)) == 0
        mock_clock.jump(INTERVAL)
        assert await _yields_of(lambda: a.write_some(b"x")) == 1


async def test_another_task_runs_at_least_once_per_interval_of_a_busy_loop(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    # A busy loop whose operations each take a tenth of the interval (the
    # test moves the clock; the machine's speed does not matter): one
    # operation in every 10 or 11 yields, and another runnable task runs
    # each time.
    a, b = pair
    buf = bytearray(1)
    yielded_at: list[int] = []
    async with bystander() as other:
        start = other.turns
        with relaxed_schedule_points(INTERVAL):
            for i in range(200):
                with yields() as counter:
                    if i % 2:
                        await b.read_some(buf)
                    else:
                        await a.write_some(b"x")
                if counter.count:
                    yielded_at.append(i)
                mock_clock.jump(INTERVAL / 10)
        turns = other.turns - start
    gaps = {j - i for i, j in itertools.pairwise(yielded_at)}
    assert gaps <= {10, 11}, yielded_at
    assert len(yielded_at) >= 18
    # The bystander's turn after the last yield may fall after the loop.
    assert turns >= len(yielded_at) - 1


@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("stream.write_all", lambda a, b: stream.write_all(a, b"abc")),
        ("stream.read_all", lambda a, b: stream.read_all(b, bytearray(3))),
        ("send_all", lambda a, b: a.send_all(b"abc")),
        ("receive_some", lambda a, b: b.receive_some(3)),
        ("send", lambda a, b: a.send(b"abc", ["do_not_route"])),
        ("receive", lambda a, b: b.receive(bytearray(3), ["peek"])),
    ],
)
async def test_every_data_operation_honours_it(
    pair: Pair,
    mock_clock: trio.testing.MockClock,
    name: str,
    op: Callable[[Socket, Socket], Awaitable[object]],
) -> None:
    a, b = pair
    await stream.write_all(a, b"abc" * 100)
    await b.wait("read")
    assert await _yields_of(lambda: op(a, b)) == 1
    with relaxed_schedule_points(INTERVAL):
        assert await _yields_of(lambda: op(a, b)) == 0


async def test_Scanner_get_line_honours_it(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    await stream.write_all(a, b"one\ntwo\nthree\nfour\n")
    await b.wait("read")
    scanner = stream.Scanner(b, b"\n")
    assert await _yields_of(scanner.get_line) == 1  # reads
    assert await _yields_of(scanner.get_line) == 1  # buffered
    with relaxed_schedule_points(INTERVAL):
        assert await _yields_of(scanner.get_line) == 0
        assert await _yields_of(scanner.get_line) == 0
    assert scanner.record_number == 4


async def test_accept_honours_it(mock_clock: trio.testing.MockClock) -> None:
    async with listening() as acceptor:  # an Acceptor is an async context manager
        clients = [Socket() for _ in range(2)]
        for c in clients:
            await c.connect("127.0.0.1", acceptor.local_port)
        with relaxed_schedule_points(INTERVAL):
            for _ in clients:
                got: list[Socket] = []

                async def accept(got: list[Socket] = got) -> None:
                    got.append(await acceptor.accept())

                assert await _yields_of(accept) == 0
                got[0].close()
        for c in clients:
            c.close()


async def test_a_relaxed_task_yields_before_it_waits(
    pair: Pair, mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ping-pong: the relaxed writer skipped the schedule point in which the
    # echo task would have answered.  Before its read waits on the
    # descriptor, it yields once and tries again.  Whether the echo task
    # ran first in that yield is up to Trio's scheduler (it shuffles each
    # batch), so over 60 round trips some reads must find the answer
    # without a wait; without the yield, every one of them would wait.
    a, b = pair
    client_waits = 0
    real_wait = trio_emtcp._socket.wait_readable  # type: ignore[attr-defined]

    async def counting_wait(sock: Any) -> None:
        nonlocal client_waits
        if sock is a._sock:
            client_waits += 1
        await real_wait(sock)

    monkeypatch.setattr(trio_emtcp._socket, "wait_readable", counting_wait)

    async def echo() -> None:
        buf = bytearray(1)
        with contextlib.suppress(EndOfFile):
            while True:
                await b.read_some(buf)
                await b.write_some(buf)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        await wait_all_tasks_blocked()
        buf = bytearray(1)
        with relaxed_schedule_points(INTERVAL):
            for _ in range(60):
                await a.write_some(b"p")
                assert await _yields_of(lambda: a.read_some(buf)) >= 1
                assert buf == b"p"
        a.shutdown("send")
    assert client_waits <= 50


async def test_a_relaxed_connect_waits_for_the_handshake() -> None:
    # connect's retry only reads SO_ERROR, which is 0 while the handshake is
    # under way: yielding and "retrying" would report a connection that does
    # not exist.  With the peer's port dropping every packet, the connect
    # must still be waiting.  (The real clock: the kernel's SYN timer.)
    async with listening() as acceptor:
        with blackhole(acceptor.local_port):
            sock = Socket()
            with relaxed_schedule_points(INTERVAL), trio.move_on_after(0.5) as scope:
                await sock.connect("127.0.0.1", acceptor.local_port)
            assert scope.cancelled_caught
            sock.close()
        async with Socket() as sock:
            with relaxed_schedule_points(INTERVAL):
                await sock.connect("127.0.0.1", acceptor.local_port)
            assert sock.remote_port == acceptor.local_port


# -- what it keeps --------------------------------------------------------------


async def test_the_cancel_point_stays(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    reached = []
    with relaxed_schedule_points(INTERVAL), trio.CancelScope() as scope:
        assert await _yields_of(lambda: a.write_some(b"x")) == 0
        scope.cancel()
        # No schedule point is owed, and still the cancellation, at once.
        await a.write_some(b"x")
        reached.append("write")
    assert scope.cancelled_caught
    with relaxed_schedule_points(INTERVAL), trio.CancelScope() as scope:
        scope.cancel()
        await b.read_some(bytearray(1))
        reached.append("read")
    assert scope.cancelled_caught
    assert reached == []
    # Nothing was written by the cancelled call.
    assert await b.read_some(bytearray(4)) == 1


async def test_close_and_cancel_still_abort_a_blocked_relaxed_task(
    pair: Pair, autojump_clock: trio.testing.MockClock
) -> None:
    _a, b = pair
    outcomes: list[BaseException] = []

    async def reader() -> None:
        with relaxed_schedule_points(INTERVAL):
            try:
                await b.read_some(bytearray(1))
            except OperationAborted as exc:
                outcomes.append(exc)
            try:
                await b.read_some(bytearray(1))
            except OperationAborted as exc:
                outcomes.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await wait_all_tasks_blocked()
            b.cancel()
            await wait_all_tasks_blocked()
            b.close()
    assert len(outcomes) == 2


async def test_waiters_stay_fifo(
    pair: Pair, autojump_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    order: list[str] = []

    async def reader(name: str, relaxed: bool) -> None:
        block = relaxed_schedule_points(INTERVAL if relaxed else 0)
        with block:
            buf = bytearray(1)
            await b.read_some(buf)
            order.append(f"{name}:{buf.decode()}")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for name, relaxed in (("first", True), ("second", False), ("third", True)):
                nursery.start_soon(reader, name, relaxed)
                await wait_all_tasks_blocked()
            await a.write_some(b"1")
            await wait_all_tasks_blocked()
            await a.write_some(b"2")
            await wait_all_tasks_blocked()
            await a.write_some(b"3")
    assert order == ["first:1", "second:2", "third:3"]


async def test_child_tasks_do_not_inherit_it(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, _b = pair
    with relaxed_schedule_points(INTERVAL):

        async def child() -> None:
            with assert_checkpoints():
                await a.write_some(b"x")
            # Its own block, entered by itself, does apply.
            with (
                relaxed_schedule_points(INTERVAL),
                pytest.raises(AssertionError),
                assert_checkpoints(),
            ):
                await a.write_some(b"x")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)


async def test_outside_the_block_every_operation_is_a_full_checkpoint(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    with relaxed_schedule_points(INTERVAL):
        pass
    with assert_checkpoints():
        await a.write_some(b"x")
    with assert_checkpoints():
        await b.read_some(bytearray(1))
    assert not trio_emtcp._relaxed.RELAXED


async def test_interval_zero_is_the_default_behaviour(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    with relaxed_schedule_points(0):
        for _ in range(3):
            with assert_checkpoints():
                await a.write_some(b"x")
            with assert_checkpoints():
                await b.read_some(bytearray(1))


async def test_nested_blocks_use_the_innermost_interval(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, _b = pair
    with relaxed_schedule_points(INTERVAL):
        assert await _yields_of(lambda: a.write_some(b"x")) == 0
        with relaxed_schedule_points(0):
            assert await _yields_of(lambda: a.write_some(b"x")) == 1
            with relaxed_schedule_points(10 * INTERVAL):
                mock_clock.jump(2 * INTERVAL)
                assert await _yields_of(lambda: a.write_some(b"x")) == 0
            assert await _yields_of(lambda: a.write_some(b"x")) == 1
        # Restored: the outer interval, counted from the last one made.
        assert await _yields_of(lambda: a.write_some(b"x")) == 0
        mock_clock.jump(INTERVAL)
        assert await _yields_of(lambda: a.write_some(b"x")) == 1


async def test_the_block_ends_however_its_body_ends(mock_clock: Any) -> None:
    with pytest.raises(KeyError), relaxed_schedule_points(INTERVAL):
        raise KeyError("body")
    assert not trio_emtcp._relaxed.RELAXED
    with trio.move_on_after(1) as scope, relaxed_schedule_points(INTERVAL):
        mock_clock.jump(2)
        await trio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert not trio_emtcp._relaxed.RELAXED


# -- bad values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "exc", "message"),
    [
        (-0.001, ValueError, r"^interval: must be >= 0, got -0\.001$"),
        (math.nan, ValueError, r"^interval: must be finite and >= 0, got nan$"),
        (math.inf, ValueError, r"^interval: must be finite and >= 0, got inf$"),
        ("0.001", TypeError, r"^interval: expected seconds as an int or a float, "),
        (
            True,
            TypeError,
            r"^interval: expected seconds as an int or a float, got bool",
        ),
        (None, TypeError, r"^interval: expected seconds as an int or a float, got "),
    ],
)
def test_bad_intervals_are_refused_when_called(
    value: object, exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message):
        relaxed_schedule_points(value)  # type: ignore[arg-type]


async def test_a_block_is_entered_once_at_a_time() -> None:
    block = relaxed_schedule_points()
    assert isinstance(block, RelaxedSchedulePoints)
    with block, pytest.raises(RuntimeError, match=re.escape("already in use")):
        block.__enter__()
    # Once left, it may be entered again.
    with block:
        pass


def test_outside_a_trio_run_it_cannot_be_entered() -> None:
    with pytest.raises(RuntimeError):
        relaxed_schedule_points().__enter__()


async def test_the_end_of_the_stream_still_arrives(
    pair: Pair, mock_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    await stream.write_all(a, b"end")
    a.shutdown("send")
    await b.wait("read")
    with relaxed_schedule_points(INTERVAL):
        assert await stream.read_all(b, bytearray(3)) == 3
        with pytest.raises(EndOfFile):
            await b.read_some(bytearray(1))
