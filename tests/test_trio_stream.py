"""Tests for Trio interoperability (trio_emtcp/_trio_stream.py, SPEC §7).

Socket as a ``trio.abc.HalfCloseableStream`` (Trio's own conformance suite
plus the edges it does not pin down: messages, chaining, cancel()),
Acceptor as a ``trio.abc.Listener`` under ``trio.serve_listeners``,
``trio.SSLStream`` over a Socket, the closed-object error that both
vocabularies catch, trio.SocketStream's own surface, buffers released,
descriptors closed underfoot and TCP_NOTSENT_LOWAT.  anyio is in
test_anyio.py.
"""

from __future__ import annotations

import array
import errno
import os
import pickle
import select
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
import trustme
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

import trio_emtcp
from trio_emtcp import OperationAborted, _transfer, socket_pair
from trio_emtcp._errors import ClosedSocketError, closed_error
from trio_emtcp._trio_stream import (
    DEFAULT_RECEIVE_SIZE,
    TRIO_NOTSENT_LOWAT,
    _StreamErrors,
)
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import (
    LOOPBACK,
    aborted_midway,
    assert_not_exported,
    blocked_then,
    cancelled_midway,
    failing,
    no_fd_leak,
    open_fds,
)

Pair = tuple[Socket, Socket]


# -- helpers ------------------------------------------------------------------


def clog(sender: Socket, receiver: Socket) -> None:
    """Fill ``sender``'s send buffer and ``receiver``'s receive buffer.

    Both are shrunk first so that this takes a few hundred KiB.  Raw
    non-blocking sends go on until the kernel no longer reports the socket
    writable (not merely until the first ``EAGAIN``), so that a later
    ``wait_send_all_might_not_block`` really blocks until the peer reads.
    """
    sender.set_option("send_buffer_size", 4096)
    receiver.set_option("receive_buffer_size", 4096)
    raw = sender._sock
    assert raw is not None
    chunk = b"x" * 65536
    poller = select.poll()
    poller.register(raw, select.POLLOUT)
    for _ in range(1000):
        if not poller.poll(0):
            return
        try:
            while True:
                raw.send(chunk)
        except BlockingIOError:
            pass
    raise AssertionError("the send buffer never filled")


async def _listening() -> Acceptor:
    acceptor = Acceptor()
    acceptor.open(LOOPBACK)
    acceptor.bind(LOOPBACK, 0)
    acceptor.listen()
    return acceptor


async def make_pair() -> Pair:
    return await socket_pair()


async def make_clogged_pair() -> Pair:
    a, b = await socket_pair()
    clog(a, b)
    clog(b, a)
    return a, b


@pytest.fixture
async def clogged() -> AsyncIterator[Pair]:
    """A pair whose ``a -> b`` direction is full: ``a.send_all`` blocks."""
    a, b = await socket_pair()
    async with a, b:
        clog(a, b)
        yield a, b


def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(client, server) contexts trusting a fresh trustme CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("emtcp.example").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return client, server


async def _tls_pair(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> tuple[trio.SSLStream[Socket], trio.SSLStream[Socket]]:
    a, b = await socket_pair()
    client = trio.SSLStream(a, client_ctx, server_hostname="emtcp.example")
    server = trio.SSLStream(b, server_ctx, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)
    return client, server


async def _blocked_then(
    call: Callable[[], Awaitable[object]], then: Callable[[], object]
) -> BaseException:
    """Start ``call`` in a task, run ``then()`` once it blocks; its error."""
    outcome = await blocked_then(call, then)
    assert isinstance(outcome, Exception), "the call was not aborted"
    return outcome


# -- the interfaces -----------------------------------------------------------


def test_Socket_is_a_trio_HalfCloseableStream() -> None:
    assert issubclass(Socket, trio.abc.HalfCloseableStream)
    assert isinstance(Socket(), trio.abc.HalfCloseableStream)
    assert not hasattr(Socket(), "__dict__")  # the mixin kept __slots__ = ()


def test_Acceptor_is_a_trio_Listener() -> None:
    assert issubclass(Acceptor, trio.abc.Listener)
    acceptor = Acceptor()
    assert isinstance(acceptor, trio.abc.Listener)
    assert not hasattr(acceptor, "__dict__")


async def test_Socket_passes_check_half_closeable_stream() -> None:
    with no_fd_leak():
        await trio.testing.check_half_closeable_stream(make_pair, make_clogged_pair)


# -- send_all / receive_some --------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"hello",
        bytearray(b"hello"),
        memoryview(b"xhellox")[1:-1],
        array.array("B", b"hello"),
    ],
)
async def test_Socket_send_all_receive_some_round_trip(data: Any, pair: Pair) -> None:
    a, b = pair
    with assert_checkpoints():
        assert await a.send_all(data) is None  # type: ignore[func-returns-value]
    with assert_checkpoints():
        got = await b.receive_some(5)
    assert got == b"hello"
    assert type(got) is bytes


