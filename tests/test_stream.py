"""Tests for trio_emtcp.stream (trio_emtcp/_stream.py)."""

from __future__ import annotations

import array
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

from trio_emtcp import EndOfFile, OperationAborted, socket_pair, stream
from trio_emtcp.ip.tcp import Socket

from .helpers import (
    aborted_midway,
    assert_not_exported,
    cancelled_midway,
    failing,
    fill_send_buffer,
)


async def _drain(sock: Socket, out: bytearray, until: int) -> None:
    buf = bytearray(1 << 16)
    while len(out) < until:
        n = await sock.read_some(buf)
        out += buf[:n]


def _any(value: object) -> Any:
    """Hide a deliberately wrong argument from the type checker."""
    return value


class FakeStream:
    """A duck-typed stream that moves at most ``step`` bytes per call."""

    def __init__(self, data: bytes = b"", step: int = 3) -> None:
        self.data = bytearray(data)
        self.written = bytearray()
        self.step = step
        self.calls = 0

    async def read_some(self, buf: Any) -> int:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        if not self.data:
            raise EndOfFile()
        mv = memoryview(buf).cast("B")
        n = min(self.step, len(mv), len(self.data))
        mv[:n] = self.data[:n]
        del self.data[:n]
        return n

    async def write_some(self, data: Any) -> int:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        mv = memoryview(data).cast("B")
        n = min(self.step, len(mv))
        self.written += mv[:n]
        return n


# -- on a Socket --------------------------------------------------------------


async def test_write_all_and_read_all_on_socket() -> None:
    a, b = await socket_pair()
    async with a, b:
        payload = bytes(range(256)) * 8192  # 2 MiB: the kernel blocks midway
        got = bytearray(len(payload))
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                assert await stream.read_all(b, got) == len(payload)

            nursery.start_soon(reader)
            with assert_checkpoints():
                assert await stream.write_all(a, payload) == len(payload)
        assert got == payload


