"""Tests for ``stream.copy``, ``stream.relay`` and ``stream.graceful_close``.

Most tests run twice, on the zero-copy path (splice through a pipe, the
default between two Sockets on Linux) and on the buffer loop (forced by
``_copy.SPLICE = False``); a counting ``splice`` checks that each path is
the one taken.  The data flows ``a -> b ==copy==> c -> d``: ``a`` and ``d``
are the outside peers of the two connected pairs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

import trio_emtcp
from trio_emtcp import EndOfFile, OperationAborted, _copy, stream
from trio_emtcp.ip.tcp import Socket

from .helpers import blocked_then, fill_send_buffer, no_fd_leak

Chain = tuple[Socket, Socket, Socket, Socket]


@pytest.fixture(params=["zero-copy", "loop"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The path to test; the list counts the splice calls made."""
    calls: list[int] = []
    real = _copy.splice

    def counting(*args: Any) -> int:
        calls.append(1)
        return int(real(*args))

    monkeypatch.setattr(_copy, "splice", counting)
    if request.param == "loop":
        monkeypatch.setattr(_copy, "SPLICE", False)
    return calls


@pytest.fixture
async def chain() -> AsyncIterator[Chain]:
    """Two connected pairs: ``(a, b)`` and ``(c, d)``; closed afterwards."""
    a, b = await trio_emtcp.socket_pair()
    c, d = await trio_emtcp.socket_pair()
    async with a, b, c, d:
        yield a, b, c, d


async def read_to_end(s: Socket) -> bytes:
    got = bytearray()
    buf = bytearray(65536)
    while True:
        try:
            n = await s.read_some(buf)
        except EndOfFile:
            return bytes(got)
        got += buf[:n]


async def send_and_shut(s: Socket, data: bytes) -> None:
    await stream.write_all(s, data)
    s.shutdown("send")


def reset(s: Socket) -> None:
    """Close ``s`` with a reset (SO_LINGER 0), as a crashed peer would."""
    raw = s._sock
    assert raw is not None
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- every byte arrives ---------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 65535, 6 * 1024 * 1024 + 7])
async def test_every_byte_arrives(chain: Chain, path: list[int], size: int) -> None:
    a, b, c, d = chain
    data = os.urandom(size)
    received: list[bytes] = []

    async def reader() -> None:
        received.append(await read_to_end(d))

    with no_fd_leak(), trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_and_shut, a, data)
            nursery.start_soon(reader)
            assert await stream.copy(b, c) == size
            c.shutdown("send")
    assert sha(received[0]) == sha(data)
    # The zero-copy path is the one taken between two Sockets (for an
    # empty stream, its one splice sees the end), and only then.
    assert bool(path) == (_copy.SPLICE is not False)


async def test_size_moves_exactly_that_many(chain: Chain, path: list[int]) -> None:
    a, b, c, d = chain
    data = os.urandom(300_000)
    await send_and_shut(a, data)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            got: list[bytes] = []

            async def reader() -> None:
                got.append(await read_to_end(d))

            nursery.start_soon(reader)
            assert await stream.copy(b, c, size=200_001) == 200_001
            c.shutdown("send")
    assert got[0] == data[:200_001]
    # The rest is still in b, unread.
    assert await read_to_end(b) == data[200_001:]


async def test_end_of_stream_before_size(chain: Chain, path: list[int]) -> None:
    a, b, c, d = chain
    await send_and_shut(a, b"x" * 1000)
    with pytest.raises(EndOfFile) as info:
        await stream.copy(b, c, size=5000)
    assert info.value.bytes_transferred == 1000
    c.shutdown("send")
    assert await read_to_end(d) == b"x" * 1000


async def test_copy_is_a_checkpoint(chain: Chain, path: list[int]) -> None:
    a, b, c, _ = chain
    with trio.testing.assert_checkpoints():
        assert await stream.copy(b, c, size=0) == 0
    await send_and_shut(a, b"hello")
    with trio.testing.assert_checkpoints():
        assert await stream.copy(b, c) == 5
    with trio.testing.assert_checkpoints():
        assert await stream.copy(b, c) == 0  # b's stream has ended