async def test_Socket_send_all_non_byte_format_sends_every_byte(pair: Pair) -> None:
    a, b = pair
    data = array.array("i", [1, 2, 3])
    await a.send_all(data)
    assert await b.receive_some(100) == data.tobytes()


async def test_Socket_send_all_uses_one_composed_write(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path is the socket's own write loop (one checkpoint for the
    # whole buffer), not a loop of write_some calls.
    a, b = pair
    calls: list[tuple[int, int]] = []
    original = _transfer.run

    async def spy(driver: Any, job: Any) -> int:
        calls.append((job.minimum, job.minimum))
        result: int = await original(driver, job)
        return result

    monkeypatch.setattr(_transfer, "run", spy)
    await a.send_all(b"y" * 5000)
    assert calls == [(5000, 5000)]
    got = bytearray()
    while len(got) < 5000:
        got += await b.receive_some()
    assert got == b"y" * 5000


async def test_Socket_send_all_large_buffer_arrives_whole(pair: Pair) -> None:
    a, b = pair
    payload = bytes(range(256)) * 8192  # 2 MiB: blocks on the way
    got = bytearray()

    async def receive() -> None:
        while len(got) < len(payload):
            got.extend(await b.receive_some())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await a.send_all(payload)
    assert got == payload


async def test_Socket_receive_some_default_size_is_64_KiB(pair: Pair) -> None:
    a, b = pair
    assert DEFAULT_RECEIVE_SIZE == 65536
    await a.send_all(b"z" * 70000)
    # Over loopback the bytes are queued at the peer when send returns.
    assert b.io_control("bytes_readable") == 70000
    with assert_checkpoints():
        first = await b.receive_some()
    assert len(first) == DEFAULT_RECEIVE_SIZE
    assert len(await b.receive_some(None)) == 70000 - DEFAULT_RECEIVE_SIZE


async def test_Socket_receive_some_returns_at_most_max_bytes(pair: Pair) -> None:
    a, b = pair
    await a.send_all(b"abcdef")
    assert await b.receive_some(4) == b"abcd"
    assert await b.receive_some(4) == b"ef"


async def test_Socket_receive_some_eof_is_empty_every_time(pair: Pair) -> None:
    a, b = pair
    await a.send_all(b"last")
    await a.send_eof()
    assert await b.receive_some() == b"last"
    for _ in range(3):
        with assert_checkpoints():
            assert await b.receive_some() == b""


@pytest.mark.parametrize(
    ("max_bytes", "exc", "pattern"),
    [
        (0, ValueError, r"^max_bytes: must be in 1..2147483647, got 0$"),
        (-1, ValueError, r"^max_bytes: must be in 1..2147483647, got -1$"),
        (1.5, TypeError, r"^max_bytes: expected an int or None, got float$"),
        (True, TypeError, r"^max_bytes: expected an int or None, got bool$"),
        ("1", TypeError, r"^max_bytes: expected an int or None, got str$"),
    ],
)
async def test_Socket_receive_some_bad_max_bytes(
    pair: Pair, max_bytes: Any, exc: type[Exception], pattern: str
) -> None:
    a, b = pair
    with assert_checkpoints(), pytest.raises(exc, match=pattern):
        await b.receive_some(max_bytes)
    # Nothing was consumed and the conflict flag is not left set.
    await a.send_all(b"k")
    assert await b.receive_some(1) == b"k"


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ("text", r"^data: expected a bytes-like object, got str; encode it first$"),
        (42, r"^data: expected a bytes-like object, got int$"),
        (memoryview(b"abcd")[::2], r"^data: expected a C-contiguous buffer$"),
    ],
)
async def test_Socket_send_all_bad_data(pair: Pair, data: Any, pattern: str) -> None:
    a, b = pair
    with assert_checkpoints(), pytest.raises(TypeError, match=pattern):
        await a.send_all(data)
    await a.send_all(b"ok")  # the conflict flag is not left set
    assert await b.receive_some() == b"ok"


async def test_Socket_send_all_empty_is_a_checkpoint(pair: Pair) -> None:
    a, b = pair
    with assert_checkpoints():
        await a.send_all(b"")
    assert b.io_control("bytes_readable") == 0


async def test_Socket_trio_methods_keep_trio_Cancelled(pair: Pair) -> None:
    a, b = pair
    with trio.CancelScope() as cs:
        cs.cancel()
        await b.receive_some()
    assert cs.cancelled_caught
    with trio.CancelScope() as cs:
        cs.cancel()
        await a.send_all(b"never")
    assert cs.cancelled_caught
    # A blocked receive cancelled by its own scope: Cancelled, not aborted.
    with trio.move_on_after(0) as cs:
        await b.receive_some()
    assert cs.cancelled_caught
    await a.send_all(b"ok")
    assert await b.receive_some() == b"ok"


# -- send_eof -----------------------------------------------------------------


