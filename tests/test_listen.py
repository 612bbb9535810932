"""``ip.tcp.listen``: both forms, an endpoint string (Emilua's) and host + port."""

from __future__ import annotations

import errno
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

import trio_emtcp
from trio_emtcp import ip
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import LOOPBACK, no_fd_leak

LOOPBACK_V6 = Address.loopback_v6()


# -- ip.tcp.listen ------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", LOOPBACK, "::1", LOOPBACK_V6])
async def test_listen_returns_a_listening_acceptor(host: str | Address) -> None:
    with no_fd_leak():
        acceptor = ip.tcp.listen(host, 0)
        async with acceptor:
            assert isinstance(acceptor, Acceptor)
            assert acceptor.local_address == Address(host)
            assert acceptor.local_port != 0
            assert acceptor.get_option("reuse_address") is True
            async with Socket() as client:
                await client.connect(host, acceptor.local_port)
                async with await acceptor.accept() as server:
                    assert server.remote_port == client.local_port


async def test_listen_accepted_connections_have_tcp_no_delay() -> None:
    # As trio.serve_tcp (SPEC §7): set on the listener, copied to each.
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
        assert acceptor.get_option("tcp_no_delay") is True
        async with Socket() as client:
            await client.connect(LOOPBACK, acceptor.local_port)
            assert client.get_option("tcp_no_delay") is False  # built by hand
            async with await acceptor.accept() as server:
                assert server.get_option("tcp_no_delay") is True


async def test_hand_built_sockets_keep_Emiluas_tcp_no_delay_default() -> None:
    async with Acceptor() as acceptor:
        acceptor.open(LOOPBACK)
        acceptor.bind(LOOPBACK, 0)
        acceptor.listen()
        assert acceptor.get_option("tcp_no_delay") is False
        async with Socket() as client:
            await client.connect(LOOPBACK, acceptor.local_port)
            async with await acceptor.accept() as server:
                assert server.get_option("tcp_no_delay") is False
                assert client.get_option("tcp_no_delay") is False
    a, b = await trio_emtcp.socket_pair()
    async with a, b:
        assert a.get_option("tcp_no_delay") is False
        assert b.get_option("tcp_no_delay") is False


# The kernel's cap on a listen backlog (net.core.somaxconn).
SOMAXCONN_SYSCTL = int(Path("/proc/sys/net/core/somaxconn").read_text())


def _listen_backlog(acceptor: Acceptor) -> int:
    """The backlog the kernel took: TCP_INFO's tcpi_sacked on a listener."""
    info = acceptor.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    backlog: int = struct.unpack_from("I", info, 28)[0]
    return backlog


@pytest.mark.parametrize("backlog", [0, 5, None])
async def test_listen_backlog(backlog: int | None) -> None:
    async with (
        ip.tcp.listen(LOOPBACK, 0, backlog=backlog) as acceptor,
        await ip.dial(LOOPBACK, acceptor.local_port),
    ):
        expected = socket.SOMAXCONN if backlog is None else backlog
        somaxconn = SOMAXCONN_SYSCTL
        assert _listen_backlog(acceptor) == min(expected, somaxconn)
        (await acceptor.accept()).close()


async def test_listen_address_in_use_leaks_nothing() -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as first:
        with no_fd_leak():
            port = first.local_port
            pattern = rf"^\[Errno 98\] Address already in use: '127\.0\.0\.1:{port}'$"
            with pytest.raises(OSError, match=pattern) as info:
                ip.tcp.listen("127.0.0.1", port)
            assert type(info.value) is OSError
            assert info.value.errno == errno.EADDRINUSE
            # The endpoint string form names it as it was bound.
            with pytest.raises(OSError, match=pattern):
                ip.tcp.listen(f"localhost:{port}")


@pytest.mark.parametrize(
    ("host", "port", "backlog", "exc", "pattern"),
    [
        (
            "localhost",
            0,
            None,
            ValueError,
            r"^host: 'localhost' is not a numeric IP address; ",
        ),
        ("", 0, None, ValueError, r"^host: '' is not a numeric IP address; "),
        (
            None,
            0,
            None,
            TypeError,
            r"^host: expected an ip\.Address or a numeric IP string, got NoneType$",
        ),
        (
            LOOPBACK,
            65536,
            None,
            ValueError,
            r"^port: must be in 0\.\.65535, got 65536$",
        ),
        (LOOPBACK, "80", None, TypeError, r"^port: expected an int, got str$"),
        (LOOPBACK, 0, -1, ValueError, r"^backlog: must be in 0..2147483647, got -1$"),
        (LOOPBACK, 0, "1", TypeError, r"^backlog: expected an int or None, got str$"),
    ],
)
async def test_listen_bad_arguments_leak_nothing(
    host: Any, port: Any, backlog: Any, exc: type[Exception], pattern: str
) -> None:
    with no_fd_leak(), pytest.raises(exc, match=pattern):
        ip.tcp.listen(host, port, backlog)


