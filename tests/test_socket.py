"""Tests for ip.tcp.Socket (trio_emtcp/_socket.py, _base.py)."""

from __future__ import annotations

import array
import contextlib
import dataclasses
import errno
import math
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

import trio_emtcp
from trio_emtcp import (
    AlreadyOpenError,
    EndOfFile,
    OperationAborted,
    socket_pair,
    stream,
)
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Socket

from .helpers import (
    ABORTS,
    LOOPBACK,
    aborted_midway,
    assert_not_exported,
    blocked_then,
    blocking_pair,
    cancelled_midway,
    failing,
    fill_send_buffer,
    listening,
    no_fd_leak,
    open_fds,
)


def _ebadf(exc_info: pytest.ExceptionInfo[OSError]) -> None:
    assert exc_info.value.errno == errno.EBADF


# -- life cycle ---------------------------------------------------------------


async def test_Socket_new_is_closed() -> None:
    sock = Socket()
    assert not sock.is_open
    assert repr(sock) == "<trio_emtcp.ip.tcp.Socket closed>"


@pytest.mark.parametrize(
    ("family", "af"),
    [
        ("v4", socket.AF_INET),
        ("v6", socket.AF_INET6),
        (Address("::1"), socket.AF_INET6),
    ],
)
async def test_Socket_open_families(family: Any, af: int) -> None:
    async with Socket() as sock:
        sock.open(family)
        assert sock.is_open
        assert sock.trio_socket.family == af
        name = "v4 0.0.0.0:0" if af == socket.AF_INET else "v6 [::]:0"
        assert repr(sock) == f"<trio_emtcp.ip.tcp.Socket {name}, not connected>"


async def test_Socket_open_twice_raises_already_open() -> None:
    async with Socket() as sock:
        sock.open("v4")
        with pytest.raises(AlreadyOpenError, match=r"^already open$"):
            sock.open("v4")
        assert isinstance(AlreadyOpenError("x"), OSError)


@pytest.mark.parametrize(
    ("family", "exc", "pattern"),
    [
        ("v5", ValueError, r"^family: "),
        (4, TypeError, r"^family: "),
        (None, TypeError, r"^family: "),
    ],
)
async def test_Socket_open_bad_family(
    family: Any, exc: type[Exception], pattern: str
) -> None:
    sock = Socket()
    with pytest.raises(exc, match=pattern):
        sock.open(family)
    assert not sock.is_open


async def test_Socket_close_is_idempotent_and_async_with_closes() -> None:
    sock = Socket()
    sock.close()
    async with sock:
        sock.open("v4")
    assert not sock.is_open
    sock.close()
    with assert_checkpoints():
        await sock.aclose()


async def test_Socket_closed_members_raise_ebadf() -> None:
    sock = Socket()
    plain: list[Callable[[], object]] = [
        sock.cancel,
        sock.release,
        lambda: sock.bind(LOOPBACK, 0),
        lambda: sock.shutdown("both"),
        sock.disconnect,
        lambda: sock.io_control("bytes_readable"),
        lambda: sock.set_option("keep_alive", True),
        lambda: sock.get_option("keep_alive"),
        lambda: sock.local_address,
        lambda: sock.local_port,
        lambda: sock.remote_address,
        lambda: sock.remote_port,
        lambda: sock.at_mark,
        lambda: sock.trio_socket,
    ]
    for call in plain:
        with pytest.raises(OSError) as exc_info:
            call()
        _ebadf(exc_info)
    blocking: list[Callable[[], Awaitable[object]]] = [
        lambda: sock.read_some(bytearray(1)),
        lambda: sock.read_some(bytearray(0)),
        lambda: sock.write_some(b"x"),
        lambda: sock.write_some(b""),
        lambda: sock.receive(bytearray(1)),
        lambda: sock.send(b"x"),
        lambda: sock.wait("read"),
        lambda: sock.wait("write"),
    ]
    for acall in blocking:
        with assert_checkpoints(), pytest.raises(OSError) as exc_info:
            await acall()
        _ebadf(exc_info)


async def test_Socket_assign_release_round_trip(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    port = a.local_port
    fd = a.release()
    assert not a.is_open
    c = Socket()
    c.assign("v4", fd)
    async with c:
        assert c.local_port == port
        await c.write_some(b"hi")
        buf = bytearray(2)
        assert await b.read_some(buf) == 2
        assert buf == b"hi"


async def test_Socket_assign_errors_leave_fd_untouched() -> None:
    raw = socket.socket(socket.AF_INET)
    with raw:
        fd = raw.fileno()
        with pytest.raises(ValueError, match=r"^fd: \d+ is not an IPv6 socket$"):
            Socket().assign("v6", fd)
        with pytest.raises(TypeError, match=r"^fd: expected an int"):
            Socket().assign("v4", raw)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^fd: expected an int"):
            Socket().assign("v4", True)
        with pytest.raises(ValueError, match=r"^fd: must be in 0..2147483647, got -1$"):
            Socket().assign("v4", -1)
        async with Socket() as already:
            already.open("v4")
            with pytest.raises(AlreadyOpenError):
                already.assign("v4", fd)
        assert raw.fileno() == fd
        raw.getsockname()  # still ours and open


async def test_Socket_assign_rejects_non_sockets_and_udp() -> None:
    import os

    r, w = os.pipe()
    try:
        with pytest.raises(
            OSError, match=r"^\[Errno \d+\] fd: \d+ is not an open socket"
        ) as e:
            Socket().assign("v4", r)
        assert e.value.errno == errno.ENOTSOCK
    finally:
        os.close(r)
        os.close(w)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(
            ValueError, match=r"^fd: \d+ is not a stream \(TCP\) socket$"
        ):
            Socket().assign("v4", udp.fileno())
        udp.getsockname()


# -- bind, properties, options ------------------------------------------------


async def test_Socket_bind_and_local_address() -> None:
    async with Socket() as sock:
        sock.open("v4")
        assert str(sock.local_address) == "0.0.0.0"
        assert sock.local_port == 0
        sock.bind("127.0.0.1", 0)
        assert sock.local_address == LOOPBACK
        assert sock.local_port > 0
        with pytest.raises(OSError) as exc_info:
            _ = sock.remote_address
        assert exc_info.value.errno == errno.ENOTCONN
        with pytest.raises(OSError) as exc_info:
            _ = sock.remote_port
        assert exc_info.value.errno == errno.ENOTCONN


@pytest.mark.parametrize(
    ("address", "port", "exc", "pattern"),
    [
        ("localhost", 0, ValueError, r"^address: 'localhost' is not a numeric IP"),
        (1234, 0, TypeError, r"^address: "),
        ("127.0.0.1", 65536, ValueError, r"^port: must be in 0\.\.65535, got 65536$"),
        ("127.0.0.1", -1, ValueError, r"^port: "),
        ("127.0.0.1", "80", TypeError, r"^port: "),
        ("127.0.0.1", True, TypeError, r"^port: "),
        ("::1", 0, ValueError, r"^address: ::1 is not an IPv4 address"),
    ],
)
async def test_Socket_bind_bad_arguments(
    address: Any, port: Any, exc: type[Exception], pattern: str
) -> None:
    async with Socket() as sock:
        sock.open("v4")
        with pytest.raises(exc, match=pattern):
            sock.bind(address, port)


async def test_Socket_bind_in_use() -> None:
    with no_fd_leak():
        async with Socket() as a, Socket() as b:
            a.open("v4")
            a.bind(LOOPBACK, 0)
            a.trio_socket.listen(1)
            b.open("v4")
            port = a.local_port
            with pytest.raises(OSError) as exc_info:
                b.bind(LOOPBACK, port)
            assert type(exc_info.value) is OSError
            assert exc_info.value.errno == errno.EADDRINUSE
            assert str(exc_info.value) == (
                f"[Errno 98] Address already in use: '127.0.0.1:{port}'"
            )


async def test_Socket_remote_endpoint(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    assert a.remote_address == LOOPBACK
    assert a.remote_port == b.local_port
    assert b.remote_port == a.local_port


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tcp_no_delay", True),
        ("tcp_no_delay", False),
        ("keep_alive", True),
        ("out_of_band_inline", True),
        ("do_not_route", True),
        ("receive_low_watermark", 10),
        ("send_buffer_size", 8192),
        ("receive_buffer_size", 16384),
    ],
)
async def test_Socket_option_round_trip(name: str, value: object) -> None:
    async with Socket() as sock:
        sock.open("v4")
        sock.set_option(name, value)  # type: ignore[arg-type]
        assert sock.get_option(name) == value