async def test_Socket_send_eof_then_send_all_is_closed(pair: Pair) -> None:
    a, b = pair
    with assert_checkpoints():
        await a.send_eof()
    for data in (b"y", b""):
        with (
            assert_checkpoints(),
            pytest.raises(
                trio.ClosedResourceError, match=r"^cannot send after send_eof\(\)$"
            ),
        ):
            await a.send_all(data)
    with assert_checkpoints():
        await a.send_eof()  # idempotent
    assert await b.receive_some() == b""
    # The other direction still works.
    await b.send_all(b"back")
    assert await a.receive_some() == b"back"


async def test_Socket_send_eof_mark_does_not_outlive_the_descriptor() -> None:
    # A Socket may be closed and connected again; the new connection has
    # not sent EOF.
    acceptor = await _listening()
    async with acceptor, Socket() as sock:
        for round_ in (b"first", b"second"):
            await sock.connect(LOOPBACK, acceptor.local_port)
            async with await acceptor.accept() as peer:
                await sock.send_all(round_)
                await sock.send_eof()
                with pytest.raises(trio.ClosedResourceError):
                    await sock.send_all(b"x")
                assert await peer.receive_some() == round_
                assert await peer.receive_some() == b""
            sock.close()


async def test_Socket_send_eof_cancelled_does_not_shut_down(pair: Pair) -> None:
    a, b = pair
    with trio.CancelScope() as cs:
        cs.cancel()
        await a.send_eof()
    assert cs.cancelled_caught
    await a.send_all(b"still open")
    assert await b.receive_some() == b"still open"


async def test_Socket_send_eof_after_peer_reset_is_broken(pair: Pair) -> None:
    a, b = pair
    b.set_option("linger", True, 0)
    b.close()  # RST
    with pytest.raises(trio.BrokenResourceError) as exc_info:
        await a.receive_some()
    with assert_checkpoints(), pytest.raises(trio.BrokenResourceError) as exc_info:
        await a.send_eof()
    assert isinstance(exc_info.value.__cause__, OSError)
    assert exc_info.value.__cause__.errno == errno.ENOTCONN


# -- closed -------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "send_all",
        "send_all_empty",
        "receive_some",
        "send_eof",
        "wait_send_all_might_not_block",
    ],
)
async def test_Socket_trio_methods_on_closed_socket(method: str) -> None:
    sock = Socket()
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "send_all": lambda: sock.send_all(b"x"),
        "send_all_empty": lambda: sock.send_all(b""),
        "receive_some": sock.receive_some,
        "send_eof": sock.send_eof,
        "wait_send_all_might_not_block": sock.wait_send_all_might_not_block,
    }
    with (
        assert_checkpoints(),
        pytest.raises(
            trio.ClosedResourceError, match=r"^socket is closed$"
        ) as exc_info,
    ):
        await calls[method]()
    # Trio's vocabulary, exactly: not the OSError the Emilua methods raise.
    assert type(exc_info.value) is trio.ClosedResourceError
    assert exc_info.value.__cause__ is None
    assert exc_info.value.__suppress_context__


async def test_Socket_aclose_repeated_is_a_checkpoint(pair: Pair) -> None:
    a, _ = pair
    for _ in range(3):
        with assert_checkpoints():
            await a.aclose()
    assert not a.is_open


async def test_Socket_close_aborts_blocked_receive_some(pair: Pair) -> None:
    _, b = pair
    exc = await _blocked_then(b.receive_some, b.close)
    assert type(exc) is trio.ClosedResourceError
    assert str(exc) == "socket was closed while the operation was waiting"
    assert exc.__suppress_context__


async def test_Socket_release_aborts_blocked_receive_some(pair: Pair) -> None:
    _, b = pair
    fds: list[int] = []
    exc = await _blocked_then(b.receive_some, lambda: fds.append(b.release()))
    assert type(exc) is trio.ClosedResourceError
    os.close(fds[0])


async def test_Socket_close_aborts_blocked_send_all(clogged: Pair) -> None:
    a, _ = clogged
    exc = await _blocked_then(lambda: a.send_all(b"more" * 1000), a.close)
    assert type(exc) is trio.ClosedResourceError
    assert str(exc) == "socket was closed while the operation was waiting"


async def test_Socket_close_aborts_blocked_wait_send_all_might_not_block(
    clogged: Pair,
) -> None:
    a, _ = clogged
    exc = await _blocked_then(a.wait_send_all_might_not_block, a.close)
    assert type(exc) is trio.ClosedResourceError


# -- cancel() -----------------------------------------------------------------


async def test_Socket_cancel_aborts_receive_some_and_keeps_the_socket(
    pair: Pair,
) -> None:
    a, b = pair
    exc = await _blocked_then(b.receive_some, b.cancel)
    # cancel() is neither a close nor a broken connection: the Emilua error
    # passes through, and the socket goes on working with no byte lost.
    assert type(exc) is OperationAborted
    assert exc.errno == errno.ECANCELED
    await a.send_all(b"after")
    assert await b.receive_some() == b"after"