async def test_remembered_reset_is_not_an_end(chain: Chain, path: list[int]) -> None:
    # SPEC §10: a reset another operation saw is raised where the stream
    # would end, not taken for a complete stream.
    a, b, c, _ = chain
    await stream.write_all(a, b"x" * 10)
    reset(a)
    buf = bytearray(100)
    with trio.fail_after(5):
        with pytest.raises(ConnectionResetError):  # noqa: PT012 - read to the reset
            while True:
                await b.read_some(buf)
        with pytest.raises(ConnectionResetError):
            await stream.copy(b, c)


# -- aborts and cancellation -------------------------------------------------------

ABORTS: dict[str, Callable[[Socket], object]] = {
    "close": lambda s: s.close(),
    "cancel": lambda s: s.cancel(),
}


@pytest.mark.parametrize("victim", ["src", "dst"])
@pytest.mark.parametrize("how", ["close", "cancel"])
async def test_abort_while_waiting_for_the_source(
    chain: Chain, path: list[int], victim: str, how: str
) -> None:
    # The copy waits to read b; either socket's abort ends it.
    a, b, c, d = chain
    await stream.write_all(a, b"first")
    target = b if victim == "src" else c
    exc = await blocked_then(lambda: stream.copy(b, c), lambda: ABORTS[how](target))
    assert isinstance(exc, OperationAborted)
    assert exc.bytes_transferred == 5
    buf = bytearray(5)
    await stream.read_all(d, buf)
    assert buf == b"first"
    if how == "cancel":
        # Nothing lost: both sockets still work, the next bytes are there.
        await stream.write_all(a, b"next")
        assert await stream.copy(b, c, size=4) == 4
        await stream.read_all(d, buf := bytearray(4))
        assert buf == b"next"


@pytest.mark.parametrize("victim", ["src", "dst"])
@pytest.mark.parametrize("how", ["close", "cancel"])
async def test_abort_while_waiting_for_the_destination(
    chain: Chain, path: list[int], victim: str, how: str
) -> None:
    # d does not read: the copy waits to write c; either socket's abort
    # ends it, and the count is exactly what d can read.
    a, b, c, d = chain
    c.set_option("send_buffer_size", 4096)
    d.set_option("receive_buffer_size", 4096)
    data = os.urandom(8 * 1024 * 1024)
    target = b if victim == "src" else c
    outcome: list[BaseException] = []

    async def run_copy() -> None:
        try:
            await stream.copy(b, c)
        except BaseException as exc:
            outcome.append(exc)

    async def writer() -> None:
        # Closing b with unread bytes resets a: that is not under test.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await stream.write_all(a, data)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            nursery.start_soon(run_copy)
            await trio.testing.wait_all_tasks_blocked()
            assert not outcome
            ABORTS[how](target)
            await trio.testing.wait_all_tasks_blocked()
            assert outcome
            nursery.cancel_scope.cancel()  # the writer
    exc = outcome[0]
    assert isinstance(exc, OperationAborted)
    count = exc.bytes_transferred
    assert 0 < count < len(data)
    if victim == "dst" and how == "close":
        got = await read_to_end(d)
    else:
        c.shutdown("send")
        got = await read_to_end(d)
    assert got == data[:count]


@pytest.mark.parametrize("waiting_for", ["source", "destination"])
async def test_outside_cancellation(
    chain: Chain, path: list[int], waiting_for: str
) -> None:
    a, b, c, _d = chain
    await stream.write_all(a, b"12345")
    if waiting_for == "destination":
        fill_send_buffer(c)
    scope = trio.CancelScope()
    exc = await blocked_then(lambda: stream.copy(b, c), scope.cancel, scope=scope)
    assert isinstance(exc, trio.Cancelled)
    moved = exc.bytes_transferred  # type: ignore[attr-defined]
    assert moved == (5 if waiting_for == "source" else 0)
    # Both stay usable (the bytes in flight at a cancel while writing are
    # counted as not sent: here none had gone out).
    await stream.write_all(a, b"more")
    assert await stream.copy(b, c, size=4) == 4


async def test_reset_of_the_source(chain: Chain, path: list[int]) -> None:
    a, b, c, _d = chain
    await stream.write_all(a, b"abc")

    def crash() -> None:
        reset(a)

    exc = await blocked_then(lambda: stream.copy(b, c), crash)
    assert isinstance(exc, ConnectionResetError)
    assert exc.bytes_transferred == 3  # type: ignore[attr-defined]