async def test_Socket_option_defaults_follow_emilua() -> None:
    async with Socket() as sock:
        sock.open("v4")
        assert sock.get_option("tcp_no_delay") is False
        assert sock.get_option("linger") == (False, 0)
        assert sock.get_option("send_low_watermark") == 1


async def test_Socket_linger_is_a_pair() -> None:
    async with Socket() as sock:
        sock.open("v4")
        sock.set_option("linger", True, 5)
        assert sock.get_option("linger") == (True, 5)
        with pytest.raises(TypeError, match=r"^timeout: linger needs a timeout"):
            sock.set_option("linger", True)
        with pytest.raises(TypeError, match=r"^timeout: only the linger option"):
            sock.set_option("keep_alive", True, 3)


async def test_Socket_v6_only() -> None:
    async with Socket() as v6, Socket() as v4:
        v6.open("v6")
        v6.set_option("v6_only", True)
        assert v6.get_option("v6_only") is True
        v4.open("v4")
        with pytest.raises(OSError):
            v4.set_option("v6_only", True)


@pytest.mark.parametrize(
    ("name", "value", "exc", "pattern"),
    [
        (
            "no_such",
            True,
            ValueError,
            r"^name: unknown option 'no_such'; known options: ",
        ),
        ("reuse_address", True, ValueError, r"^name: unknown option 'reuse_address'"),
        (3, True, TypeError, r"^name: expected an option name \(str\), got int$"),
        ("keep_alive", 1, TypeError, r"^value: keep_alive expects a bool, got int$"),
        (
            "send_buffer_size",
            True,
            TypeError,
            r"^value: send_buffer_size expects an int, got bool$",
        ),
        (
            "send_buffer_size",
            "8k",
            TypeError,
            r"^value: send_buffer_size expects an int, got str$",
        ),
        (
            "send_buffer_size",
            -1,
            ValueError,
            r"^value: send_buffer_size must be in 0..2147483647 bytes, got -1$",
        ),
        ("linger", 1, TypeError, r"^value: linger expects a bool, got int$"),
    ],
)
async def test_Socket_set_option_bad_arguments(
    name: Any, value: Any, exc: type[Exception], pattern: str
) -> None:
    async with Socket() as sock:
        sock.open("v4")
        with pytest.raises(exc, match=pattern):
            sock.set_option(name, value)


# -- dead-peer options (SPEC §10) --------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "level", "option", "raw"),
    [
        ("keep_alive_idle", 1, socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1),
        ("keep_alive_idle", 32767, socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 32767),
        ("keep_alive_interval", 7, socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 7),
        ("keep_alive_count", 127, socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 127),
        ("keep_alive_count", 1, socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 1),
        ("user_timeout", 3, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 3000),
        ("user_timeout", 1.5, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1500),
        ("user_timeout", 0.0004, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 0),
        ("user_timeout", 0, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 0),
    ],
)
async def test_Socket_dead_peer_options(
    name: str, value: float, level: int, option: int, raw: int
) -> None:
    async with Socket() as sock:
        sock.open("v4")
        sock.set_option(name, value)
        assert sock.getsockopt(level, option) == raw
        got = sock.get_option(name)
        if name == "user_timeout":
            # Kept in whole milliseconds, read back as float seconds.
            assert type(got) is float
            assert got == raw / 1000
        else:
            assert got == value


@pytest.mark.parametrize(
    ("name", "value", "exc", "pattern"),
    [
        (
            "keep_alive_idle",
            0,
            ValueError,
            r"^value: keep_alive_idle must be in 1\.\.32767 seconds, got 0$",
        ),
        (
            "keep_alive_interval",
            32768,
            ValueError,
            r"^value: keep_alive_interval must be in 1\.\.32767 seconds, got 32768$",
        ),
        (
            "keep_alive_count",
            128,
            ValueError,
            r"^value: keep_alive_count must be in 1\.\.127 probes, got 128$",
        ),
        (
            "keep_alive_idle",
            1.5,
            TypeError,
            r"^value: keep_alive_idle expects an int, got float$",
        ),
        (
            "keep_alive_count",
            True,
            TypeError,
            r"^value: keep_alive_count expects an int, got bool$",
        ),
        (
            "user_timeout",
            -1,
            ValueError,
            r"^value: user_timeout must be in 0\.\.2147483\.647 seconds "
            r"\(0: the kernel's default\), got -1$",
        ),
        ("user_timeout", math.nan, ValueError, r"^value: user_timeout must be in "),
        ("user_timeout", math.inf, ValueError, r"^value: user_timeout must be in "),
        ("user_timeout", 2**31, ValueError, r"^value: user_timeout must be in "),
        (
            "user_timeout",
            "3",
            TypeError,
            r"^value: user_timeout expects seconds as an int or a float, got str$",
        ),
        (
            "user_timeout",
            False,
            TypeError,
            r"^value: user_timeout expects seconds as an int or a float, got bool$",
        ),
    ],
)
async def test_Socket_dead_peer_options_bad_values(
    name: str, value: Any, exc: type[Exception], pattern: str
) -> None:
    async with Socket() as sock:
        sock.open("v4")
        before = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        with pytest.raises(exc, match=pattern):
            sock.set_option(name, value)
        # Nothing changed.
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == before
        assert sock.get_option("user_timeout") == 0.0


async def test_Socket_dead_peer_option_missing_on_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trio_emtcp import _options

    missing = dataclasses.replace(_options.SOCKET_OPTIONS["user_timeout"], name=None)
    monkeypatch.setitem(_options.SOCKET_OPTIONS, "user_timeout", missing)
    async with Socket() as sock:
        sock.open("v4")
        pattern = rf"^name: user_timeout is not available on {sys.platform}$"
        with pytest.raises(ValueError, match=pattern):
            sock.set_option("user_timeout", 1)
        with pytest.raises(ValueError, match=pattern):
            sock.get_option("user_timeout")


# -- not_sent_low_watermark (TCP_NOTSENT_LOWAT, SPEC §12) ------------------------


@pytest.mark.parametrize("value", [1, 16384, 2**31 - 1, 0])
async def test_Socket_not_sent_low_watermark_sets_TCP_NOTSENT_LOWAT(
    value: int,
) -> None:
    async with Socket() as sock:
        sock.open("v4")
        # Linux's per-socket value starts at 0: "use the sysctl"
        # (net.ipv4.tcp_notsent_lowat, no limit unless the system sets one).
        assert sock.get_option("not_sent_low_watermark") == 0
        sock.set_option("not_sent_low_watermark", 4096)
        sock.set_option("not_sent_low_watermark", value)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == value
        got = sock.get_option("not_sent_low_watermark")
        assert type(got) is int
        # 0 reads back as 0 (the kernel keeps the 0 and applies the sysctl).
        assert got == value