async def test_Socket_cancel_aborts_send_all_with_bytes_transferred(
    clogged: Pair,
) -> None:
    a, _ = clogged
    exc = await _blocked_then(lambda: a.send_all(b"q" * 100_000), a.cancel)
    assert type(exc) is OperationAborted
    sent = exc.bytes_transferred
    assert 0 <= sent < 100_000
    assert a.is_open
    # The conflict flag was released: another send_all blocks (the buffer is
    # still full) instead of raising BusyResourceError.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.send_all, b"q")
        await wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


async def test_Socket_cancel_aborts_wait_send_all_might_not_block(
    clogged: Pair,
) -> None:
    a, _ = clogged
    exc = await _blocked_then(a.wait_send_all_might_not_block, a.cancel)
    assert type(exc) is OperationAborted
    assert a.is_open


# -- broken connections -------------------------------------------------------


async def test_Socket_peer_reset_is_BrokenResourceError_chained(pair: Pair) -> None:
    a, b = pair
    b.set_option("linger", True, 0)
    b.close()  # the peer resets the connection
    with (
        assert_checkpoints(),
        pytest.raises(
            trio.BrokenResourceError,
            match=r"^connection broken: \[Errno 104\] Connection reset by peer$",
        ) as exc_info,
    ):
        await a.receive_some()
    assert isinstance(exc_info.value.__cause__, ConnectionResetError)
    with pytest.raises(trio.BrokenResourceError) as exc_info:
        await a.send_all(b"x")
    # The kernel says EPIPE now; the socket remembers the reset (SPEC §10).
    assert isinstance(exc_info.value.__cause__, ConnectionResetError)
    # It stays broken.
    with pytest.raises(trio.BrokenResourceError):
        await a.send_all(b"x")


async def test_Socket_peer_close_gives_eof_then_broken_send(pair: Pair) -> None:
    a, b = pair
    b.close()  # graceful FIN
    assert await a.receive_some() == b""

    async def send_until_broken() -> None:
        # The first sends may still be accepted: the kernel learns that the
        # peer is gone from the RST that answers them.
        for _ in range(100):
            await a.send_all(b"x" * 100)

    with pytest.raises(trio.BrokenResourceError):
        await send_until_broken()


def test_StreamErrors_translation_table() -> None:
    sock = Socket()  # closed
    with (
        pytest.raises(trio.ClosedResourceError, match=r"^socket is closed$"),
        _StreamErrors(sock),
    ):
        raise OSError(errno.ENOTSOCK, "not a socket")
    with (
        pytest.raises(trio.ClosedResourceError, match=r"^socket is closed$"),
        _StreamErrors(sock),
    ):
        raise closed_error()
    with (
        pytest.raises(
            trio.ClosedResourceError,
            match=r"^socket was closed while the operation was waiting$",
        ),
        _StreamErrors(sock),
    ):
        raise OperationAborted()
    with (
        pytest.raises(
            trio.BrokenResourceError,
            match=r"^connection broken: \[Errno 110\] Connection timed out$",
        ) as info,
        _StreamErrors(sock),
    ):
        raise OSError(errno.ETIMEDOUT, "Connection timed out")
    assert isinstance(info.value.__cause__, TimeoutError)
    with pytest.raises(KeyError), _StreamErrors(sock):
        raise KeyError("not an OSError: untouched")


async def test_StreamErrors_passes_cancel_through_on_open_socket(pair: Pair) -> None:
    a, _ = pair
    with pytest.raises(OperationAborted), _StreamErrors(a):
        raise OperationAborted()


# -- busy ---------------------------------------------------------------------


async def test_Socket_concurrent_receive_some_is_busy(
    pair: Pair, autojump_clock: trio.testing.MockClock
) -> None:
    _, b = pair
    async with trio.open_nursery() as nursery:
        nursery.start_soon(b.receive_some)
        await wait_all_tasks_blocked()
        # fail_after under the autojump clock: if the second call queued
        # instead of refusing, the test fails at once rather than hanging.
        with (
            trio.fail_after(60),
            assert_checkpoints(),
            pytest.raises(
                trio.BusyResourceError,
                match=r"^another task is already receiving on this socket$",
            ),
        ):
            await b.receive_some()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("second", ["send_all", "send_eof", "wait"])
@pytest.mark.parametrize("first", ["send_all", "wait"])
async def test_Socket_concurrent_send_side_is_busy(
    clogged: Pair, first: str, second: str, autojump_clock: trio.testing.MockClock
) -> None:
    a, _ = clogged
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "send_all": lambda: a.send_all(b"x"),
        "send_eof": a.send_eof,
        "wait": a.wait_send_all_might_not_block,
    }
    async with trio.open_nursery() as nursery:
        nursery.start_soon(calls[first])
        await wait_all_tasks_blocked()
        with (
            trio.fail_after(60),
            assert_checkpoints(),
            pytest.raises(
                trio.BusyResourceError,
                match=r"^another task is already sending on this socket$",
            ),
        ):
            await calls[second]()
        nursery.cancel_scope.cancel()
    assert a.is_open