async def test_reset_of_the_destination(chain: Chain, path: list[int]) -> None:
    a, b, c, d = chain
    reset(d)
    await trio.testing.wait_all_tasks_blocked()
    await stream.write_all(a, b"x" * 100_000)
    with trio.fail_after(10), pytest.raises(OSError) as info:
        await stream.copy(b, c)
    assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)
    assert info.value.bytes_transferred == 0  # type: ignore[attr-defined]


async def test_closed_socket(chain: Chain, path: list[int]) -> None:
    _a, b, c, _d = chain
    c.close()
    with (
        no_fd_leak(),
        pytest.raises(trio_emtcp.ClosedSocketError),
        trio.testing.assert_checkpoints(),
    ):
        await stream.copy(b, c)


async def test_no_descriptor_left_on_any_end(chain: Chain) -> None:
    a, b, c, _d = chain
    with no_fd_leak():
        await stream.write_all(a, b"abc")
        await blocked_then(lambda: stream.copy(b, c), b.cancel)
        await send_and_shut(a, b"def")
        assert await stream.copy(b, c) == 3
        with pytest.raises(EndOfFile):
            await stream.copy(b, c, size=1)


# -- where splice is refused ---------------------------------------------------------


@pytest.mark.parametrize("refuses", ["source", "destination"])
async def test_splice_refused_falls_back(
    chain: Chain, monkeypatch: pytest.MonkeyPatch, refuses: str
) -> None:
    a, b, c, d = chain
    real = _copy.splice
    fd = (b if refuses == "source" else c)._sock.fileno()  # type: ignore[union-attr]
    refused: list[int] = []

    def refusing(src: int, dst: int, *args: Any) -> int:
        if fd in (src, dst):
            refused.append(1)
            raise OSError(errno.EINVAL, "Invalid argument")
        return int(real(src, dst, *args))

    monkeypatch.setattr(_copy, "splice", refusing)
    data = os.urandom(3 * 1024 * 1024)
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await read_to_end(d))

    with no_fd_leak(), trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_and_shut, a, data)
            nursery.start_soon(reader)
            assert await stream.copy(b, c) == len(data)
            c.shutdown("send")
    assert refused  # the refusal was met, and the loop took over
    assert sha(got[0]) == sha(data)


class Memory:
    """A duck-typed stream in memory: read_some from ``data``, write_some to ``out``."""

    def __init__(self, data: bytes = b"", *, eof_as_zero: bool = False) -> None:
        self.data = data
        self.out = bytearray()
        self.eof_as_zero = eof_as_zero

    async def read_some(self, buf: Any) -> int:
        await trio.lowlevel.checkpoint()
        if not self.data:
            if self.eof_as_zero:
                return 0
            raise EndOfFile()
        n = min(len(buf), len(self.data), 1000)
        buf[:n] = self.data[:n]
        self.data = self.data[n:]
        return n

    async def write_some(self, data: Any) -> int:
        await trio.lowlevel.checkpoint()
        n = min(len(data), 777)
        self.out += bytes(data[:n])
        return n


@pytest.mark.parametrize("eof_as_zero", [False, True])
async def test_duck_typed_pair(eof_as_zero: bool) -> None:
    data = os.urandom(200_000)
    src, dst = Memory(data, eof_as_zero=eof_as_zero), Memory()
    assert await stream.copy(src, dst) == len(data)
    assert dst.out == data


async def test_socket_to_duck_typed(chain: Chain, path: list[int]) -> None:
    a, b, _, _ = chain
    data = os.urandom(100_000)
    await send_and_shut(a, data)
    dst = Memory()
    assert await stream.copy(b, dst) == len(data)
    assert dst.out == data
    assert not path


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"size": -1}, ValueError),
        ({"size": 1.5}, TypeError),
        ({"size": True}, TypeError),
    ],
)
async def test_bad_size(chain: Chain, kwargs: dict[str, Any], error: type) -> None:
    _, b, c, _ = chain
    with trio.testing.assert_checkpoints(), pytest.raises(error, match="size"):
        await stream.copy(b, c, **kwargs)


async def test_not_streams(chain: Chain) -> None:
    _, b, c, _ = chain
    with trio.testing.assert_checkpoints(), pytest.raises(TypeError, match="read_some"):
        await stream.copy(object(), c)  # type: ignore[arg-type]
    with (
        trio.testing.assert_checkpoints(),
        pytest.raises(TypeError, match="write_some"),
    ):
        await stream.copy(b, object())  # type: ignore[arg-type]