@pytest.mark.parametrize(
    ("value", "exc", "pattern"),
    [
        (
            -1,
            ValueError,
            r"^value: not_sent_low_watermark must be in 0\.\.2147483647 bytes, "
            r"got -1$",
        ),
        (
            2**31,
            ValueError,
            r"^value: not_sent_low_watermark must be in 0\.\.2147483647 bytes, "
            r"got 2147483648$",
        ),
        (
            16384.0,
            TypeError,
            r"^value: not_sent_low_watermark expects an int, got float$",
        ),
        (True, TypeError, r"^value: not_sent_low_watermark expects an int, got bool$"),
        (
            None,
            TypeError,
            r"^value: not_sent_low_watermark expects an int, got NoneType$",
        ),
    ],
)
async def test_Socket_not_sent_low_watermark_bad_values(
    value: Any, exc: type[Exception], pattern: str
) -> None:
    async with Socket() as sock:
        sock.open("v4")
        sock.set_option("not_sent_low_watermark", 4096)
        with pytest.raises(exc, match=pattern):
            sock.set_option("not_sent_low_watermark", value)
        # Nothing reached the kernel.
        assert sock.get_option("not_sent_low_watermark") == 4096


async def test_Socket_not_sent_low_watermark_missing_on_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trio_emtcp import _options

    option = _options.SOCKET_OPTIONS["not_sent_low_watermark"]
    missing = dataclasses.replace(option, name=None)
    monkeypatch.setitem(_options.SOCKET_OPTIONS, "not_sent_low_watermark", missing)
    async with Socket() as sock:
        sock.open("v4")
        pattern = rf"^name: not_sent_low_watermark is not available on {sys.platform}$"
        with pytest.raises(ValueError, match=pattern):
            sock.set_option("not_sent_low_watermark", 1)
        with pytest.raises(ValueError, match=pattern):
            sock.get_option("not_sent_low_watermark")


async def test_Socket_not_sent_low_watermark_on_a_closed_socket_is_ebadf() -> None:
    sock = Socket()
    for call in (
        lambda: sock.set_option("not_sent_low_watermark", 1),
        lambda: sock.get_option("not_sent_low_watermark"),
    ):
        with pytest.raises(trio_emtcp.ClosedSocketError) as info:
            call()
        assert info.value.errno == errno.EBADF


async def test_Socket_send_low_watermark_refused_on_linux() -> None:
    async with Socket() as sock:
        sock.open("v4")
        with pytest.raises(OSError) as exc_info:
            sock.set_option("send_low_watermark", 10)
        assert exc_info.value.errno == errno.ENOPROTOOPT