async def test_Socket_receive_some_queues_behind_read_some(pair: Pair) -> None:
    # Mixing the vocabularies is not "concurrent use" of the Trio methods:
    # the Emilua read queues first, the Trio receive behind it (FIFO).
    a, b = pair
    order: list[tuple[str, bytes]] = []

    async def emilua_reader() -> None:
        buf = bytearray(1)
        n = await b.read_some(buf)
        order.append(("read_some", bytes(buf[:n])))

    async def trio_reader() -> None:
        order.append(("receive_some", await b.receive_some(1)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(emilua_reader)
        await wait_all_tasks_blocked()
        nursery.start_soon(trio_reader)
        await wait_all_tasks_blocked()
        await a.send_all(b"1")
        await wait_all_tasks_blocked()
        await a.send_all(b"2")
    assert order == [("read_some", b"1"), ("receive_some", b"2")]


async def test_Socket_send_all_queues_behind_write_some(clogged: Pair) -> None:
    a, b = clogged
    done: list[str] = []

    async def emilua_writer() -> None:
        await a.write_some(b"w")
        done.append("write_some")

    async def trio_writer() -> None:
        await a.send_all(b"s")
        done.append("send_all")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(emilua_writer)
        await wait_all_tasks_blocked()
        nursery.start_soon(trio_writer)
        await wait_all_tasks_blocked()
        assert done == []
        while len(done) < 2:
            await b.receive_some()
    assert done == ["write_some", "send_all"]


# -- the closed-object error, both vocabularies -------------------------------


async def test_ClosedSocketError_is_OSError_and_ClosedResourceError() -> None:
    exc = closed_error()
    assert type(exc) is ClosedSocketError
    assert isinstance(exc, OSError)
    assert isinstance(exc, trio.ClosedResourceError)
    assert exc.errno == errno.EBADF
    # The OS's words stay in strerror; the text says what to look at.
    assert exc.strerror == os.strerror(errno.EBADF)
    assert str(exc) == "[Errno 9] Bad file descriptor: the socket is closed"
    # A copy (as pickle or a process pool makes one) says the same.
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is ClosedSocketError
    assert (clone.errno, str(clone)) == (exc.errno, str(exc))
    # Emilua-style members raise it.
    sock = Socket()
    with assert_checkpoints(), pytest.raises(trio.ClosedResourceError):
        await sock.read_some(bytearray(1))
    with pytest.raises(trio.ClosedResourceError):
        sock.cancel()


async def test_Acceptor_closed_accept_satisfies_both_vocabularies() -> None:
    acceptor = Acceptor()
    # An Emilua-style caller ...
    with assert_checkpoints(), pytest.raises(OSError) as os_info:
        await acceptor.accept()
    assert os_info.value.errno == errno.EBADF
    # ... and a Trio caller (Listener.accept after aclose).
    listener: trio.abc.Listener[Socket] = acceptor
    await listener.aclose()
    with assert_checkpoints(), pytest.raises(trio.ClosedResourceError):
        await listener.accept()


# -- serve_listeners ----------------------------------------------------------


async def test_Acceptor_serve_listeners_echo_then_cancel() -> None:
    with no_fd_leak():
        acceptor = await _listening()
        port = acceptor.local_port
        handled: list[Socket] = []

        async def echo(stream: Socket) -> None:
            handled.append(stream)
            while data := await stream.receive_some():
                await stream.send_all(data)

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_listeners, echo, [acceptor])
            assert listeners == [acceptor]
            for word in (b"one", b"two"):
                async with Socket() as client:
                    await client.connect(LOOPBACK, port)
                    await client.send_all(word)
                    assert await client.receive_some() == word
                    await client.send_eof()
                    assert await client.receive_some() == b""
            # Cancelling the nursery stops serving ...
            nursery.cancel_scope.cancel()
        # ... and serve_listeners closed the acceptor and every stream.
        assert not acceptor.is_open
        assert len(handled) == 2
        assert all(type(s) is Socket and not s.is_open for s in handled)


async def test_Acceptor_serve_listeners_cancel_closes_open_handlers() -> None:
    acceptor = await _listening()
    port = acceptor.local_port
    handled: list[Socket] = []

    async def idle(stream: Socket) -> None:
        handled.append(stream)
        await trio.sleep_forever()

    async with Socket() as client, trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, idle, [acceptor])
        await client.connect(LOOPBACK, port)
        await wait_all_tasks_blocked()
        assert len(handled) == 1
        nursery.cancel_scope.cancel()
    assert not handled[0].is_open
    assert not acceptor.is_open


async def test_Acceptor_serve_listeners_on_closed_acceptor_raises_closed() -> None:
    acceptor = Acceptor()

    async def never(stream: Socket) -> None:  # pragma: no cover
        raise AssertionError("no connection expected")

    # serve_listeners re-raises what accept raised: for Trio code that is
    # a ClosedResourceError, as with trio.SocketListener.
    with pytest.RaisesGroup(
        pytest.RaisesExc(ClosedSocketError), flatten_subgroups=True
    ) as info:
        await trio.serve_listeners(never, [acceptor])
    assert isinstance(info.value.exceptions[0], trio.ClosedResourceError)


