"""Tests for the anyio bridge (trio_emtcp/_anyio.py, trio_emtcp.anyio; SPEC §7).

pytest-trio runs the async tests under Trio, which anyio takes as its
backend.  anyio's own stream helpers run over the wrapped socket:
``BufferedByteReceiveStream``, ``TextStream``, ``TLSStream``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import anyio.streams.buffered
import anyio.streams.text
import anyio.streams.tls
import pytest
import trio
import trustme
from trio.testing import wait_all_tasks_blocked

import trio_emtcp
from trio_emtcp import OperationAborted, socket_pair
from trio_emtcp.anyio import (
    AnyioListener,
    AnyioSocketStream,
    wrap_acceptor,
    wrap_socket,
)
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import listening, no_fd_leak

Attr = anyio.abc.SocketAttribute
Pair = tuple[Socket, Socket]


@pytest.fixture
async def streams() -> AsyncIterator[tuple[AnyioSocketStream, AnyioSocketStream]]:
    a, b = await socket_pair()
    async with a, b:
        yield wrap_socket(a), wrap_socket(b)


# -- the stream ---------------------------------------------------------------


def test_wrappers_are_anyio_abcs() -> None:
    assert issubclass(AnyioSocketStream, anyio.abc.SocketStream)
    assert issubclass(AnyioSocketStream, anyio.abc.ByteStream)
    assert issubclass(AnyioListener, anyio.abc.SocketListener)
    assert AnyioSocketStream.__module__ == "trio_emtcp.anyio"
    assert wrap_socket.__module__ == "trio_emtcp.anyio"


async def test_send_is_send_all_and_receive_ends_with_EndOfStream(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    left, right = streams
    payload = bytes(range(256)) * 16384  # 4 MiB: far more than one send takes
    got = bytearray()

    async def reader() -> None:
        while True:
            try:
                got.extend(await right.receive())
            except anyio.EndOfStream:
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await left.send(payload)
        await left.send_eof()
    assert got == payload
    with pytest.raises(anyio.EndOfStream):
        await right.receive()
    # The stream is half-closed, not closed: the other way still works.
    await right.send(b"back")
    assert await left.receive(2) == b"ba"
    assert await left.receive() == b"ck"


async def test_bare_Socket_send_is_a_partial_write(pair: Pair) -> None:
    # Why a Socket is not an anyio stream (the docs' warning): handed to
    # anyio code as one, its send() would drop what it did not write.
    a, _ = pair
    payload = bytes(8 << 20)
    assert await a.send(payload) < len(payload)


async def test_typed_attributes(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    left, right = streams
    a, b = left.socket, right.socket
    assert left.extra(Attr.family) == socket.AF_INET
    assert left.extra(Attr.local_address) == ("127.0.0.1", a.local_port)
    assert left.extra(Attr.local_port) == a.local_port
    assert left.extra(Attr.remote_address) == ("127.0.0.1", b.local_port)
    assert left.extra(Attr.remote_port) == b.local_port
    raw = left.extra(Attr.raw_socket)
    assert isinstance(raw, socket.socket)
    assert raw.fileno() == a.socket.fileno()


async def test_typed_attributes_v6() -> None:
    a, b = await socket_pair("v6")
    async with a, b:
        right = wrap_socket(b)
        assert right.extra(Attr.family) == socket.AF_INET6
        assert right.extra(Attr.local_address) == ("::1", b.local_port)
        assert right.extra(Attr.remote_address) == ("::1", a.local_port)


async def test_errors_are_anyios(pair: Pair) -> None:
    a, b = pair
    left, right = wrap_socket(a), wrap_socket(b)
    b.set_option("linger", True, 0)
    await right.aclose()  # a reset
    await wait_all_tasks_blocked()
    with pytest.raises(anyio.BrokenResourceError) as info:
        await left.receive()
    assert isinstance(info.value.__cause__, ConnectionResetError)
    with pytest.raises(anyio.ClosedResourceError):
        await right.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await right.send(b"x")
    with pytest.raises(anyio.ClosedResourceError):
        await right.send_eof()
    await right.aclose()  # idempotent


async def test_send_after_send_eof_is_closed(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    left, _ = streams
    await left.send_eof()
    with pytest.raises(anyio.ClosedResourceError):
        await left.send(b"x")


async def test_concurrent_receive_is_busy(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    _, right = streams
    with trio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(right.receive)
            await wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError, match="reading from"):
                await right.receive()
            tg.cancel_scope.cancel()


async def test_close_from_another_task_is_ClosedResourceError(pair: Pair) -> None:
    _, b = pair
    right = wrap_socket(b)
    with trio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def receiver() -> None:
                with pytest.raises(anyio.ClosedResourceError):
                    await right.receive()

            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            b.close()


async def test_socket_cancel_raises_OperationAborted_and_keeps_the_stream(
    pair: Pair,
) -> None:
    a, b = pair
    left, right = wrap_socket(a), wrap_socket(b)
    with trio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def receiver() -> None:
                with pytest.raises(OperationAborted):
                    await right.receive()

            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            b.cancel()
    await left.send(b"still")
    assert await right.receive() == b"still"


async def test_anyio_cancel_scope_cancels_receive(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    _, right = streams
    with anyio.move_on_after(0) as scope:
        await right.receive()
    assert scope.cancelled_caught


# -- anyio's stream helpers over it ------------------------------------------------


async def test_BufferedByteReceiveStream_over_it(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    left, right = streams
    buffered = anyio.streams.buffered.BufferedByteReceiveStream(right)
    await left.send(b"first line\nsecond")
    assert await buffered.receive_until(b"\n", 100) == b"first line"
    await left.send_eof()
    assert await buffered.receive_exactly(6) == b"second"
    with pytest.raises(anyio.IncompleteRead):
        await buffered.receive_exactly(1)


async def test_TextStream_over_it(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    left, right = streams
    sender = anyio.streams.text.TextSendStream(left)
    receiver = anyio.streams.text.TextReceiveStream(right)
    text = "grüße, 世界 " * 5000  # multi-byte characters split across reads
    async with anyio.create_task_group() as tg:

        async def send() -> None:
            await sender.send(text)
            await left.send_eof()

        tg.start_soon(send)
        got = []
        async for piece in receiver:
            got.append(piece)
    assert "".join(got) == text


def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("emtcp.example").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return client, server


async def test_TLSStream_over_it(
    streams: tuple[AnyioSocketStream, AnyioSocketStream],
) -> None:
    left, right = streams
    client_ctx, server_ctx = _tls_contexts()
    tls: dict[str, anyio.streams.tls.TLSStream] = {}

    async def client_side() -> None:
        tls["client"] = await anyio.streams.tls.TLSStream.wrap(
            left, ssl_context=client_ctx, hostname="emtcp.example"
        )

    async def server_side() -> None:
        tls["server"] = await anyio.streams.tls.TLSStream.wrap(
            right, ssl_context=server_ctx, server_side=True
        )

    with trio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client_side)
            tg.start_soon(server_side)
        client, server = tls["client"], tls["server"]
        payload = b"secret " * 50_000
        got = bytearray()
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                while len(got) < len(payload):
                    got.extend(await server.receive())

            tg.start_soon(reader)
            await client.send(payload)
        assert got == payload
        # The typed attributes pass through TLS to the socket's.
        assert client.extra(Attr.remote_port) == right.socket.local_port
        assert client.extra(anyio.streams.tls.TLSAttribute.server_side) is False
        # A standard-compatible close exchanges close_notify: both at once.
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.aclose)
            tg.start_soon(server.aclose)


# -- the listener ------------------------------------------------------------------


async def test_listener_serve_echoes_and_accepts_with_tcp_no_delay() -> None:
    acceptor = listening()
    listener = wrap_acceptor(acceptor)
    assert listener.acceptor is acceptor
    assert listener.extra(Attr.local_port) == acceptor.local_port
    assert listener.extra(Attr.local_address) == ("127.0.0.1", acceptor.local_port)
    assert Attr.remote_port not in listener.extra_attributes
    seen: list[object] = []

    async def handler(stream: anyio.abc.SocketStream) -> None:
        assert isinstance(stream, AnyioSocketStream)
        seen.append(stream.socket.get_option("tcp_no_delay"))
        async with stream:
            await stream.send(await stream.receive())

    with no_fd_leak(), trio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            for n in range(3):
                async with await trio_emtcp.ip.dial(
                    Address.loopback_v4(), acceptor.local_port
                ) as client:
                    await client.write_some(b"ping %d" % n)
                    buf = bytearray(16)
                    assert bytes(buf[: await client.read_some(buf)]) == b"ping %d" % n
            tg.cancel_scope.cancel()
    await listener.aclose()
    assert seen == [True, True, True]
    assert not acceptor.is_open


async def test_listener_accept_on_closed_acceptor_is_ClosedResourceError() -> None:
    listener = wrap_acceptor(listening())
    await listener.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await listener.accept()


async def test_listener_close_from_another_task_is_ClosedResourceError() -> None:
    acceptor = listening()
    listener = wrap_acceptor(acceptor)
    with trio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def accepter() -> None:
                with pytest.raises(anyio.ClosedResourceError):
                    await listener.accept()

            tg.start_soon(accepter)
            await wait_all_tasks_blocked()
            acceptor.close()


async def test_listener_acceptor_cancel_is_OperationAborted_and_keeps_listening() -> (
    None
):
    acceptor = listening()
    async with wrap_acceptor(acceptor) as listener:
        with trio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def accepter() -> None:
                    with pytest.raises(OperationAborted):
                        await listener.accept()

                tg.start_soon(accepter)
                await wait_all_tasks_blocked()
                acceptor.cancel()
        assert acceptor.is_open


# -- arguments and backends -----------------------------------------------------------


async def test_wrap_refuses_other_objects() -> None:
    with pytest.raises(
        TypeError, match=r"^socket: expected an ip\.tcp\.Socket, got Acceptor$"
    ):
        wrap_socket(Acceptor())  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^acceptor: expected an ip\.tcp\.Acceptor, got Socket$"
    ):
        wrap_acceptor(Socket())  # type: ignore[arg-type]


def test_wrap_under_asyncio_backend_says_to_use_trio() -> None:
    async def main() -> None:
        with pytest.raises(
            RuntimeError, match=r"^wrap_socket: trio_emtcp runs on Trio only"
        ):
            wrap_socket(Socket())
        with pytest.raises(RuntimeError, match=r"^wrap_acceptor: "):
            wrap_acceptor(Acceptor())

    anyio.run(main, backend="asyncio")


def test_wrap_in_synchronous_code_is_allowed() -> None:
    assert isinstance(wrap_socket(Socket()), AnyioSocketStream)


def test_anyio_run_with_trio_backend_drives_a_Socket() -> None:
    # anyio.run(backend="trio") is trio.run underneath; the socket, its
    # cancel() and anyio's own cancel scopes all work there.
    results: list[object] = []

    async def main() -> None:
        a, b = await socket_pair()
        async with a, b:
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    buf = bytearray(16)
                    n = await b.read_some(buf)
                    results.append(bytes(buf[:n]))

                tg.start_soon(reader)
                await trio_emtcp.stream.write_all(a, b"via anyio")
            with anyio.CancelScope() as scope:
                scope.cancel()
                await b.read_some(bytearray(1))
            results.append(scope.cancel_called)
            stream = wrap_socket(a)
            await stream.send(b"wrapped")
            buf = bytearray(16)
            results.append(bytes(buf[: await b.read_some(buf)]))

    anyio.run(main, backend="trio")
    assert results == [b"via anyio", True, b"wrapped"]


async def test_raw_socket_attribute_makes_close_wake_outside_waiters(
    pair: Pair,
) -> None:
    # Code given the raw socket may wait on it in Trio; close() must wake it.
    a, _ = pair
    raw = wrap_socket(a).extra(Attr.raw_socket)
    caught: list[BaseException] = []

    async def waiter() -> None:
        try:
            await trio.lowlevel.wait_readable(raw)
        except trio.ClosedResourceError as exc:
            caught.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            a.close()
    assert len(caught) == 1