async def test_a_copy_that_never_waits_still_yields(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two peers that always keep up would let the zero-copy loop run
    # without a schedule point: it makes one every _YIELD_EVERY bytes.
    a, b, c, _d = chain
    await send_and_shut(a, b"y" * 100_000)
    await trio.testing.wait_all_tasks_blocked()
    yields: list[int] = []
    real = trio.lowlevel.checkpoint

    async def counting() -> None:
        yields.append(1)
        await real()

    monkeypatch.setattr(_copy, "checkpoint", counting)
    monkeypatch.setattr(_copy, "_YIELD_EVERY", 1)
    assert await stream.copy(b, c, size=100_000) == 100_000
    assert yields


# -- relay ----------------------------------------------------------------------------
# x <-> b ==relay== c <-> y: x and y are the outside peers.


@pytest.mark.parametrize("first", ["x", "y"])
async def test_relay_both_ways_with_half_close(
    chain: Chain, path: list[int], first: str
) -> None:
    x, b, c, y = chain
    up, down = os.urandom(3 * 1024 * 1024 + 1), os.urandom(2 * 1024 * 1024 + 3)
    got: dict[str, bytes] = {}

    async def peer(me: Socket, name: str, data: bytes, go_first: bool) -> None:
        if go_first:
            # Send everything and half-close, then read the other way:
            # the relay passes the end of stream on and keeps the rest.
            await send_and_shut(me, data)
            got[name] = await read_to_end(me)
        else:
            got[name] = await read_to_end(me)
            await send_and_shut(me, data)

    with no_fd_leak(), trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer, x, "x", up, first == "x")
            nursery.start_soon(peer, y, "y", down, first == "y")
            counts = await stream.relay(b, c)
    assert counts == (len(up), len(down))
    assert sha(got["y"]) == sha(up)
    assert sha(got["x"]) == sha(down)
    assert bool(path) == (_copy.SPLICE is not False)


@pytest.mark.parametrize("crashes", ["x", "y"])
async def test_relay_reset_is_one_exception_with_both_counts(
    chain: Chain, path: list[int], crashes: str
) -> None:
    x, b, c, y = chain
    await stream.write_all(x, b"u" * 10)
    await stream.write_all(y, b"d" * 7)
    outcome: list[BaseException] = []

    async def run_relay() -> None:
        try:
            await stream.relay(b, c)
        except BaseException as exc:  # an ExceptionGroup would land here too
            outcome.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_relay)
            await trio.testing.wait_all_tasks_blocked()
            reset(x if crashes == "x" else y)
    (exc,) = outcome
    assert isinstance(exc, ConnectionResetError), repr(exc)
    assert exc.bytes_transferred == (10, 7)  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["close", "cancel"])
async def test_relay_abort(chain: Chain, path: list[int], how: str) -> None:
    x, b, c, _y = chain
    await stream.write_all(x, b"abc")
    outcome: list[BaseException] = []

    async def run_relay() -> None:
        try:
            await stream.relay(b, c)
        except BaseException as exc:
            outcome.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_relay)
            await trio.testing.wait_all_tasks_blocked()
            ABORTS[how](c)
    (exc,) = outcome
    assert isinstance(exc, OperationAborted), repr(exc)
    assert exc.bytes_transferred == (3, 0)  # type: ignore[comparison-overlap]


async def test_relay_outside_cancellation(chain: Chain, path: list[int]) -> None:
    x, b, c, y = chain
    await stream.write_all(x, b"abc")
    outcome: list[BaseException] = []

    async def run_relay(scope: trio.CancelScope) -> None:
        with scope:
            try:
                await stream.relay(b, c)
            except BaseException as exc:
                outcome.append(exc)
                raise

    scope = trio.CancelScope()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_relay, scope)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    (exc,) = outcome
    assert isinstance(exc, trio.Cancelled), repr(exc)
    assert exc.bytes_transferred == (3, 0)  # type: ignore[attr-defined]
    # Both sockets stay usable.
    await stream.write_all(y, b"back")
    buf = bytearray(4)
    assert await stream.copy(c, b, size=4) == 4
    await stream.read_all(x, buf)
    assert buf == b"back"