async def test_Socket_io_control_and_at_mark(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    assert b.io_control("bytes_readable") == 0
    await a.write_some(b"abc")
    await b.wait("read")
    assert b.io_control("bytes_readable") == 3
    assert b.at_mark is False
    with pytest.raises(
        ValueError, match=r"^command: expected one of 'bytes_readable', got 'x'$"
    ):
        b.io_control("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^command: expected a str, got int$"):
        b.io_control(1)  # type: ignore[arg-type]


async def test_Socket_shutdown(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    with pytest.raises(
        ValueError,
        match=r"^what: expected one of 'receive', 'send', 'both', got 'sideways'$",
    ):
        a.shutdown("sideways")  # type: ignore[arg-type]
    a.shutdown("send")
    with pytest.raises(EndOfFile):
        await b.read_some(bytearray(4))
    with pytest.raises(BrokenPipeError):
        await a.write_some(b"x")
    # The other direction still works after a half-close.
    await b.write_some(b"back")
    buf = bytearray(4)
    assert await a.read_some(buf) == 4


async def test_Socket_shutdown_unconnected() -> None:
    async with Socket() as sock:
        sock.open("v4")
        with pytest.raises(OSError) as exc_info:
            sock.shutdown("both")
        assert exc_info.value.errno == errno.ENOTCONN


async def test_Socket_disconnect_then_connect_again() -> None:
    async with listening() as acceptor, Socket() as sock:
        await sock.connect(LOOPBACK, acceptor.local_port)
        (await acceptor.accept()).close()
        sock.disconnect()
        with pytest.raises(OSError) as exc_info:
            _ = sock.remote_port
        assert exc_info.value.errno == errno.ENOTCONN
        await sock.connect(LOOPBACK, acceptor.local_port)
        async with await acceptor.accept() as peer:
            assert peer.remote_port == sock.local_port


# -- connect ------------------------------------------------------------------


async def test_Socket_connect_opens_and_accepts_strings() -> None:
    async with listening() as acceptor, Socket() as sock:
        with assert_checkpoints():
            await sock.connect("127.0.0.1", acceptor.local_port)
        assert sock.is_open
        async with await acceptor.accept() as peer:
            assert peer.remote_port == sock.local_port


async def test_Socket_connect_refused_leaves_socket_open() -> None:
    async with listening() as acceptor:
        port = acceptor.local_port
    async with Socket() as sock:
        with assert_checkpoints(), pytest.raises(ConnectionRefusedError):
            await sock.connect(LOOPBACK, port)
        assert sock.is_open


async def test_Socket_connect_bad_arguments_checkpoint() -> None:
    sock = Socket()
    with assert_checkpoints(), pytest.raises(ValueError, match=r"^port: "):
        await sock.connect(LOOPBACK, 70000)
    with assert_checkpoints(), pytest.raises(TypeError, match=r"^address: "):
        await sock.connect(None, 80)  # type: ignore[arg-type]
    assert not sock.is_open
    async with Socket() as v6:
        v6.open("v6")
        with pytest.raises(ValueError, match=r"^address: 127\.0\.0\.1 is not an IPv6"):
            await v6.connect(LOOPBACK, 80)


async def _blocked_connect(
    abort: Callable[[Socket], object],
    after: Callable[[Socket, int], Awaitable[None]] | None = None,
) -> tuple[Socket, BaseException | None]:
    """A connect that cannot finish: the listener's backlog is full."""
    async with Socket() as listener:
        listener.open("v4")
        listener.bind(LOOPBACK, 0)
        listener.trio_socket.listen(0)
        port = listener.local_port
        fillers = []
        try:
            # With backlog 0 Linux still queues one connection; once the
            # queue is full, SYNs are dropped and connect stays pending.
            for _ in range(4):
                s = socket.socket()
                s.setblocking(False)
                fillers.append(s)
                s.connect_ex(("127.0.0.1", port))
            sock = Socket()
            caught: list[BaseException] = []

            async def connector() -> None:
                try:
                    await sock.connect(LOOPBACK, port)
                except BaseException as exc:
                    caught.append(exc)
                    if isinstance(exc, trio.Cancelled):
                        raise

            async with trio.open_nursery() as nursery:
                nursery.start_soon(connector)
                await wait_all_tasks_blocked()
                assert not caught, caught
                abort(sock)
            if after is not None:
                await after(sock, port)
            return sock, (caught[0] if caught else None)
        finally:
            for s in fillers:
                s.close()


async def test_Socket_connect_aborted_by_cancel_stays_open() -> None:
    async def retry(sock: Socket, port: int) -> None:
        assert sock.is_open
        # The kernel carries on with the handshake, as Emilua documents.
        with pytest.raises(OSError) as exc_info:
            await sock.connect(LOOPBACK, port)
        assert exc_info.value.errno == errno.EALREADY

    sock, exc = await _blocked_connect(lambda s: s.cancel(), retry)
    async with sock:
        assert isinstance(exc, OperationAborted)
        assert exc.errno == errno.ECANCELED


async def test_Socket_connect_aborted_by_close() -> None:
    sock, exc = await _blocked_connect(lambda s: s.close())
    assert isinstance(exc, OperationAborted)
    assert not sock.is_open


# -- read_some / write_some ---------------------------------------------------


async def test_Socket_read_write_and_checkpoints(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    with assert_checkpoints():
        assert await a.write_some(b"hello") == 5
    buf = bytearray(3)
    with assert_checkpoints():
        assert await b.read_some(buf) == 3
    assert buf == b"hel"
    with assert_checkpoints():
        assert await b.read_some(buf) == 2
    assert buf[:2] == b"lo"


async def test_Socket_read_some_accepts_buffer_types(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    await a.write_some(memoryview(b"abcdefgh"))
    arr = array.array("B", bytes(4))
    assert await b.read_some(arr) == 4
    assert arr.tobytes() == b"abcd"
    big = bytearray(8)
    assert await b.read_some(memoryview(big)[2:]) == 4
    assert big[2:6] == b"efgh"


async def test_Socket_empty_buffers_return_zero(pair: tuple[Socket, Socket]) -> None:
    a, _b = pair
    with assert_checkpoints():
        assert await a.read_some(bytearray()) == 0
    with assert_checkpoints():
        assert await a.write_some(b"") == 0
    assert await a.receive(bytearray()) == 0
    assert await a.send(b"") == 0


async def test_Socket_empty_write_on_unconnected_socket_is_zero() -> None:
    async with Socket() as sock:
        sock.open("v4")
        assert await sock.write_some(b"") == 0
        assert await sock.read_some(bytearray()) == 0
        with pytest.raises(BrokenPipeError):
            await sock.write_some(b"x")
        with pytest.raises(OSError) as exc_info:
            await sock.read_some(bytearray(1))
        assert exc_info.value.errno == errno.ENOTCONN


async def test_Socket_bad_buffers(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    with (
        assert_checkpoints(),
        pytest.raises(
            TypeError,
            match=r"^data: expected a bytes-like object, got str; encode it first$",
        ),
    ):
        await a.write_some("text")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^data: expected a bytes-like object, got int$"
    ):
        await a.write_some(5)  # type: ignore[arg-type]
    with (
        assert_checkpoints(),
        pytest.raises(
            TypeError, match=r"^buf: expected a writable buffer .* got bytes$"
        ),
    ):
        await b.read_some(b"readonly")
    with pytest.raises(
        TypeError, match=r"^buf: expected a writable buffer .* got str$"
    ):
        await b.read_some("x")  # type: ignore[arg-type]


async def test_Socket_eof_is_raised_every_time(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    await a.write_some(b"hello")
    a.shutdown("send")
    buf = bytearray(3)
    assert await b.read_some(buf) == 3
    assert await b.read_some(buf) == 2
    for _ in range(3):
        with assert_checkpoints(), pytest.raises(EndOfFile, match=r"^end of file$"):
            await b.read_some(buf)
    assert await b.read_some(bytearray()) == 0
    assert isinstance(EndOfFile(), EOFError)


async def test_Socket_eof_wakes_a_blocked_reader(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    async with trio.open_nursery() as nursery:

        async def reader() -> None:
            with pytest.raises(EndOfFile):
                await b.read_some(bytearray(8))

        nursery.start_soon(reader)
        await wait_all_tasks_blocked()
        a.close()


async def test_Socket_peer_reset() -> None:
    a, b = await socket_pair()
    async with a, b:
        a.set_option("linger", True, 0)
        a.close()
        with pytest.raises(ConnectionResetError):
            await b.read_some(bytearray(8))


async def test_Socket_write_after_peer_close_breaks() -> None:
    a, b = await socket_pair()
    async with a, b:
        b.close()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):  # noqa: PT012
            for _ in range(100):
                await a.write_some(b"x" * 1024)
                await trio.lowlevel.checkpoint()


async def test_Socket_with_blocking_stdlib_peer() -> None:
    client, server = blocking_pair()
    with client:
        sock = Socket()
        sock.assign("v4", server.detach())
        async with sock:
            payload = bytes(range(256)) * 4096  # 1 MiB

            def peer() -> bytes:
                client.sendall(payload)
                client.shutdown(socket.SHUT_WR)
                got = bytearray()
                while chunk := client.recv(65536):
                    got += chunk
                return bytes(got)

            async with trio.open_nursery() as nursery:
                result: list[bytes] = []

                async def run_peer() -> None:
                    result.append(await trio.to_thread.run_sync(peer))

                nursery.start_soon(run_peer)
                buf = bytearray(65536)
                received = bytearray()
                while True:
                    try:
                        n = await sock.read_some(buf)
                    except EndOfFile:
                        break
                    received += buf[:n]
                    await trio_emtcp.stream.write_all(sock, buf[:n])
                sock.shutdown("send")
            assert received == payload
            assert result == [payload]


# -- close / cancel / release from another task -------------------------------


async def _abort_while_blocked(
    sock: Socket, op: Callable[[], Awaitable[object]], abort: Callable[[Socket], object]
) -> BaseException:
    outcome = await blocked_then(op, lambda: abort(sock))
    assert isinstance(outcome, OperationAborted), outcome
    return outcome


@pytest.mark.parametrize("how", list(ABORTS))
async def test_Socket_read_some_aborted(how: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        exc = await _abort_while_blocked(
            b, lambda: b.read_some(bytearray(8)), ABORTS[how]
        )
        assert exc.errno == errno.ECANCELED  # type: ignore[attr-defined]
        assert b.is_open == (how == "cancel")
        if how == "cancel":
            # Nothing lost: the next read gets the next data.
            await a.write_some(b"next")
            buf = bytearray(8)
            assert await b.read_some(buf) == 4
            assert buf[:4] == b"next"


@pytest.mark.parametrize("how", list(ABORTS))
async def test_Socket_write_some_aborted(how: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        fill_send_buffer(a)
        exc = await _abort_while_blocked(
            a, lambda: a.write_some(b"y" * 100), ABORTS[how]
        )
        assert exc.errno == errno.ECANCELED  # type: ignore[attr-defined]
        assert a.is_open == (how == "cancel")


@pytest.mark.parametrize("how", list(ABORTS))
async def test_Socket_wait_aborted(how: str) -> None:
    a, b = await socket_pair()
    async with a, b:
        await _abort_while_blocked(b, lambda: b.wait("read"), ABORTS[how])


async def test_Socket_cancel_with_nothing_pending(pair: tuple[Socket, Socket]) -> None:
    a, _ = pair
    a.cancel()
    assert await a.write_some(b"ok") == 2


async def test_Socket_outer_cancel_is_trio_cancelled(
    pair: tuple[Socket, Socket], autojump_clock: trio.testing.MockClock
) -> None:
    _, b = pair
    with trio.move_on_after(1) as scope:
        await b.read_some(bytearray(8))
    assert scope.cancelled_caught
    # The socket is unharmed.
    assert b.is_open


@pytest.mark.parametrize("order", ["outer_first", "socket_first"])
async def test_Socket_both_cancels_in_one_tick_give_trio_cancelled(
    order: str, pair: tuple[Socket, Socket]
) -> None:
    _, b = pair
    outcome: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def reader() -> None:
            with scope:
                try:
                    await b.read_some(bytearray(8))
                except BaseException as exc:
                    outcome.append(exc)
                    raise

        nursery.start_soon(reader)
        await wait_all_tasks_blocked()
        if order == "outer_first":
            scope.cancel()
            b.cancel()
        else:
            b.cancel()
            scope.cancel()
    assert len(outcome) == 1
    assert isinstance(outcome[0], trio.Cancelled)


async def test_Socket_completed_read_beats_late_cancel(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    await a.write_some(b"ready")
    await b.wait("read")
    b.cancel()  # nothing pending: the fast path is never aborted
    buf = bytearray(8)
    assert await b.read_some(buf) == 5


async def test_Socket_close_race_after_wakeup_is_aborted() -> None:
    # The reader has been woken by readiness (rescheduled) but not run yet
    # when another task closes the socket: it must see OperationAborted,
    # never EBADF (trio#3520).
    for _ in range(20):
        a, b = await socket_pair()
        async with a, b:
            outcome: list[BaseException | int] = []

            async def reader(b: Socket = b, outcome: list[Any] = outcome) -> None:
                try:
                    outcome.append(await b.read_some(bytearray(8)))
                except OperationAborted as exc:
                    outcome.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await wait_all_tasks_blocked()
                # write_some's schedule point lets the IO manager see the
                # readiness and reschedule the reader; Trio shuffles the
                # batch, so in some rounds we run first and close while the
                # reader is woken but has not run yet.
                await a.write_some(b"x")
                b.close()
            assert len(outcome) == 1
            assert isinstance(outcome[0], (OperationAborted, int))


async def test_Socket_fifo_readers(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    got: list[tuple[int, bytes]] = []

    async def reader(tag: int) -> None:
        buf = bytearray(64)
        n = await b.read_some(buf)
        got.append((tag, bytes(buf[:n])))

    async with trio.open_nursery() as nursery:
        for tag in range(3):
            nursery.start_soon(reader, tag)
            await wait_all_tasks_blocked()
        for word in (b"first", b"second", b"third"):
            await a.write_some(word)
            await wait_all_tasks_blocked()
    assert got == [(0, b"first"), (1, b"second"), (2, b"third")]


async def test_Socket_fifo_queued_reader_aborted_by_cancel(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    aborted = 0

    async def reader() -> None:
        nonlocal aborted
        with pytest.raises(OperationAborted):
            await b.read_some(bytearray(8))
        aborted += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await wait_all_tasks_blocked()
        nursery.start_soon(reader)
        await wait_all_tasks_blocked()
        b.cancel()
    assert aborted == 2
    await a.write_some(b"z")
    assert await b.read_some(bytearray(1)) == 1


async def test_Socket_fifo_head_cancelled_hands_over(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    got: list[bytes] = []

    async def second() -> None:
        buf = bytearray(8)
        n = await b.read_some(buf)
        got.append(bytes(buf[:n]))

    async with trio.open_nursery() as nursery:
        head_scope = trio.CancelScope()

        async def head() -> None:
            with head_scope:
                await b.read_some(bytearray(8))

        nursery.start_soon(head)
        await wait_all_tasks_blocked()
        nursery.start_soon(second)
        await wait_all_tasks_blocked()
        head_scope.cancel()
        await wait_all_tasks_blocked()
        await a.write_some(b"data")
    assert got == [b"data"]


async def test_Socket_concurrent_writers_do_not_raise_busy(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    fill_send_buffer(a)
    total = 0

    async def writer() -> None:
        nonlocal total
        n = await a.write_some(b"w" * 10)
        total += n

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        nursery.start_soon(writer)
        await wait_all_tasks_blocked()
        buf = bytearray(1 << 20)
        received = 0
        while received < 20:
            received += await b.read_some(buf)
    assert total == 20


async def test_Socket_wait_write_and_bad_kind(pair: tuple[Socket, Socket]) -> None:
    a, _ = pair
    with assert_checkpoints():
        await a.wait("write")
    with (
        assert_checkpoints(),
        pytest.raises(
            ValueError,
            match=r"^kind: expected one of 'read', 'write', 'error', got 'x'$",
        ),
    ):
        await a.wait("x")  # type: ignore[arg-type]


async def test_Socket_receive_send_flags(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    assert await a.send(b"peekaboo", ["do_not_route"]) == 8
    buf = bytearray(4)
    await b.wait("read")
    assert await b.receive(buf, ["peek"]) == 4
    assert buf == b"peek"
    big = bytearray(8)
    assert await b.receive(big, trio_emtcp.ip.MessageFlag(0)) == 8
    assert big == b"peekaboo"
    with pytest.raises(
        ValueError, match=r"^flags: unknown flag 'bogus'; known flags: "
    ):
        await b.receive(buf, ["bogus"])
    with pytest.raises(TypeError, match=r"^flags: expected an iterable of flag names"):
        await b.send(b"x", "peek")


@pytest.mark.parametrize(
    "flag",
    [
        pytest.param(getattr(socket, name), id=name)
        for name in ("MSG_TRUNC", "MSG_ERRQUEUE", "MSG_WAITALL", "MSG_CMSG_CLOEXEC")
        if hasattr(socket, name)
    ],
)
async def test_Socket_receive_refuses_flags_that_drop_data_or_spin(
    pair: tuple[Socket, Socket], flag: int
) -> None:
    # SPEC §13: with data pending, MSG_TRUNC returned 5 and dropped the
    # bytes, MSG_ERRQUEUE spun (EAGAIN on a readable socket).  Refused before
    # the syscall: the bytes are still there, nothing waits.
    a, b = pair
    assert await a.write_some(b"hello") == 5
    await b.wait("read")
    buf = bytearray(5)
    with trio.fail_after(5), pytest.raises(ValueError, match=r"^flags: receive\(\)"):
        await b.receive(buf, flag | socket.MSG_PEEK)
    with trio.fail_after(5), pytest.raises(ValueError, match=r"^flags: receive\(\)"):
        await b.receive(buf, flag)
    assert buf == bytes(5)
    assert await b.receive(buf, socket.MSG_DONTWAIT) == 5
    assert buf == b"hello"


async def test_Socket_send_takes_more_and_nosignal(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    assert await a.send(b"ab", socket.MSG_MORE | socket.MSG_NOSIGNAL) == 2
    assert await a.send(b"c", socket.MSG_NOSIGNAL) == 1
    buf = bytearray(3)
    assert await trio_emtcp.stream.read_all(b, buf) == 3
    assert buf == b"abc"
    with pytest.raises(ValueError, match=r"^flags: receive\(\) does not take "):
        await b.receive(buf, socket.MSG_MORE)


async def test_Socket_trio_socket_shares_descriptor(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    ts = a.trio_socket
    assert ts is a.trio_socket
    assert ts.fileno() == a.trio_socket.fileno()
    await ts.send(b"via trio")
    buf = bytearray(16)
    assert await b.read_some(buf) == 8


async def test_Socket_close_wakes_a_trio_socket_waiter(
    pair: tuple[Socket, Socket], autojump_clock: trio.testing.MockClock
) -> None:
    # close() must tell Trio when the descriptor was handed out: a task in
    # trio_socket.recv() would otherwise wait on a closed fd forever (the
    # fail_after turns that hang into a failure).
    a, _b = pair
    ts = a.trio_socket
    woken: list[BaseException] = []

    async def receiver() -> None:
        with pytest.raises(trio.ClosedResourceError) as exc_info:
            await ts.recv(1)
        woken.append(exc_info.value)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            await wait_all_tasks_blocked()
            a.close()
    assert len(woken) == 1


async def test_Socket_close_wakes_a_raw_waiter_on_an_assigned_fd(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The caller of assign() knows the descriptor and may wait on it itself.
    left, right = blocking_pair()
    fd = left.detach()
    sock = Socket()
    sock.assign("v4", fd)
    woken: list[BaseException] = []

    async def waiter() -> None:
        with pytest.raises(trio.ClosedResourceError) as exc_info:
            await trio.lowlevel.wait_readable(fd)
        woken.append(exc_info.value)

    with right, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            sock.close()
    assert len(woken) == 1


async def test_Socket_close_skips_notify_closing_only_when_nothing_can_fire(
    pair: tuple[Socket, Socket],
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The speed-up behind the tests around this one: close() pays for
    # notify_closing (an epoll_ctl) only when a Trio waiter may exist, or a
    # cancelled wait left Trio's epoll entry armed.  release() keeps the
    # descriptor open, so it always notifies.
    calls: list[object] = []
    real = trio.lowlevel.notify_closing

    def counting(obj: Any) -> None:
        calls.append(obj)
        real(obj)

    monkeypatch.setattr(trio.lowlevel, "notify_closing", counting)
    a, b = pair
    buf = bytearray(4)
    # A read that blocked and ended by readiness: EPOLLONESHOT disabled the
    # entry, nothing can fire.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.read_some, buf)
        await wait_all_tasks_blocked()
        await b.write_some(b"x")
    a.close()
    assert calls == []
    # A read cancelled by a timeout: the entry is armed, close() notifies.
    c, d = await socket_pair()
    async with d:
        with trio.move_on_after(1):
            await c.read_some(buf)
        assert calls == []
        c.close()
        assert len(calls) == 1
    os_fd = b.release()
    assert len(calls) == 2
    socket.socket(fileno=os_fd).close()


async def test_Socket_close_after_a_cancelled_wait_forgets_the_epoll_entry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A cancelled wait leaves Trio's epoll entry for the fd armed for
    # EPOLLERR/EPOLLHUP.  If a copy of the descriptor outlives close() (a
    # forked child's; os.dup here) and a new socket gets the same number,
    # the old connection's reset must not wake a wait on the new socket.
    async with listening() as acceptor:
        old, old_peer = await socket_pair()
        buf = bytearray(4)
        with trio.move_on_after(1):
            await old.read_some(buf)
        assert old._sock is not None
        number = old._sock.fileno()
        copy = os.dup(number)
        try:
            old.close()
            new = Socket()
            new.open("v4")
            assert new._sock is not None
            if new._sock.fileno() != number:  # pragma: no cover
                pytest.skip("the kernel did not reuse the descriptor number")
            async with new, await _connect_accept(new, acceptor):
                woke: list[str] = []

                async def waiter() -> None:
                    with contextlib.suppress(OperationAborted):
                        await new.wait("read")
                        woke.append("read")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(waiter)
                    await wait_all_tasks_blocked()
                    # Reset the old connection: EPOLLERR|EPOLLHUP on the copy.
                    old_peer.set_option("linger", True, 0)
                    old_peer.close()
                    await wait_all_tasks_blocked()
                    assert woke == []
                    new.cancel()
        finally:
            os.close(copy)


async def _connect_accept(sock: Socket, acceptor: trio_emtcp.ip.tcp.Acceptor) -> Socket:
    await sock.connect(LOOPBACK, acceptor.local_port)
    return await acceptor.accept()


# -- descriptors --------------------------------------------------------------


async def test_Socket_open_close_cycles_leak_nothing() -> None:
    with no_fd_leak():
        for _ in range(1000):
            sock = Socket()
            sock.open("v4")
            sock.close()


async def test_socket_pair_cycles_leak_nothing() -> None:
    with no_fd_leak():
        for _ in range(1000):
            a, b = await socket_pair()
            a.close()
            b.close()


async def test_socket_pair_v6_and_bad_family() -> None:
    a, b = await socket_pair("v6")
    async with a, b:
        assert a.remote_address == Address.loopback_v6()
    with pytest.raises(ValueError, match=r"^family: "):
        await socket_pair("v5")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^family: expected 'v4' or 'v6', got Address$"
    ):
        await socket_pair(Address("::1"))  # type: ignore[arg-type]


def test_Socket_close_outside_trio_run_closes_the_descriptor() -> None:
    async def make() -> tuple[Socket, Socket]:
        return await socket_pair()

    a, b = trio.run(make)
    before = open_fds()
    a.close()
    b.close()
    assert open_fds() == before - 2
    assert not a.is_open


async def test_Socket_connect_aborted_by_release() -> None:
    released: list[int] = []
    sock, exc = await _blocked_connect(lambda s: released.append(s.release()))
    assert isinstance(exc, OperationAborted)
    assert not sock.is_open
    (fd,) = released
    # The descriptor is the caller's now, still open, and adoptable.
    again = Socket()
    again.assign("v4", fd)
    again.close()


async def test_Socket_every_async_method_is_a_checkpoint(
    pair: tuple[Socket, Socket], tmp_path: Any
) -> None:
    a, b = pair
    path = tmp_path / "f"
    path.write_bytes(b"file")
    await a.write_some(b"x" * 8)
    await b.wait("read")
    file = path.open("rb")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: a.write_some(b"1"),
        lambda: a.send(b"2", ["do_not_route"]),
        lambda: b.read_some(bytearray(1)),
        lambda: b.receive(bytearray(1), ["peek"]),
        lambda: b.receive(bytearray(1)),
        lambda: a.wait("write"),
        lambda: b.wait("read"),
        lambda: a.send_file(file, 0, 4),
        lambda: trio_emtcp.stream.write_all(a, b"34"),
        lambda: trio_emtcp.stream.read_all(b, bytearray(2)),
    ]
    with file:
        for call in calls:
            with assert_checkpoints():
                await call()


async def test_Socket_queued_reader_outer_cancel_wins_in_the_same_tick(
    pair: tuple[Socket, Socket],
) -> None:
    # B queues behind A; A's read completes and hands over to B, and in
    # that same step both B's own scope and the socket are cancelled: B must
    # see trio.Cancelled (SPEC §4), not OperationAborted.
    a, b = pair
    outer_b = trio.CancelScope()
    seen: list[str] = []

    async def first() -> None:
        assert await b.read_some(bytearray(8)) == 1
        b.cancel()
        outer_b.cancel()

    async def second() -> None:
        with outer_b:
            try:
                await b.read_some(bytearray(8))
            except BaseException as exc:
                seen.append(type(exc).__name__)
                raise
        assert outer_b.cancelled_caught

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await wait_all_tasks_blocked()
        nursery.start_soon(second)
        await wait_all_tasks_blocked()
        await a.write_some(b"x")
    assert seen == ["Cancelled"]


async def test_Socket_queued_reader_handed_over_as_cancel_lands_reads_nothing(
    pair: tuple[Socket, Socket],
) -> None:
    # B queues behind A; A's read completes and hands over to B, and in
    # that same step cancel() is called: B must raise OperationAborted
    # without reading (SPEC §4: an aborted read transferred nothing), and
    # the byte it would have read is still there.
    a, b = pair
    seen: list[str] = []

    async def first() -> None:
        assert await b.read_some(bytearray(1)) == 1
        b.cancel()

    async def second() -> None:
        with pytest.raises(OperationAborted):
            await b.read_some(bytearray(8))
        seen.append("aborted")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await wait_all_tasks_blocked()
        nursery.start_soon(second)
        await wait_all_tasks_blocked()
        await a.write_some(b"xy")
    assert seen == ["aborted"]
    buf = bytearray(8)
    assert await b.read_some(buf) == 1
    assert buf[:1] == b"y"


async def test_Socket_empty_or_bad_buffer_does_not_queue(
    pair: tuple[Socket, Socket], autojump_clock: trio.testing.MockClock
) -> None:
    # With a reader and a writer already waiting on ``a``, calls that have
    # nothing to wait for answer at once instead of queueing behind them.
    a, _ = pair
    fill_send_buffer(a)

    async def blocked(op: Callable[[], Awaitable[int]]) -> None:
        # Loops until cancel() aborts it (a write may first drain a little).
        with contextlib.suppress(OperationAborted):
            while True:
                await op()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked, lambda: a.read_some(bytearray(8)))
        nursery.start_soon(blocked, lambda: a.write_some(b"y" * 65536))
        await wait_all_tasks_blocked()
        assert a._readers.busy
        assert a._writers.busy
        # A watchdog on the autojump clock: a call that queued would block
        # with everything else, and fail here instead of hanging.
        with trio.fail_after(60):
            with assert_checkpoints():
                assert await a.read_some(bytearray()) == 0
            with assert_checkpoints():
                assert await a.write_some(b"") == 0
            with pytest.raises(TypeError, match=r"^buf: expected a writable buffer"):
                await a.read_some(b"readonly")
            with pytest.raises(TypeError, match=r"^data: .* got str; encode it first$"):
                await a.write_some("text")  # type: ignore[arg-type]
        a.cancel()


async def test_Socket_connect_handed_over_in_the_queue_waits_for_the_handshake() -> (
    None
):
    # A connect that queued behind another writer (the head) must, once
    # handed the direction, wait for writability before it reads SO_ERROR:
    # SO_ERROR is 0 during SYN_SENT, so reading it early reported success.
    # White-box: the head is simulated by setting ``busy`` and handing over.
    from trio_emtcp._socket import _connect_result

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                filler.connect_ex(("127.0.0.1", port))
            async with Socket() as sock:
                sock.open("v4")
                raw = sock._sock
                assert raw is not None
                assert raw.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
                sock._writers.busy = True  # another writer is the head
                outcome: list[object] = []

                async def connecting() -> None:
                    try:
                        await sock._blocked(
                            sock._writers,
                            trio.lowlevel.wait_writable,
                            _connect_result,
                            (raw,),
                            wait_first=True,
                            queued_after_try=True,
                        )
                        outcome.append("returned")
                    except OperationAborted:
                        outcome.append("aborted")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(connecting)
                    await wait_all_tasks_blocked()
                    sock._writers.hand_over()  # the head leaves
                    await wait_all_tasks_blocked()
                    assert outcome == []  # still waiting: SYN_SENT
                    sock.cancel()
                assert outcome == ["aborted"]
        finally:
            for filler in fillers:
                filler.close()


# -- repr: the endpoints (SPEC §7) --------------------------------------------


async def test_Socket_repr_shows_both_endpoints(pair: tuple[Socket, Socket]) -> None:
    a, b = pair
    assert repr(a) == (
        f"<trio_emtcp.ip.tcp.Socket v4 127.0.0.1:{a.local_port} -> "
        f"127.0.0.1:{b.local_port}>"
    )


async def test_Socket_repr_v6_endpoints_are_bracketed() -> None:
    a, b = await socket_pair("v6")
    async with a, b:
        assert repr(b) == (
            f"<trio_emtcp.ip.tcp.Socket v6 [::1]:{b.local_port} -> "
            f"[::1]:{a.local_port}>"
        )


async def test_Socket_repr_after_close() -> None:
    a, b = await socket_pair()
    b.close()
    await a.aclose()
    assert repr(a) == "<trio_emtcp.ip.tcp.Socket closed>"


# -- no buffer stays exported (SPEC §7) ---------------------------------------

Pair = tuple[Socket, Socket]
# Operations that take the caller's buffer, each given a bytearray: the
# reads block on a quiet pair, the writes on a clogged one.
READS: dict[str, Callable[[Socket, bytearray], Awaitable[object]]] = {
    "read_some": lambda s, buf: s.read_some(buf),
    "receive": lambda s, buf: s.receive(buf),
    "receive-peek": lambda s, buf: s.receive(buf, ["peek"]),
    "receive-oob": lambda s, buf: s.receive(buf, ["out_of_band"]),
}
WRITES: dict[str, Callable[[Socket, bytearray], Awaitable[object]]] = {
    "write_some": lambda s, data: s.write_some(data),
    "send": lambda s, data: s.send(data),
    "send-flags": lambda s, data: s.send(data, ["do_not_route"]),
}


async def _queued_too(
    sock: Socket, direction: str, then: Callable[[], Awaitable[None]]
) -> None:
    """Run ``then`` with another task already blocked in ``direction``.

    The operation under test then queues (the driver's scoped path).
    """

    async def first() -> None:
        with contextlib.suppress(OSError):
            if direction == "read":
                await sock.read_some(bytearray(1))
            else:
                await sock.wait("write")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await wait_all_tasks_blocked()
        await then()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("name", list(READS))
@pytest.mark.parametrize("queued", [False, True], ids=["head", "queued"])
async def test_Socket_reads_release_the_buffer_when_cancelled(
    pair: Pair, name: str, queued: bool
) -> None:
    a, _ = pair
    buf = bytearray(64)

    async def run() -> None:
        await cancelled_midway(lambda: READS[name](a, buf), buf)

    if queued and name != "receive-oob":
        await _queued_too(a, "read", run)
    else:
        await run()


@pytest.mark.parametrize("name", list(READS))
async def test_Socket_reads_release_the_buffer_when_aborted(
    pair: Pair, name: str
) -> None:
    a, _ = pair
    buf = bytearray(64)
    await aborted_midway(lambda: READS[name](a, buf), buf, a.cancel)
    await aborted_midway(lambda: READS[name](a, buf), buf, a.close)


@pytest.mark.parametrize("name", list(READS))
async def test_Socket_reads_release_the_buffer_on_error_and_result(
    pair: Pair, name: str
) -> None:
    a, b = pair
    buf = bytearray(64)
    if name != "receive-oob":
        await b.write_some(b"x")
        await READS[name](a, buf)
        assert_not_exported(buf)
        if name == "receive-peek":
            await a.read_some(buf)  # the peeked byte
    b.set_option("linger", True, 0)
    b.close()  # a reset
    await trio.testing.wait_all_tasks_blocked()
    await failing(lambda: READS[name](a, buf), buf, OSError)


@pytest.mark.parametrize("name", list(WRITES))
@pytest.mark.parametrize("queued", [False, True], ids=["head", "queued"])
async def test_Socket_writes_release_the_buffer_when_cancelled(
    pair: Pair, name: str, queued: bool
) -> None:
    a, b = pair
    # A fixed receive buffer on the peer: with autotuning it may grow while
    # the test runs, and the writes under test then no longer block.
    b.set_option("receive_buffer_size", 4096)
    fill_send_buffer(a)
    data = bytearray(1 << 16)

    async def run() -> None:
        await cancelled_midway(lambda: WRITES[name](a, data), data)

    if queued:
        await _queued_too(a, "write", run)
    else:
        await run()


@pytest.mark.parametrize("name", list(WRITES))
async def test_Socket_writes_release_the_buffer_when_aborted_or_failing(
    pair: Pair, name: str
) -> None:
    a, b = pair
    fill_send_buffer(a)
    data = bytearray(1 << 16)
    await aborted_midway(lambda: WRITES[name](a, data), data, a.cancel)
    b.set_option("linger", True, 0)
    b.close()  # a reset
    await failing(lambda: WRITES[name](a, data), data, OSError)


@pytest.mark.parametrize("name", list(WRITES))
async def test_Socket_writes_release_the_buffer_when_closed(
    pair: Pair, name: str
) -> None:
    a, _ = pair
    fill_send_buffer(a)
    data = bytearray(1 << 16)
    await aborted_midway(lambda: WRITES[name](a, data), data, a.close)


# -- closed underfoot (SPEC §7) -----------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.read_some(bytearray(1)),
        lambda s: s.write_some(b"x"),
        lambda s: s.write_some(b""),
        lambda s: s.receive(bytearray(1), ["out_of_band"]),
        lambda s: s.send(b"x", ["do_not_route"]),
        lambda s: s.wait("read"),
        lambda s: s.wait("error"),
        lambda s: trio_emtcp.stream.write_all(s, b"x"),
        lambda s: trio_emtcp.stream.write_all(s, [b"x", b"y"]),
        lambda s: trio_emtcp.stream.read_all(s, bytearray(1)),
    ],
    ids=[
        "read_some",
        "write_some",
        "write_some-empty",
        "receive-oob",
        "send",
        "wait-read",
        "wait-error",
        "write_all",
        "write_all-vectored",
        "read_all",
    ],
)
async def test_Socket_after_underfoot_close_is_EBADF(
    pair: Pair, call: Callable[[Socket], Awaitable[object]]
) -> None:
    a, _ = pair
    a.trio_socket.close()
    # Straight away: the operation itself finds the dead descriptor.
    with assert_checkpoints(), pytest.raises(trio_emtcp.ClosedSocketError) as info:
        await call(a)
    assert info.value.errno == errno.EBADF
    assert not a.is_open


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.local_address,
        lambda s: s.remote_port,
        lambda s: s.get_option("tcp_no_delay"),
        lambda s: s.shutdown("send"),
        lambda s: s.cancel(),
        lambda s: s.release(),
        lambda s: s.trio_socket,
    ],
    ids=[
        "local_address",
        "remote_port",
        "get_option",
        "shutdown",
        "cancel",
        "release",
        "trio_socket",
    ],
)
async def test_Socket_plain_members_after_underfoot_close_are_EBADF(
    pair: Pair, call: Callable[[Socket], object]
) -> None:
    a, _ = pair
    a.trio_socket.close()
    with pytest.raises(trio_emtcp.ClosedSocketError):
        call(a)


async def test_Socket_blocked_ops_end_with_OperationAborted_on_underfoot_close(
    pair: Pair,
) -> None:
    a, _ = pair
    fill_send_buffer(a)
    trio_sock = a.trio_socket
    caught: list[BaseException] = []

    async def run(op: Callable[[], Awaitable[object]]) -> None:
        try:
            await op()
        except Exception as exc:
            caught.append(exc)

    before = open_fds()
    async with trio.open_nursery() as nursery:
        for op in (
            lambda: a.read_some(bytearray(1)),
            lambda: a.wait("read"),
            lambda: a.write_some(b"x" * 65536),
            lambda: a.wait("write"),
            lambda: trio_emtcp.stream.write_all(a, b"x" * 65536),
        ):
            nursery.start_soon(run, op)
        await wait_all_tasks_blocked()
        with trio.fail_after(10):
            trio_sock.close()
            await wait_all_tasks_blocked()
    assert [type(exc) for exc in caught] == [OperationAborted] * 5
    assert open_fds() == before - 1


async def test_Socket_assign_after_underfoot_close() -> None:
    client, server = blocking_pair()
    sock = Socket()
    try:
        sock.open("v4")
        sock.trio_socket.close()
        sock.assign("v4", server.detach())
        assert sock.is_open
        assert sock.remote_port == client.getsockname()[1]
    finally:
        sock.close()
        client.close()


# -- resets stay resets (SPEC §10) -----------------------------------------------------


async def _reset_by_peer(b: Socket, data: bytes = b"") -> None:
    """The peer sends ``data``, then resets the connection (RST)."""
    if data:
        await b.write_some(data)
    b.set_option("linger", True, 0)
    b.close()
    await wait_all_tasks_blocked()


@pytest.mark.parametrize("data", [b"", b"data"], ids=["nothing-buffered", "buffered"])
async def test_Socket_reset_seen_by_a_write_is_raised_by_later_reads(
    pair: Pair, data: bytes
) -> None:
    a, b = pair
    await _reset_by_peer(b, data)
    with pytest.raises(ConnectionResetError) as first:
        await a.write_some(b"x")  # the kernel reports the reset here only
    buf = bytearray(16)
    if data:
        # Bytes the kernel holds are still read...
        assert bytes(buf[: await a.read_some(buf)]) == data
    # ...and where the kernel says "end of stream", the reset comes back.
    for _ in range(2):
        with assert_checkpoints(), pytest.raises(ConnectionResetError) as again:
            await a.read_some(buf)
        assert again.value.errno == errno.ECONNRESET
        assert again.value is not first.value  # a fresh exception each time
    with pytest.raises(ConnectionResetError):
        await a.write_some(b"x")  # not the kernel's EPIPE


@pytest.mark.parametrize("data", [b"", b"data"], ids=["nothing-buffered", "buffered"])
async def test_Socket_reset_seen_by_a_read_is_raised_by_later_writes(
    pair: Pair, data: bytes
) -> None:
    a, b = pair
    await _reset_by_peer(b, data)
    buf = bytearray(16)
    if data:
        assert bytes(buf[: await a.read_some(buf)]) == data
    with pytest.raises(ConnectionResetError):
        await a.read_some(buf)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: a.write_some(b"x"),
        lambda: a.send(b"x", ["do_not_route"]),
        lambda: stream.write_all(a, b"x" * 10),
        lambda: stream.write_all(a, [b"x", b"y"]),
    ]
    for call in calls:
        with pytest.raises(ConnectionResetError):
            await call()
    with pytest.raises(ConnectionResetError) as info:
        await stream.read_all(a, buf)
    assert info.value.bytes_transferred == 0  # type: ignore[attr-defined]
    with pytest.raises(ConnectionResetError):
        await stream.Scanner(a).get_line()


@pytest.mark.parametrize("first", ["reader", "writer"])
async def test_Socket_two_tasks_both_see_the_reset(pair: Pair, first: str) -> None:
    # A reader and a writer blocked on one socket when the peer resets:
    # the kernel tells one syscall; the other must not see a clean end.
    a, b = pair
    fill_send_buffer(a)
    caught: dict[str, BaseException] = {}

    async def reader() -> None:
        try:
            await a.read_some(bytearray(16))
        except BaseException as exc:
            caught["reader"] = exc

    async def writer() -> None:
        try:
            await a.write_some(b"x" * 65536)
        except BaseException as exc:
            caught["writer"] = exc

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for task in (reader, writer) if first == "reader" else (writer, reader):
                nursery.start_soon(task)
                await wait_all_tasks_blocked()
            await _reset_by_peer(b)
    assert type(caught["reader"]) is ConnectionResetError
    assert type(caught["writer"]) is ConnectionResetError


async def test_Socket_reset_reaches_the_Trio_methods_as_BrokenResourceError(
    pair: Pair,
) -> None:
    a, b = pair
    await _reset_by_peer(b)
    with pytest.raises(ConnectionResetError):
        await a.write_some(b"x")
    # receive_some would have returned b"", a clean end; it is broken.
    with pytest.raises(trio.BrokenResourceError) as info:
        await a.receive_some()
    assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_Socket_EPIPE_and_a_clean_end_are_not_remembered(pair: Pair) -> None:
    a, b = pair
    a.shutdown("send")
    with pytest.raises(BrokenPipeError):
        await a.write_some(b"x")  # our own shutdown: EPIPE
    await b.write_some(b"still")
    buf = bytearray(16)
    assert bytes(buf[: await a.read_some(buf)]) == b"still"
    b.shutdown("send")
    with pytest.raises(EndOfFile):
        await a.read_some(buf)
    with pytest.raises(BrokenPipeError):
        await a.write_some(b"x")


async def test_Socket_forgets_the_reset_with_its_descriptor() -> None:
    async with listening() as acceptor, Socket() as sock:
        for let_go in ("close", "release", "disconnect"):
            await sock.connect(LOOPBACK, acceptor.local_port)
            peer = await acceptor.accept()
            await _reset_by_peer(peer)
            with pytest.raises(ConnectionResetError):
                await sock.write_some(b"x")
            if let_go == "close":
                sock.close()
            elif let_go == "release":
                fd = sock.release()
                sock.assign("v4", fd)  # the same dead connection, adopted anew
                with pytest.raises(EndOfFile):
                    await sock.read_some(bytearray(1))  # the kernel's own word
                sock.close()
            else:
                sock.disconnect()
            # A new connection: its end of stream is a clean one.
            await sock.connect(LOOPBACK, acceptor.local_port)
            async with await acceptor.accept() as peer2:
                peer2.shutdown("send")
                with pytest.raises(EndOfFile):
                    await sock.read_some(bytearray(1))
            sock.close()