# -- trio.SSLStream over a Socket ---------------------------------------------


async def test_SSLStream_over_Socket_handshake_and_echo() -> None:
    client_ctx, server_ctx = _tls_contexts()
    client, server = await _tls_pair(client_ctx, server_ctx)
    async with client, server:
        assert client.transport_stream.is_open
        assert server.server_hostname is None
        peer_cert = client.getpeercert()
        assert peer_cert is not None
        assert ("DNS", "emtcp.example") in peer_cert["subjectAltName"]

        async def echo_once() -> None:
            data = await server.receive_some()
            await server.send_all(data.upper())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo_once)
            await client.send_all(b"over tls")
            assert await client.receive_some() == b"OVER TLS"


async def test_SSLStream_over_Socket_rejects_an_untrusted_certificate() -> None:
    _, server_ctx = _tls_contexts()
    other_ca_client, _ = _tls_contexts()  # trusts another CA
    a, b = await socket_pair()
    client = trio.SSLStream(a, other_ca_client, server_hostname="emtcp.example")
    server = trio.SSLStream(b, server_ctx, server_side=True)
    async with a, b:
        # The client refuses; the nursery then cancels the server side.
        with pytest.RaisesGroup(
            pytest.RaisesExc(
                trio.BrokenResourceError,
                check=lambda e: isinstance(e.__cause__, ssl.SSLCertVerificationError),
            )
        ):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.do_handshake)
                nursery.start_soon(server.do_handshake)


async def test_SSLStream_over_Socket_passes_check_two_way_stream() -> None:
    client_ctx, server_ctx = _tls_contexts()

    async def tls_maker() -> tuple[trio.SSLStream[Socket], trio.SSLStream[Socket]]:
        return await _tls_pair(client_ctx, server_ctx)

    with no_fd_leak():
        await trio.testing.check_two_way_stream(tls_maker, None)


# -- trio.SocketStream's own surface (SPEC §7) --------------------------------


async def test_Socket_socket_is_the_trio_socket(pair: Pair) -> None:
    a, b = pair
    assert isinstance(a.socket, trio.socket.SocketType)
    assert a.socket is a.trio_socket
    assert a.socket.getpeername() == b.socket.getsockname()


async def test_Acceptor_socket_is_the_trio_socket() -> None:
    async with await _listening() as acceptor:
        assert acceptor.socket is acceptor.trio_socket
        assert acceptor.socket.getsockname()[1] == acceptor.local_port


async def test_Socket_setsockopt_getsockopt_as_SocketStream(pair: Pair) -> None:
    a, _ = pair
    tcp = socket.IPPROTO_TCP
    a.setsockopt(tcp, socket.TCP_NODELAY, 1)
    assert a.getsockopt(tcp, socket.TCP_NODELAY) == 1
    assert a.get_option("tcp_no_delay") is True
    a.setsockopt(tcp, socket.TCP_NODELAY, False)
    assert a.getsockopt(tcp, socket.TCP_NODELAY) == 0
    # A buffer value, and a buffer read back (struct linger is 8 bytes).
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 7))
    raw = a.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
    assert struct.unpack("ii", raw) == (1, 7)
    assert a.get_option("linger") == (True, 7)


async def test_Socket_setsockopt_value_and_length_rules(pair: Pair) -> None:
    a, _ = pair
    tcp = socket.IPPROTO_TCP
    with pytest.raises(TypeError, match=r"^value: must not be None unless length"):
        a.setsockopt(tcp, socket.TCP_NODELAY, None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^value: must be None when length is given"):
        a.setsockopt(tcp, socket.TCP_NODELAY, 1, 4)  # type: ignore[call-overload]
    # None with a length is passed on: the kernel refuses a NULL buffer.
    with pytest.raises(OSError) as info:
        a.setsockopt(tcp, socket.TCP_NODELAY, None, 4)
    assert info.value.errno == errno.EFAULT


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        lambda s: s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
        lambda s: s.socket,
    ],
    ids=["setsockopt", "getsockopt", "socket"],
)
async def test_Socket_SocketStream_surface_on_closed_socket(
    call: Callable[[Socket], object],
) -> None:
    with pytest.raises(ClosedSocketError) as info:
        call(Socket())
    # Both vocabularies: Emilua's EBADF and Trio's ClosedResourceError.
    assert info.value.errno == errno.EBADF
    assert isinstance(info.value, trio.ClosedResourceError)


# -- no buffer stays exported (SPEC §7) ---------------------------------------


async def test_Socket_send_all_releases_the_buffer_when_cancelled(
    clogged: Pair,
) -> None:
    a, _ = clogged
    data = bytearray(1 << 20)
    await cancelled_midway(lambda: a.send_all(data), data)


async def test_Socket_send_all_releases_the_buffer_when_aborted(
    clogged: Pair,
) -> None:
    a, _ = clogged
    data = bytearray(1 << 20)
    exc = await aborted_midway(lambda: a.send_all(data), data, a.cancel)
    assert exc.bytes_transferred < len(data)  # type: ignore[attr-defined]