async def test_relay_needs_shutdown(chain: Chain) -> None:
    _, b, _, _ = chain
    with trio.testing.assert_checkpoints(), pytest.raises(TypeError, match="shutdown"):
        await stream.relay(b, Memory())


# -- graceful_close -------------------------------------------------------------------


async def _answer_then(
    close: Callable[[Socket], Any],
) -> tuple[int, BaseException | None]:
    """A server answers 4 MiB before reading a request, then ``close``s.

    The client has sent more than the server reads and does not read for
    a moment; then it reads the answer.  Returns how much of it arrived and
    the error the client met, if any.
    """
    client, server = await trio_emtcp.socket_pair()
    async with client, server:
        # A small window: most of the answer is still queued at the server
        # when it closes.
        client.set_option("receive_buffer_size", 65536)
        answer = b"a" * (4 * 1024 * 1024)
        await stream.write_all(client, b"GET / HTTP/1.0\r\n" + b"x" * 5000)
        await trio.testing.wait_all_tasks_blocked()
        got = 0
        error: BaseException | None = None

        async def serve() -> None:
            await stream.write_all(server, answer)
            await close(server)

        async def read() -> None:
            nonlocal got, error
            await trio.testing.wait_all_tasks_blocked()
            buf = bytearray(65536)
            try:
                while True:
                    got += await client.read_some(buf)
            except EndOfFile:
                client.close()
            except OSError as exc:
                error = exc

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                nursery.start_soon(read)
        return got, error


async def test_plain_close_loses_the_answer() -> None:
    async def close(s: Socket) -> None:
        # write_all returned once the kernel took the last bytes: most are
        # still queued when the unread request makes close() reset.
        s.close()

    got, error = await _answer_then(close)
    assert isinstance(error, ConnectionResetError)
    assert got < 4 * 1024 * 1024


async def test_graceful_close_keeps_the_answer() -> None:
    discarded: list[int] = []

    async def close(s: Socket) -> None:
        discarded.append(await stream.graceful_close(s))

    got, error = await _answer_then(close)
    assert error is None
    assert got == 4 * 1024 * 1024
    assert discarded == [5000 + len(b"GET / HTTP/1.0\r\n")]


async def test_graceful_close_times_out(autojump_clock: trio.testing.MockClock) -> None:
    client, server = await trio_emtcp.socket_pair()
    async with client:
        await stream.write_all(client, b"unread")
        start = trio.current_time()
        # The client never ends its stream: the wait ends at the timeout.
        assert await stream.graceful_close(server, timeout=7) == 6
        assert trio.current_time() - start == pytest.approx(7)
        assert not server.is_open
        with pytest.raises(EndOfFile):
            await client.read_some(bytearray(1))


async def test_graceful_close_after_a_reset() -> None:
    client, server = await trio_emtcp.socket_pair()
    await stream.write_all(client, b"unread")
    reset(client)
    await trio.testing.wait_all_tasks_blocked()
    with trio.fail_after(5):
        assert await stream.graceful_close(server) in (0, 6)
    assert not server.is_open


async def test_graceful_close_of_a_closed_socket() -> None:
    client, server = await trio_emtcp.socket_pair()
    async with client:
        server.close()
        with trio.testing.assert_checkpoints():
            assert await stream.graceful_close(server) == 0


async def test_graceful_close_cancelled_still_closes() -> None:
    client, server = await trio_emtcp.socket_pair()
    async with client:
        with trio.move_on_after(0) as scope:  # already cancelled: the checkpoint
            await stream.graceful_close(server)
        assert scope.cancelled_caught
        assert not server.is_open


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError)],
)
async def test_graceful_close_bad_timeout(timeout: Any, error: type) -> None:
    client, server = await trio_emtcp.socket_pair()
    async with client, server:
        with trio.testing.assert_checkpoints(), pytest.raises(error, match="timeout"):
            await stream.graceful_close(server, timeout=timeout)
        assert server.is_open


# -- found in review: urgent data, races of two ends ----------------------------------


