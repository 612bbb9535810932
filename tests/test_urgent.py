"""Tests for urgent data and wait("error") (trio_emtcp/_urgent.py)."""

from __future__ import annotations

import errno
import importlib.util
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

from trio_emtcp import EndOfFile, OperationAborted, _urgent, socket_pair
from trio_emtcp.ip.tcp import Socket

from .helpers import ABORTS, blocked_then, blocking_pair, open_fds

MSG_OOB = socket.MSG_OOB
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "urgent_data.py"


@pytest.fixture(params=["epoll", "thread"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the epoll wait and with the thread fallback."""
    name: str = request.param
    monkeypatch.setattr(_urgent, "_USE_EPOLL", name == "epoll")
    return name


@asynccontextmanager
async def foreign_pair() -> AsyncIterator[tuple[Socket, socket.socket]]:
    """Our socket connected to a blocking stdlib socket (a foreign peer)."""
    client, server = blocking_pair()
    ours = Socket()
    ours.assign("v4", server.detach())
    with client:
        async with ours:
            yield ours, client


async def peer_send(peer: socket.socket, data: bytes, flags: int = 0) -> None:
    """Send from the blocking peer in a worker thread."""
    await trio.to_thread.run_sync(peer.send, data, flags)


def raw(sock: Socket) -> socket.socket:
    """The stdlib socket inside ``sock``."""
    inner = sock._sock
    assert inner is not None
    return inner


def reset(peer: socket.socket) -> None:
    """Close with linger (on, 0): the kernel sends RST."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


OPERATIONS: dict[str, Callable[[Socket], Awaitable[object]]] = {
    "wait_error": lambda s: s.wait("error"),
    "receive_oob": lambda s: s.receive(bytearray(1), ["out_of_band"]),
}


async def blocked_outcome(
    sock: Socket,
    op: Callable[[], Awaitable[object]],
    then: Callable[[], object],
    scope: trio.CancelScope | None = None,
) -> BaseException | object:
    """Start ``op`` in a task, wait until it blocks, call ``then``.

    ``op`` runs inside ``scope`` if given (for the task's own cancellation).
    Returns what ``op`` returned or raised (``trio.Cancelled`` included).
    """
    return await blocked_then(op, then, scope=scope)


# -- receive(..., ["out_of_band"]) --------------------------------------------


async def test_Socket_receive_out_of_band_pending_from_foreign_peer() -> None:
    async with foreign_pair() as (ours, peer):
        await peer_send(peer, b"ab")
        await peer_send(peer, b"X", MSG_OOB)
        await peer_send(peer, b"cd")
        await ours.wait("error")
        buf = bytearray(4)
        with assert_checkpoints():
            assert await ours.receive(buf, ["out_of_band"]) == 1
        assert buf[:1] == b"X"
        # Out of line: the normal stream skips the urgent byte, and a read
        # stops at the mark.
        assert await ours.read_some(buf) == 2
        assert buf[:2] == b"ab"
        assert await ours.read_some(buf) == 2
        assert buf[:2] == b"cd"


async def test_Socket_receive_out_of_band_waits_for_urgent_data(backend: str) -> None:
    async with foreign_pair() as (ours, peer):
        buf = bytearray(4)
        got: list[int] = []

        async def receiver() -> None:
            got.append(await ours.receive(buf, ["out_of_band"]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            await wait_all_tasks_blocked()
            assert not got
            # Normal data does not wake it.
            await peer_send(peer, b"normal")
            await wait_all_tasks_blocked()
            assert not got
            await peer_send(peer, b"!", MSG_OOB)
        assert got == [1]
        assert buf[:1] == b"!"
        assert await ours.read_some(buf) == 4
        assert buf == b"norm"


async def test_Socket_receive_out_of_band_does_not_hold_up_readers(
    pair: tuple[Socket, Socket],
) -> None:
    # Emilua's server.lua: one fiber waits for urgent data while another
    # reads the normal stream.  The urgent wait must not take the read slot.
    a, b = pair
    urgent = bytearray(1)
    normal = bytearray(8)
    log: list[str] = []
    read = trio.Event()

    async def urgent_reader() -> None:
        await b.receive(urgent, ["out_of_band"])
        log.append("urgent")

    async def reader() -> None:
        n = await b.read_some(normal)
        log.append(f"normal {bytes(normal[:n])!r}")
        read.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(urgent_reader)
        nursery.start_soon(reader)
        await wait_all_tasks_blocked()
        await a.write_some(b"data")
        await read.wait()
        assert log == ["normal b'data'"]
        await a.send(b"U", ["out_of_band"])
    assert log == ["normal b'data'", "urgent"]
    assert urgent == b"U"


async def test_Socket_receive_out_of_band_peek_leaves_the_byte() -> None:
    async with foreign_pair() as (ours, peer):
        await peer_send(peer, b"Z", MSG_OOB)
        buf = bytearray(2)
        with assert_checkpoints():
            assert await ours.receive(buf, ["out_of_band", "peek"]) == 1
        assert buf[:1] == b"Z"
        assert ours.at_mark
        with assert_checkpoints():
            assert await ours.receive(buf, ["peek", "out_of_band"]) == 1
        buf[:] = b"\0\0"
        with assert_checkpoints():
            assert await ours.receive(buf, ["out_of_band"]) == 1
        assert buf[:1] == b"Z"
        # Read: the next out-of-band receive waits for new urgent data.
        result = await blocked_outcome(
            ours, lambda: ours.receive(buf, ["out_of_band"]), ours.cancel
        )
        assert isinstance(result, OperationAborted)


async def test_Socket_receive_out_of_band_peek_waits_too(backend: str) -> None:
    async with foreign_pair() as (ours, peer):
        buf = bytearray(1)
        result = await blocked_outcome(
            ours,
            lambda: ours.receive(buf, ["out_of_band", "peek"]),
            lambda: peer.send(b"P", MSG_OOB),
        )
        assert result == 1
        assert buf == b"P"
        # Still pending after the peek.
        assert await ours.receive(buf, ["out_of_band"]) == 1


async def test_Socket_receive_out_of_band_announced_not_arrived() -> None:
    # The urgent pointer travels ahead of the urgent byte when the byte does
    # not fit in the receive window: recv(MSG_OOB) then says EAGAIN, and the
    # receive must wait until the normal reads have made room for it.
    size = 60_000  # under 64 KiB, so every segment can carry the pointer
    listener = socket.socket()
    with listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        peer = socket.socket()
        with peer:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            peer.connect(listener.getsockname())
            conn, _ = listener.accept()
            ours = Socket()
            try:
                ours.assign("v4", conn.detach())
            finally:
                conn.close()
            async with ours:
                # One send() call: one urgent mark, on its last byte.
                sent = await trio.to_thread.run_sync(
                    peer.send, b"a" * (size - 1) + b"!", MSG_OOB
                )
                assert sent == size
                # The first segment carries the urgent pointer.
                await ours.wait("read")
                with pytest.raises(BlockingIOError):
                    raw(ours).recv(1, MSG_OOB)  # the precondition: announced only
                urgent = bytearray(1)
                got: list[int] = []
                normal = 0

                async def urgent_reader() -> None:
                    got.append(await ours.receive(urgent, ["out_of_band"]))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(urgent_reader)
                    await wait_all_tasks_blocked()
                    assert not got
                    buf = bytearray(65536)
                    while normal < size - 1:
                        normal += await ours.read_some(buf)
                assert got == [1]
                assert urgent == b"!"
                assert normal == size - 1


async def test_Socket_receive_out_of_band_with_inline_is_einval(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    b.set_option("out_of_band_inline", True)
    pattern = r"^\[Errno 22\] flags: out_of_band needs out_of_band_inline off; "
    # Without urgent data: it must not wait (nothing could ever come).
    with assert_checkpoints(), pytest.raises(OSError, match=pattern) as exc_info:
        await b.receive(bytearray(1), ["out_of_band"])
    assert exc_info.value.errno == errno.EINVAL
    # With urgent data: it is in the stream.
    await a.send(b"!", ["out_of_band"])
    await b.wait("error")
    with assert_checkpoints(), pytest.raises(OSError, match=pattern):
        await b.receive(bytearray(1), ["out_of_band", "peek"])
    assert b.at_mark
    buf = bytearray(4)
    assert await b.read_some(buf) == 1
    assert buf[:1] == b"!"


async def test_Socket_receive_out_of_band_inline_turned_on_while_waiting(
    pair: tuple[Socket, Socket], backend: str
) -> None:
    a, b = pair

    def turn_on_and_send() -> None:
        b.set_option("out_of_band_inline", True)
        raw(a).send(b"!", MSG_OOB)

    result = await blocked_outcome(
        b, lambda: b.receive(bytearray(1), ["out_of_band"]), turn_on_and_send
    )
    assert isinstance(result, OSError)
    assert result.errno == errno.EINVAL


async def test_Socket_receive_out_of_band_empty_buffer(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    with assert_checkpoints():
        assert await b.receive(bytearray(0), ["out_of_band"]) == 0
    await a.send(b"!", ["out_of_band"])
    await b.wait("error")
    with assert_checkpoints():
        assert await b.receive(memoryview(bytearray(4))[:0], ["out_of_band"]) == 0
    # The empty receive did not consume the byte.
    buf = bytearray(1)
    assert await b.receive(buf, ["out_of_band"]) == 1
    assert buf == b"!"


@pytest.mark.parametrize("buf", [b"x", b"", "x", 3, None])
async def test_Socket_receive_out_of_band_refuses_read_only_buffers(
    pair: tuple[Socket, Socket], buf: Any
) -> None:
    _, b = pair
    with assert_checkpoints(), pytest.raises(TypeError, match=r"^buf: "):
        await b.receive(buf, ["out_of_band"])


async def test_Socket_receive_out_of_band_end_of_stream(backend: str) -> None:
    async with foreign_pair() as (ours, peer):
        # Blocked first, then the peer closes its side: no urgent data can
        # come any more.
        peer.send(b"left unread")
        result = await blocked_outcome(
            ours,
            lambda: ours.receive(bytearray(1), ["out_of_band"]),
            lambda: peer.shutdown(socket.SHUT_WR),
        )
        assert isinstance(result, EndOfFile)
        # And at once on a later call, with normal data still unread.
        with assert_checkpoints(), pytest.raises(EndOfFile):
            await ours.receive(bytearray(1), ["out_of_band"])


async def test_Socket_receive_out_of_band_reset(backend: str) -> None:
    async with foreign_pair() as (ours, peer):
        result = await blocked_outcome(
            ours,
            lambda: ours.receive(bytearray(1), ["out_of_band"]),
            lambda: reset(peer),
        )
        assert isinstance(result, ConnectionResetError)


async def test_Socket_receive_out_of_band_after_a_remembered_reset(
    pair: tuple[Socket, Socket],
) -> None:
    # SPEC §10: once a data operation saw the reset, a later read raises it
    # where the kernel would report the end of the stream; for an urgent
    # receive that is "no urgent data, and none can come".
    a, b = pair
    b.set_option("linger", True, 0)
    b.close()
    await wait_all_tasks_blocked()
    with pytest.raises(ConnectionResetError):
        await a.read_some(bytearray(4))  # the kernel says it this once
    for _ in range(2):
        with assert_checkpoints(), pytest.raises(ConnectionResetError):
            await a.receive(bytearray(1), ["out_of_band"])


async def test_Socket_receive_out_of_band_not_connected() -> None:
    async with Socket() as sock:
        sock.open("v4")
        with assert_checkpoints(), pytest.raises(OSError) as exc_info:
            await sock.receive(bytearray(1), ["out_of_band"])
        assert exc_info.value.errno == errno.ENOTCONN


async def test_Socket_receive_out_of_band_after_urgent_byte_is_gone(
    pair: tuple[Socket, Socket],
) -> None:
    # Read by another task between the wake-up and the retry: wait again.
    a, b = pair
    first = bytearray(1)
    second = bytearray(1)
    got: list[str] = []
    one_done = trio.Event()

    async def receiver(buf: bytearray, name: str) -> None:
        await b.receive(buf, ["out_of_band"])
        got.append(name)
        one_done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver, first, "first")
        nursery.start_soon(receiver, second, "second")
        await wait_all_tasks_blocked()
        await a.send(b"1", ["out_of_band"])
        await one_done.wait()
        # The other one woke too, found nothing, and waits again.
        await wait_all_tasks_blocked()
        assert len(got) == 1
        await a.send(b"2", ["out_of_band"])
    assert sorted(got) == ["first", "second"]
    assert sorted([bytes(first), bytes(second)]) == [b"1", b"2"]


# -- wait("error") ------------------------------------------------------------


async def test_Socket_wait_error_wakes_on_urgent_data(backend: str) -> None:
    async with foreign_pair() as (ours, peer):
        woke: list[bool] = []

        async def waiter() -> None:
            await ours.wait("error")
            woke.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            assert not woke
            await peer_send(peer, b"normal data does not count")
            await wait_all_tasks_blocked()
            assert not woke
            await peer_send(peer, b"!", MSG_OOB)
        assert woke == [True]


async def test_Socket_wait_error_pending_returns_at_once(
    pair: tuple[Socket, Socket], backend: str
) -> None:
    a, b = pair
    await a.send(b"!", ["out_of_band"])
    await b.wait("error")
    with assert_checkpoints():
        await b.wait("error")  # level-triggered: still pending
    before = open_fds()
    await b.wait("error")
    assert open_fds() == before


async def test_Socket_wait_error_with_inline_data(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    b.set_option("out_of_band_inline", True)
    result = await blocked_outcome(
        b, lambda: b.wait("error"), lambda: raw(a).send(b"!", MSG_OOB)
    )
    assert result is None
    assert b.at_mark


async def test_Socket_wait_error_wakes_on_reset(backend: str) -> None:
    async with foreign_pair() as (ours, peer):
        result = await blocked_outcome(
            ours, lambda: ours.wait("error"), lambda: reset(peer)
        )
        assert result is None
        with pytest.raises(ConnectionResetError):
            await ours.read_some(bytearray(1))


async def test_Socket_wait_error_hang_up_of_unconnected_socket() -> None:
    # Never connected: the kernel reports POLLHUP, which Asio's reactor (and
    # so Emilua) treats as an exceptional condition too.
    async with Socket() as sock:
        sock.open("v4")
        with assert_checkpoints():
            await sock.wait("error")


@pytest.mark.parametrize("how", list(ABORTS))
@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_Socket_urgent_waits_aborted(how: str, op: str, backend: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        before = open_fds()
        result = await blocked_outcome(
            b, lambda: OPERATIONS[op](b), lambda: ABORTS[how](b)
        )
        assert isinstance(result, OperationAborted)
        assert result.errno == errno.ECANCELED
        assert b.is_open == (how == "cancel")
        # The private epoll (or the thread's socket pair) is gone; only the
        # socket closed or released by the abort is missing.
        assert open_fds() == before - (how != "cancel")
        if how == "cancel":
            # Still usable, nothing lost.
            await a.send(b"!", ["out_of_band"])
            buf = bytearray(1)
            assert await b.receive(buf, ["out_of_band"]) == 1
            assert buf == b"!"


@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_Socket_urgent_waits_outer_cancel(
    pair: tuple[Socket, Socket], op: str, backend: str
) -> None:
    _, b = pair
    before = open_fds()
    scope = trio.CancelScope()
    result = await blocked_outcome(b, lambda: OPERATIONS[op](b), scope.cancel, scope)
    assert scope.cancelled_caught
    assert isinstance(result, trio.Cancelled)
    assert open_fds() == before


@pytest.mark.parametrize("order", ["outer_first", "cancel_first"])
@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_Socket_urgent_waits_outer_cancel_wins(
    pair: tuple[Socket, Socket], op: str, order: str
) -> None:
    _, b = pair

    def both() -> None:
        if order == "outer_first":
            scope.cancel()
            b.cancel()
        else:
            b.cancel()
            scope.cancel()

    scope = trio.CancelScope()
    result = await blocked_outcome(b, lambda: OPERATIONS[op](b), both, scope)
    assert isinstance(result, trio.Cancelled)


@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_Socket_urgent_waits_cancelled_before_start(
    pair: tuple[Socket, Socket], op: str
) -> None:
    a, b = pair
    await a.send(b"!", ["out_of_band"])
    await b.wait("error")
    with trio.CancelScope() as scope:
        scope.cancel()
        await OPERATIONS[op](b)  # ready, but the checkpoint comes first
        pytest.fail("not cancelled")  # pragma: no cover
    assert scope.cancelled_caught


@pytest.mark.parametrize("op", list(OPERATIONS))
async def test_Socket_urgent_waits_on_closed_socket_are_ebadf(op: str) -> None:
    sock = Socket()
    with assert_checkpoints(), pytest.raises(OSError) as exc_info:
        await OPERATIONS[op](sock)
    assert exc_info.value.errno == errno.EBADF
    a, b = await socket_pair()
    a.close()
    b.close()
    with assert_checkpoints(), pytest.raises(OSError) as exc_info:
        await OPERATIONS[op](b)
    assert exc_info.value.errno == errno.EBADF


async def test_Socket_wait_error_no_descriptor_left(
    pair: tuple[Socket, Socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, b = pair

    def no_epoll(*args: object) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(_urgent, "_make_waiter", no_epoll)
    with assert_checkpoints(), pytest.raises(OSError) as exc_info:
        await b.wait("error")
    assert exc_info.value.errno == errno.EMFILE
    # The urgent receive only needs one on its slow path.
    with assert_checkpoints(), pytest.raises(OSError) as exc_info:
        await b.receive(bytearray(1), ["out_of_band"])
    assert exc_info.value.errno == errno.EMFILE


async def test_Socket_cancelled_urgent_waits_leak_no_descriptor(backend: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        before = open_fds()
        for _ in range(5):
            for name in OPERATIONS:

                async def op(name: str = name) -> object:
                    return await OPERATIONS[name](b)

                scope = trio.CancelScope()
                result = await blocked_outcome(b, op, scope.cancel, scope)
                assert isinstance(result, trio.Cancelled)
                assert isinstance(
                    await blocked_outcome(b, op, b.cancel), OperationAborted
                )
        assert open_fds() == before


# -- the example ---------------------------------------------------------------


def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location("urgent_data_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_urgent_data_example(capsys: pytest.CaptureFixture[str]) -> None:
    await _load_example().main()
    lines = capsys.readouterr().out.splitlines()
    # Client and server run concurrently: each one's lines are in a fixed
    # order, their interleaving is not.
    server = [line for line in lines if not line.startswith("client: ")]
    assert server == [
        "-- out_of_band_inline on: at_mark finds the urgent byte",
        "server: data b'hello '",
        "server: urgent byte b'!' (inline)",
        "server: data b'world'",
        "server: end of stream",
        "-- out_of_band_inline off: wait('error') and receive out_of_band",
        "server: wait('error') returned: urgent data is pending",
        "server: urgent byte b'!' (out of band)",
        "server: data b'hello world', then end of stream",
    ]
    client = [line for line in lines if line.startswith("client: ")]
    assert client == 2 * [
        "client: sent b'hello '",
        "client: sent urgent byte b'!'",
        "client: sent b'world'",
    ]