async def test_Socket_send_all_releases_the_buffer_when_closed(
    clogged: Pair,
) -> None:
    a, _ = clogged
    data = bytearray(1 << 20)
    await aborted_midway(
        lambda: a.send_all(data), data, a.close, trio.ClosedResourceError
    )


async def test_Socket_send_all_releases_the_buffer_on_error(pair: Pair) -> None:
    a, b = pair
    b.set_option("linger", True, 0)
    b.close()  # a reset
    data = bytearray(1 << 20)
    await failing(lambda: a.send_all(data), data, trio.BrokenResourceError)


async def test_Socket_send_all_releases_the_buffer_when_done(pair: Pair) -> None:
    a, b = pair
    data = bytearray(b"done")
    await a.send_all(data)
    assert_not_exported(data)
    assert await b.receive_some() == b"done"


# -- closed underfoot (SPEC §7) -----------------------------------------------


async def test_Socket_trio_socket_closed_underfoot_is_closed(pair: Pair) -> None:
    a, _ = pair
    before = open_fds()
    a.trio_socket.close()
    assert not a.is_open
    assert repr(a) == "<trio_emtcp.ip.tcp.Socket closed>"
    for call in (
        lambda: a.send_all(b"x"),
        lambda: a.send_all(b""),
        a.receive_some,
        a.send_eof,
        a.wait_send_all_might_not_block,
    ):
        with assert_checkpoints(), pytest.raises(trio.ClosedResourceError):
            await call()
    with pytest.raises(ClosedSocketError):
        await a.read_some(bytearray(1))
    await a.aclose()
    assert open_fds() == before - 1


@pytest.mark.parametrize("method", ["send_all", "receive_some", "send_eof"])
async def test_Socket_Trio_methods_after_underfoot_close_raise_closed(
    pair: Pair, method: str
) -> None:
    # Straight after the close, before anything looked at is_open: the
    # syscall on the dead descriptor is what finds out.
    a, _ = pair
    call: dict[str, Callable[[], Awaitable[object]]] = {
        "send_all": lambda: a.send_all(b"x"),
        "receive_some": a.receive_some,
        "send_eof": a.send_eof,
    }
    a.trio_socket.close()
    with pytest.raises(trio.ClosedResourceError):
        await call[method]()
    assert not a.is_open


async def test_Socket_blocked_receive_some_sees_underfoot_close(pair: Pair) -> None:
    a, _ = pair
    exc = await _blocked_then(a.receive_some, a.trio_socket.close)
    assert type(exc) is trio.ClosedResourceError
    assert not a.is_open


async def test_Socket_queued_reads_end_on_underfoot_close(pair: Pair) -> None:
    # A read queued behind another ends with OperationAborted too, never a
    # ValueError from a wait on descriptor -1.
    a, _ = pair
    trio_sock = a.trio_socket
    caught: list[BaseException] = []

    async def read() -> None:
        try:
            await a.read_some(bytearray(8))
        except Exception as exc:
            caught.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(read)
            await wait_all_tasks_blocked()
            trio_sock.close()
    assert [type(exc) for exc in caught] == [OperationAborted] * 3
    assert not a.is_open


async def test_Socket_reopens_after_underfoot_close() -> None:
    async with await _listening() as acceptor, Socket() as sock:
        sock.open("v4")
        sock.trio_socket.close()
        await sock.connect(LOOPBACK, acceptor.local_port)
        assert sock.is_open
        assert sock.trio_socket.fileno() == sock.socket.fileno() >= 0
        (await acceptor.accept()).close()


async def test_Acceptor_trio_socket_closed_underfoot_is_closed() -> None:
    acceptor = await _listening()
    before = open_fds()
    acceptor.trio_socket.close()
    assert not acceptor.is_open
    with assert_checkpoints(), pytest.raises(trio.ClosedResourceError) as info:
        await acceptor.accept()
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.EBADF
    await acceptor.aclose()
    assert open_fds() == before - 1


async def test_Acceptor_accept_right_after_underfoot_close_is_closed() -> None:
    acceptor = await _listening()
    acceptor.trio_socket.close()
    # No is_open first: accept's own syscall finds the dead descriptor.
    with pytest.raises(ClosedSocketError):
        await acceptor.accept()
    assert not acceptor.is_open


async def test_Acceptor_serve_listeners_ends_on_underfoot_close() -> None:
    acceptor = await _listening()
    acceptor.trio_socket.close()

    async def never(stream: Socket) -> None:  # pragma: no cover
        raise AssertionError("no connection expected")

    # What serve_listeners lets through (a capacity error would be retried).
    with trio.fail_after(10), pytest.RaisesGroup(trio.ClosedResourceError):
        await trio.serve_listeners(never, [acceptor])


async def test_Acceptor_blocked_accept_sees_underfoot_close_as_close() -> None:
    # Like another task's close(): Emilua's OperationAborted.
    async with await _listening() as acceptor:
        exc = await _blocked_then(acceptor.accept, acceptor.trio_socket.close)
        assert type(exc) is OperationAborted
        assert not acceptor.is_open