@pytest.mark.parametrize("inline", [False, True], ids=["oob", "inline"])
@pytest.mark.parametrize("fin", [False, True], ids=["open", "ended"])
async def test_urgent_data_does_not_stop_the_copy(
    chain: Chain, path: list[int], inline: bool, fin: bool
) -> None:
    # A splice read stops at the urgent mark: it would spin ("would block"
    # on a readable socket) or take the mark for the end of the stream.
    a, b, c, d = chain
    if inline:
        b.set_option("out_of_band_inline", True)
    await stream.write_all(a, b"before-")
    await a.send(b"U", ["out_of_band"])
    await stream.write_all(a, b"-after")
    if fin:
        a.shutdown("send")
    await trio.testing.wait_all_tasks_blocked()
    expected = b"before-" + (b"U" if inline else b"") + b"-after"
    with trio.fail_after(5):
        moved = await stream.copy(b, c, size=None if fin else len(expected))
    assert moved == len(expected)
    c.shutdown("send")
    assert await read_to_end(d) == expected


async def test_abort_and_outer_cancellation_in_one_tick(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the copy's wake-up and its next step, another task cancels
    # the copy's own scope and calls src.cancel(): the task's cancellation
    # wins (SPEC §4), as everywhere.
    a, b, c, d = chain
    c.set_option("send_buffer_size", 4096)
    d.set_option("receive_buffer_size", 4096)
    scope = trio.CancelScope()
    armed = False
    real = _copy.splice

    def splice(src: int, dst: int, *rest: Any) -> int:
        nonlocal armed
        n = int(real(src, dst, *rest))
        if armed and dst == c._sock.fileno():  # type: ignore[union-attr]
            armed = False
            scope.cancel()
            b.cancel()
        return n

    monkeypatch.setattr(_copy, "splice", splice)
    outcome: list[BaseException] = []

    async def run() -> None:
        with scope:
            try:
                await stream.copy(b, c)
            except BaseException as exc:
                outcome.append(exc)
                raise

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.write_all, a, b"z" * 300_000)
            nursery.start_soon(run)
            await trio.testing.wait_all_tasks_blocked()
            armed = True
            with trio.move_on_after(2):
                await stream.read_all(d, bytearray(150_000))
            nursery.cancel_scope.cancel()
    assert isinstance(outcome[0], trio.Cancelled), repr(outcome[0])


async def test_a_reset_met_while_aborting_is_remembered(
    chain: Chain, path: list[int]
) -> None:
    # The copy blocks writing c; d resets and b.cancel() lands in the same
    # tick: what the copy saw of c's reset is reported again (SPEC §10).
    a, b, c, d = chain
    c.set_option("send_buffer_size", 4096)
    d.set_option("receive_buffer_size", 4096)
    outcome: list[BaseException] = []

    async def run() -> None:
        try:
            await stream.copy(b, c)
        except BaseException as exc:
            outcome.append(exc)

    async def writer() -> None:
        with contextlib.suppress(OSError):
            await stream.write_all(a, b"z" * (4 << 20))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            nursery.start_soon(run)
            await trio.testing.wait_all_tasks_blocked()
            reset(d)
            b.cancel()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert isinstance(outcome[0], OperationAborted)
    with pytest.raises(ConnectionResetError):
        await c.write_some(b"x")


@pytest.mark.parametrize("order", ["reset-first", "end-first"])
async def test_relay_reset_racing_a_half_close(path: list[int], order: str) -> None:
    # x half-closes as y resets: b -> c ends and shuts c down, which the
    # kernel refuses (ENOTCONN) with c's reset still pending.  The relay
    # reports the reset.  A race: 20 rounds.
    for _ in range(20):
        x, b = await trio_emtcp.socket_pair()
        c, y = await trio_emtcp.socket_pair()
        async with x, b, c, y:
            outcome: list[BaseException] = []

            async def run() -> None:
                try:
                    await stream.relay(b, c)  # noqa: B023 - awaited in this round
                except BaseException as exc:
                    outcome.append(exc)  # noqa: B023

            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(run)
                    await trio.testing.wait_all_tasks_blocked()
                    if order == "reset-first":
                        reset(y)
                        x.shutdown("send")
                    else:
                        x.shutdown("send")
                        reset(y)
            assert isinstance(outcome[0], ConnectionResetError), repr(outcome[0])


async def test_graceful_close_takes_a_huge_int_as_no_limit() -> None:
    # An int beyond a float's range is no limit, not an OverflowError.
    client, server = await trio_emtcp.socket_pair()
    async with client:
        await stream.write_all(client, b"bye")
        client.shutdown("send")
        with trio.fail_after(5):
            assert await stream.graceful_close(server, timeout=10**400) == 3
        assert not server.is_open