async def test_listen_reuse_port_lets_two_acceptors_share_a_port() -> None:
    with no_fd_leak():
        first = ip.tcp.listen(LOOPBACK, 0, reuse_port=True)
        async with first:
            assert first.get_option("reuse_port") is True
            async with ip.tcp.listen(
                LOOPBACK, first.local_port, reuse_port=True
            ) as second:
                assert second.local_port == first.local_port
            # Without it, the port is taken.
            with pytest.raises(OSError) as info:
                ip.tcp.listen(LOOPBACK, first.local_port)
            assert info.value.errno == errno.EADDRINUSE
        with pytest.raises(TypeError, match=r"^reuse_port: expected a bool, got int$"):
            ip.tcp.listen(LOOPBACK, 0, reuse_port=1)  # type: ignore[arg-type]


# -- Emilua's endpoint string ---------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "address"),
    [
        ("127.0.0.1:0", Address("127.0.0.1")),
        ("[::1]:0", Address("::1")),
        ("localhost:0", Address("127.0.0.1")),
        ("localhost:", Address("127.0.0.1")),  # an empty port is 0
        ("127.0.0.1:", Address("127.0.0.1")),
    ],
)
async def test_listen_takes_an_endpoint_string(endpoint: str, address: Address) -> None:
    with no_fd_leak():
        async with ip.tcp.listen(endpoint) as acceptor:
            assert acceptor.local_address == address
            assert acceptor.local_port != 0
            assert acceptor.get_option("reuse_address") is True
            assert acceptor.get_option("tcp_no_delay") is True
            async with Socket() as client:
                await client.connect(address, acceptor.local_port)
                async with await acceptor.accept() as conn:
                    assert conn.remote_port == client.local_port


async def test_listen_endpoint_takes_backlog_and_reuse_port() -> None:
    async with ip.tcp.listen("127.0.0.1:", backlog=3, reuse_port=True) as first:
        assert first.get_option("reuse_port") is True
        endpoint = f"127.0.0.1:{first.local_port}"
        async with ip.tcp.listen(endpoint, reuse_port=True) as second:
            assert second.local_port == first.local_port


def test_listen_endpoint_port_may_be_a_service_name() -> None:
    # Parsed, not bound (binding a well-known port could meet its server).
    from trio_emtcp._endpoint import listen_endpoint

    http = socket.getservbyname("http", "tcp")
    assert listen_endpoint("localhost:http", "host") == (Address("127.0.0.1"), http)
    assert listen_endpoint("[::1]:ssh", "host") == (Address("::1"), 22)
    assert listen_endpoint("0.0.0.0:08080", "host") == (Address("0.0.0.0"), 8080)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            "example.com:80",
            r"^host: 'example\.com' is not a numeric IP address or 'localhost'; "
            r"resolve host names first with ip\.tcp\.get_address_info\(\)$",
        ),
        (":80", r"^host: expected a host before ':', got ':80'; use '0\.0\.0\.0' "),
        (
            "127.0.0.1",
            r"^host: expected an endpoint 'host:port' \(or a port argument\)",
        ),
        ("[1.2.3.4]:80", r"^host: only an IPv6 address may be in brackets$"),
        ("::1:80", r"^host: an IPv6 address must be in brackets, as in '\[::1\]:80'"),
        ("[::1]80", r"^host: expected ':port' after '\]', got '\[::1\]80'$"),
        ("[::1:80", r"^host: unbalanced brackets in '\[::1:80'$"),
        ("localhost:nosuchservice", r"^host: unknown TCP service 'nosuchservice' in "),
        (
            "localhost:+80",
            r"^host: the port must be digits \(0\.\.65535\) or a service ",
        ),
        ("localhost:65536", r"^host: the port must be digits \(0\.\.65535\) or a "),
        ("localhost:8\x000", r"^host: must not contain a NUL character"),
    ],
)
def test_listen_refuses_bad_endpoints(endpoint: str, message: str) -> None:
    with no_fd_leak(), pytest.raises(ValueError, match=message):
        ip.tcp.listen(endpoint)


def test_listen_without_a_port_needs_an_endpoint_string() -> None:
    with no_fd_leak():
        with pytest.raises(
            TypeError, match=r"^port: expected an int with an ip\.Address host"
        ):
            ip.tcp.listen(LOOPBACK)
        with pytest.raises(ValueError, match=r"^host: "):
            # An endpoint string and a port: the host is then not numeric.
            ip.tcp.listen("127.0.0.1:0", 0)
        with pytest.raises(
            TypeError, match=r"^host: expected a str or an ip\.Address, got int$"
        ):
            ip.tcp.listen(_any(5))


def _any(value: object) -> Any:
    return value