# -- wait_send_all_might_not_block as Trio means it (SPEC §7, §11) ------------


async def fill_with_send_all(sender: Socket) -> None:
    """Clog ``sender`` as Trio's own tests do: ``send_all`` until it blocks.

    Nothing else: no shrunken buffers, no raw sends past the first block.
    """

    async def sender_loop() -> None:
        while True:
            await sender.send_all(b"x" * 10000)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender_loop)
        await wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


async def make_pair_clogged_by_send_all() -> Pair:
    a, b = await socket_pair()
    await fill_with_send_all(a)
    await fill_with_send_all(b)
    return a, b


@pytest.mark.parametrize("run", range(5))
async def test_Socket_passes_check_half_closeable_stream_clogged_by_send_all(
    run: int,
) -> None:
    with no_fd_leak():
        await trio.testing.check_half_closeable_stream(
            make_pair, make_pair_clogged_by_send_all
        )


def _lowat(sock: Socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.send_all(b"x"),
        lambda s: s.send_all(b""),
        lambda s: s.wait_send_all_might_not_block(),
    ],
    ids=["send_all", "send_all-empty", "wait_send_all_might_not_block"],
)
async def test_Socket_Trio_send_side_sets_TCP_NOTSENT_LOWAT_on_first_use(
    pair: Pair, call: Callable[[Socket], Awaitable[None]]
) -> None:
    a, _ = pair
    unlimited = _lowat(a)
    assert unlimited != TRIO_NOTSENT_LOWAT
    await call(a)
    assert _lowat(a) == TRIO_NOTSENT_LOWAT
    # Set once: a value the program chose afterwards is kept.
    a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, 12345)
    await call(a)
    assert _lowat(a) == 12345


async def test_Socket_TCP_NOTSENT_LOWAT_set_first_by_the_program_is_kept(
    pair: Pair,
) -> None:
    a, _ = pair
    a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, 4096)
    await a.send_all(b"x")
    await a.wait_send_all_might_not_block()
    assert _lowat(a) == 4096


@pytest.mark.parametrize("value", [4096, 0])
@pytest.mark.parametrize("when", ["before", "after"])
async def test_Socket_not_sent_low_watermark_set_explicitly_is_kept(
    pair: Pair, value: int, when: str
) -> None:
    # SPEC §12: the automatic limit applies only where none was set, and an
    # explicit 0 (the kernel's default: no limit unless the system sets one)
    # is a choice too.
    a, _ = pair
    if when == "after":
        await a.send_all(b"x")
        assert _lowat(a) == TRIO_NOTSENT_LOWAT
    a.set_option("not_sent_low_watermark", value)
    await a.send_all(b"x")
    await a.wait_send_all_might_not_block()
    assert _lowat(a) == value
    assert a.get_option("not_sent_low_watermark") == value


async def test_Socket_not_sent_low_watermark_refused_leaves_the_automatic_limit(
    pair: Pair,
) -> None:
    a, _ = pair
    with pytest.raises(ValueError, match=r"^value: not_sent_low_watermark must be"):
        a.set_option("not_sent_low_watermark", -1)
    await a.send_all(b"x")
    assert _lowat(a) == TRIO_NOTSENT_LOWAT


async def test_Socket_not_sent_low_watermark_mark_belongs_to_the_descriptor() -> None:
    async with await _listening() as acceptor, Socket() as sock:
        sock.open("v4")
        sock.set_option("not_sent_low_watermark", 4096)
        sock.close()
        # A new descriptor has no explicit value: the automatic one applies.
        await sock.connect(LOOPBACK, acceptor.local_port)
        await sock.send_all(b"x")
        assert _lowat(sock) == TRIO_NOTSENT_LOWAT
        (await acceptor.accept()).close()


async def test_Socket_Emilua_writes_never_set_TCP_NOTSENT_LOWAT(pair: Pair) -> None:
    a, b = pair
    unlimited = _lowat(a)
    await a.write_some(b"x")
    await a.send(b"x")
    await trio_emtcp.stream.write_all(a, b"x" * 100_000)
    await b.receive_some(1)  # the Trio *receive* side does not either
    await b.send_eof()  # nor send_eof
    assert _lowat(a) == unlimited
    assert _lowat(b) == unlimited


async def test_Socket_TCP_NOTSENT_LOWAT_mark_belongs_to_the_descriptor() -> None:
    async with await _listening() as acceptor, Socket() as sock:
        await sock.connect(LOOPBACK, acceptor.local_port)
        await sock.send_all(b"x")
        assert _lowat(sock) == TRIO_NOTSENT_LOWAT
        (await acceptor.accept()).close()
        sock.close()
        await sock.connect(LOOPBACK, acceptor.local_port)
        assert _lowat(sock) != TRIO_NOTSENT_LOWAT
        await sock.send_all(b"x")  # a new descriptor: set again
        assert _lowat(sock) == TRIO_NOTSENT_LOWAT
        (await acceptor.accept()).close()