async def test_write_all_accepts_buffer_types(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    arr = array.array("i", [1, 2, 3])
    assert await stream.write_all(a, arr) == 12
    assert await stream.write_all(a, memoryview(b"xyz")) == 3
    assert await stream.write_all(a, bytearray(b"!")) == 1
    got = bytearray(16)
    assert await stream.read_all(b, got) == 16
    assert bytes(got) == arr.tobytes() + b"xyz!"


async def test_write_all_vectored(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    parts: list[bytes | bytearray | memoryview] = [
        b"head:",
        bytearray(b""),
        memoryview(b"body" * 1000),
        b":tail",
    ]
    size = sum(len(p) for p in parts)
    with assert_checkpoints():
        assert await stream.write_all(a, parts) == size
    got = bytearray(size)
    assert await stream.read_all(b, got) == size
    assert bytes(got) == b"".join(bytes(p) for p in parts)


async def test_write_all_vectored_large_blocks_midway() -> None:
    a, b = await socket_pair()
    async with a, b:
        parts = [bytes([i]) * 300_000 for i in range(8)]
        size = sum(map(len, parts))
        out = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, b, out, size)
            assert await stream.write_all(a, tuple(parts)) == size
        assert out == b"".join(parts)


async def test_empty_operations_checkpoint_and_return_zero(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    calls: list[Callable[[], Awaitable[int]]] = [
        lambda: stream.write_all(a, b""),
        lambda: stream.write_all(a, []),
        lambda: stream.read_all(b, bytearray()),
        lambda: stream.read_at_least(b, bytearray(8), 0),
        lambda: stream.write_at_least(a, b"abc", 0),
    ]
    for call in calls:
        with assert_checkpoints():
            assert await call() == 0


async def test_read_at_least_may_return_more(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    await stream.write_all(a, b"Hello World")
    await b.wait("read")
    buf = bytearray(64)
    assert await stream.read_at_least(b, buf, 1) == 11
    # minimum above the buffer size is clamped (Emilua does the same).
    await stream.write_all(a, b"abcd")
    small = bytearray(4)
    assert await stream.read_at_least(b, small, 100) == 4


async def test_write_at_least(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    n = await stream.write_at_least(a, b"abcdef", 3)
    assert 3 <= n <= 6
    got = bytearray(n)
    await stream.read_all(b, got)
    assert got == b"abcdef"[:n]


async def test_read_all_eof_reports_bytes_transferred(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    await stream.write_all(a, b"abc")
    a.shutdown("send")
    buf = bytearray(10)
    with pytest.raises(EndOfFile) as exc_info:
        await stream.read_all(b, buf)
    assert exc_info.value.bytes_transferred == 3
    assert buf[:3] == b"abc"
    with pytest.raises(EndOfFile) as exc_info:
        await stream.read_all(b, buf)
    assert exc_info.value.bytes_transferred == 0


@pytest.mark.parametrize("how", ["cancel", "close"])
async def test_write_all_aborted_reports_bytes_transferred(how: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        queued = fill_send_buffer(a)
        payload = b"p" * 1_000_000
        caught: list[OperationAborted] = []

        async def writer() -> None:
            with pytest.raises(OperationAborted) as exc_info:
                await stream.write_all(a, payload)
            caught.append(exc_info.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await wait_all_tasks_blocked()
            # Let part of the payload through, then abort.
            got = bytearray(queued + 100_000)
            await stream.read_all(b, got)
            await wait_all_tasks_blocked()
            a.cancel() if how == "cancel" else a.close()
        (exc,) = caught
        assert exc.errno == errno.ECANCELED
        assert 0 < exc.bytes_transferred < len(payload)
        # What the peer sees is exactly what was reported written.
        if how == "cancel":
            a.shutdown("send")
        rest = bytearray()
        buf = bytearray(1 << 16)
        while True:
            try:
                n = await b.read_some(buf)
            except (EndOfFile, ConnectionResetError):
                break
            rest += buf[:n]
        assert len(got) - queued + len(rest) == exc.bytes_transferred


async def test_read_all_cancelled_reports_bytes_transferred(
    pair: tuple[Socket, Socket], autojump_clock: trio.testing.MockClock
) -> None:
    a, b = pair
    await stream.write_all(a, b"12345")
    buf = bytearray(10)
    seen: list[int] = []
    with trio.move_on_after(1) as scope:
        try:
            await stream.read_all(b, buf)
        except trio.Cancelled as exc:
            seen.append(exc.bytes_transferred)  # type: ignore[attr-defined]
            raise
    assert scope.cancelled_caught
    assert seen == [5]
    # Nothing lost: the next five bytes complete the buffer.
    await stream.write_all(a, b"67890")
    assert await stream.read_all(b, memoryview(buf)[5:]) == 5
    assert buf == b"1234567890"


async def test_write_all_is_one_checkpoint_while_the_kernel_accepts() -> None:
    """Many send() calls, one schedule point (SPEC §6, issue 2 item 5)."""

    class PartialSocket(socket.socket):
        calls = 0

        def send(self, data: Any, flags: int = 0) -> int:
            type(self).calls += 1
            return super().send(memoryview(data)[:1000], flags)

    a, b = await socket_pair()
    async with a, b:
        raw = a._sock
        assert raw is not None
        partial = PartialSocket(fileno=raw.detach())
        a._sock = partial
        steps = 0

        class Counter(trio.abc.Instrument):
            def before_task_step(self, task: trio.lowlevel.Task) -> None:
                nonlocal steps
                if task is me:
                    steps += 1

        me = trio.lowlevel.current_task()
        counter = Counter()
        trio.lowlevel.add_instrument(counter)
        try:
            await stream.write_all(a, b"z" * 50_000)
        finally:
            trio.lowlevel.remove_instrument(counter)
        assert PartialSocket.calls == 50
        assert steps == 1
        got = bytearray(50_000)
        await stream.read_all(b, got)
        assert got == b"z" * 50_000


# -- duck typing --------------------------------------------------------------


async def test_duck_typed_streams() -> None:
    fake = FakeStream(b"0123456789")
    buf = bytearray(7)
    assert await stream.read_all(fake, buf) == 7
    assert buf == b"0123456"
    assert await stream.read_at_least(fake, bytearray(10), 2) == 3
    assert await stream.write_all(fake, b"abcdefgh") == 8
    assert await stream.write_all(fake, [b"ij", b"", b"klmn"]) == 6
    assert await stream.write_at_least(fake, b"opqrst", 2) == 3
    assert fake.written == b"abcdefghijklmnopq"


async def test_duck_typed_eof_and_cancel_report_progress(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeStream(b"abcd")
    with pytest.raises(EndOfFile) as exc_info:
        await stream.read_all(fake, bytearray(10))
    assert exc_info.value.bytes_transferred == 4

    class Stuck(FakeStream):
        async def write_some(self, data: Any) -> int:
            if self.written:
                await trio.sleep_forever()
            return await super().write_some(data)

    stuck = Stuck(step=2)
    seen: list[int] = []
    with trio.move_on_after(1) as scope:
        try:
            await stream.write_all(stuck, b"abcdef")
        except trio.Cancelled as exc:
            seen.append(exc.bytes_transferred)  # type: ignore[attr-defined]
            raise
    assert scope.cancelled_caught
    assert seen == [2]


async def test_duck_typed_zero_read_is_eof() -> None:
    class Zero:
        async def read_some(self, buf: Any) -> int:
            await trio.lowlevel.checkpoint()
            return 0

    with pytest.raises(EndOfFile):
        await stream.read_all(Zero(), bytearray(2))


@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        (
            lambda s: stream.write_all(s, _any("text")),
            TypeError,
            r"^data: .* got str; encode it first$",
        ),
        (
            lambda s: stream.write_all(s, _any(5)),
            TypeError,
            r"^data: expected a bytes-like object, got int$",
        ),
        (
            lambda s: stream.write_all(s, _any([b"a", "b"])),
            TypeError,
            r"^data: .* got str",
        ),
        (
            # One message for this everywhere (_args.write_buffer_error).
            lambda s: stream.write_all(s, memoryview(b"abcd")[::2]),
            TypeError,
            r"^data: expected a C-contiguous buffer$",
        ),
        (
            lambda s: stream.write_all(s, [b"a", memoryview(b"abcd")[::2]]),
            TypeError,
            r"^data: expected a C-contiguous buffer$",
        ),
        (
            lambda s: stream.read_all(s, b"ro"),
            TypeError,
            r"^buf: expected a writable buffer",
        ),
        (
            lambda s: stream.read_all(s, _any("x")),
            TypeError,
            r"^buf: expected a writable buffer",
        ),
        (
            lambda s: stream.read_at_least(s, bytearray(4), -1),
            ValueError,
            r"^minimum: must be >= 0, got -1$",
        ),
        (
            lambda s: stream.read_at_least(s, bytearray(4), _any(1.5)),
            TypeError,
            r"^minimum: expected an int, got float$",
        ),
        (
            lambda s: stream.write_at_least(s, b"x", -2),
            ValueError,
            r"^minimum: must be >= 0, got -2$",
        ),
        (
            lambda s: stream.write_at_least(s, b"x", _any(None)),
            TypeError,
            r"^minimum: expected an int",
        ),
    ],
)
async def test_stream_bad_arguments(
    pair: tuple[Socket, Socket], call: Any, exc: type[Exception], pattern: str
) -> None:
    a, _ = pair
    with pytest.raises(exc, match=pattern):
        await call(a)


async def test_stream_on_closed_socket_is_ebadf() -> None:
    a, b = await socket_pair()
    a.close()
    b.close()
    for call in (
        stream.write_all(a, b"x"),
        stream.read_all(b, bytearray(1)),
        stream.write_all(a, [b"x"]),
    ):
        with assert_checkpoints(), pytest.raises(OSError) as exc_info:
            await call
        assert exc_info.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("call", "method"),
    [
        (lambda: stream.write_all(_any(object()), b"x"), "write_some"),
        (lambda: stream.write_all(_any(object()), [b"x"]), "write_some"),
        (lambda: stream.write_at_least(_any(3), b"x", 1), "write_some"),
        (lambda: stream.read_all(_any("s"), bytearray(1)), "read_some"),
        (lambda: stream.read_at_least(_any(None), bytearray(1), 1), "read_some"),
    ],
)
async def test_stream_refuses_objects_without_the_method(
    call: Callable[[], Awaitable[int]], method: str
) -> None:
    with pytest.raises(
        TypeError, match=rf"^stream: expected an object with {method}\(\) "
    ):
        await call()


async def test_cancelled_at_entry_carries_bytes_transferred(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    calls: list[Callable[[], Awaitable[int]]] = [
        lambda: stream.write_all(a, b"abc"),
        lambda: stream.write_all(a, [b"a", b"bc"]),
        lambda: stream.read_all(b, bytearray(3)),
    ]
    for call in calls:
        with trio.CancelScope() as cs:
            cs.cancel()
            try:
                await call()
            except trio.Cancelled as exc:
                assert exc.bytes_transferred == 0  # type: ignore[attr-defined]
                raise
        assert cs.cancelled_caught


# -- no buffer stays exported (SPEC §7) ----------------------------------------------

Pair = tuple[Socket, Socket]
WRITE_OPS: dict[str, Callable[[Socket, bytearray], Awaitable[object]]] = {
    "write_all": lambda s, data: stream.write_all(s, data),
    "write_all-vectored": lambda s, data: stream.write_all(s, [b"head", data]),
    "write_at_least": lambda s, data: stream.write_at_least(s, data, len(data)),
}
READ_OPS: dict[str, Callable[[Socket, bytearray], Awaitable[object]]] = {
    "read_all": lambda s, buf: stream.read_all(s, buf),
    "read_at_least": lambda s, buf: stream.read_at_least(s, buf, len(buf)),
}


@pytest.mark.parametrize("name", list(WRITE_OPS))
async def test_writes_release_the_buffer_however_they_end(name: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        fill_send_buffer(a)
        data = bytearray(1 << 20)
        await cancelled_midway(lambda: WRITE_OPS[name](a, data), data)
        exc = await aborted_midway(lambda: WRITE_OPS[name](a, data), data, a.cancel)
        assert exc.bytes_transferred < len(data) + 4  # type: ignore[attr-defined]
        b.set_option("linger", True, 0)
        b.close()  # a reset
        await failing(lambda: WRITE_OPS[name](a, data), data, OSError)
    a, b = await socket_pair()
    async with a, b:
        fill_send_buffer(a)
        await aborted_midway(lambda: WRITE_OPS[name](a, data), data, a.close)


@pytest.mark.parametrize("name", list(READ_OPS))
async def test_reads_release_the_buffer_however_they_end(name: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        buf = bytearray(64)
        await b.write_some(b"part")  # a partial read first: a slice is in use
        await cancelled_midway(lambda: READ_OPS[name](a, buf), buf)
        await aborted_midway(lambda: READ_OPS[name](a, buf), buf, a.cancel)
        await b.write_some(b"x" * 64)
        await READ_OPS[name](a, buf)
        assert_not_exported(buf)
        b.shutdown("send")
        await failing(lambda: READ_OPS[name](a, buf), buf, EndOfFile)
        await aborted_midway(lambda: READ_OPS[name](b, buf), buf, b.close)


async def test_duck_typed_loops_release_the_buffer() -> None:
    data = bytearray(b"abcdefgh")
    await stream.write_all(FakeStream(), data)
    assert_not_exported(data)
    await stream.write_all(FakeStream(), [data, b"x"])
    assert_not_exported(data)
    buf = bytearray(4)
    await failing(lambda: stream.read_all(FakeStream(b"ab"), buf), buf, EndOfFile)

    class Stuck(FakeStream):
        async def write_some(self, data: Any) -> int:
            await trio.sleep_forever()
            raise AssertionError  # pragma: no cover

        async def read_some(self, buf: Any) -> int:
            await trio.sleep_forever()
            raise AssertionError  # pragma: no cover

    await cancelled_midway(lambda: stream.write_all(Stuck(), data), data)
    await cancelled_midway(lambda: stream.write_all(Stuck(), [data]), data)
    await cancelled_midway(lambda: stream.read_all(Stuck(), buf), buf)


@pytest.mark.parametrize(
    "call",
    [
        lambda buf: stream.write_at_least(Socket(), buf, -1),
        lambda buf: stream.read_at_least(Socket(), buf, -1),
        lambda buf: stream.write_all(Socket(), [buf, _any("text")]),
    ],
    ids=["write_at_least", "read_at_least", "write_all-vectored"],
)
async def test_bad_arguments_release_the_buffer(
    call: Callable[[bytearray], Awaitable[object]],
) -> None:
    buf = bytearray(4)
    await failing(lambda: call(buf), buf, (TypeError, ValueError))
