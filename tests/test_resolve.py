"""Tests for resolution and connecting by name (trio_emtcp/_resolve.py):
ip.tcp.get_address_info*, ip.connect, ip.dial, ip.tcp.listen."""

from __future__ import annotations

import errno
import math
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

from trio_emtcp import NotFoundError, OperationAborted, _resolve, ip
from trio_emtcp.ip import Address, AddressInfo, AddressInfoFlag
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import LOOPBACK, no_fd_leak, open_fds

LOOPBACK_V6 = Address.loopback_v6()
AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
TCP = (socket.SOCK_STREAM, socket.IPPROTO_TCP)
DEFAULT_FLAGS = socket.AI_ADDRCONFIG | socket.AI_V4MAPPED

# -- helpers ------------------------------------------------------------------


def _raw(
    family: int,
    host: str,
    port: int,
    canonname: str = "",
    socktype: int = socket.SOCK_STREAM,
) -> tuple[Any, ...]:
    """One getaddrinfo result tuple."""
    sockaddr = (host, port) if family == AF_INET else (host, port, 0, 0)
    return (family, socktype, socket.IPPROTO_TCP, canonname, sockaddr)


class _Resolver(trio.abc.HostnameResolver):
    """A scripted resolver: names map to getaddrinfo answers.

    Trio only asks it about names that are not numeric addresses.
    """

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[Any, ...]]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.block = False

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        self.calls.append((host, port, family, type, proto, flags))
        if self.block:
            await trio.sleep_forever()
        name = host.decode() if host is not None else ""
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[name])

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> tuple[str, str]:
        raise NotImplementedError


@pytest.fixture
async def resolver() -> AsyncIterator[_Resolver]:
    fake = _Resolver()
    previous = trio.socket.set_custom_hostname_resolver(fake)
    yield fake
    trio.socket.set_custom_hostname_resolver(previous)


def _host(family: int) -> str:
    return "127.0.0.1" if family == AF_INET else "::1"


@contextmanager
def _refusing(family: int) -> Iterator[int]:
    """A loopback port that refuses connections: bound, not listening.

    Binding reserves the port, so no other test can start listening there.
    """
    with socket.socket(family) as sock:
        sock.bind((_host(family), 0))
        yield sock.getsockname()[1]


@contextmanager
def _unanswered(family: int) -> Iterator[int]:
    """A loopback port where connect never completes.

    A listener with ``backlog`` 0 holds one connection in its accept queue;
    once a connection sits there the kernel drops further SYNs, so a
    connect stays in progress (loopback cannot blackhole otherwise).
    """
    host = _host(family)
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.socket(family) as filler:
            filler.connect((host, port))
            yield port


def _infos(*pairs: tuple[str, int]) -> list[AddressInfo]:
    return [AddressInfo(Address(host), port) for host, port in pairs]


# -- get_address_info: real lookups -------------------------------------------


async def test_get_address_info_localhost() -> None:
    with assert_checkpoints():
        infos = await ip.tcp.get_address_info("localhost", 80)
    assert infos
    assert AddressInfo(LOOPBACK, 80) in infos
    for info in infos:
        assert isinstance(info, AddressInfo)
        assert info.address.is_loopback
        assert info.port == 80
        assert info.canonical_name is None
    assert len(set(infos)) == len(infos)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", LOOPBACK),
        ("::1", LOOPBACK_V6),
        (LOOPBACK, LOOPBACK),
        (LOOPBACK_V6, LOOPBACK_V6),
    ],
)
async def test_get_address_info_numeric(host: str | Address, expected: Address) -> None:
    with assert_checkpoints():
        infos = await ip.tcp.get_address_info(host, 8080)
    assert infos == [AddressInfo(expected, 8080)]


async def test_get_address_v4_info() -> None:
    assert await ip.tcp.get_address_v4_info("localhost", 7) == [
        AddressInfo(LOOPBACK, 7)
    ]
    assert await ip.tcp.get_address_v4_info(LOOPBACK, 7) == [AddressInfo(LOOPBACK, 7)]


async def test_get_address_v4_info_refuses_v6_host() -> None:
    with pytest.raises(
        socket.gaierror, match=r"^\[Errno -?\d+\] host: cannot "
    ) as info:
        await ip.tcp.get_address_v4_info("::1", 7)
    assert info.value.errno == socket.EAI_ADDRFAMILY
    assert info.value.strerror is not None
    assert info.value.strerror.startswith("host: cannot resolve '::1' (")


async def test_get_address_v6_info_maps_v4_by_default() -> None:
    mapped = LOOPBACK.to_v6()
    assert await ip.tcp.get_address_v6_info("127.0.0.1", 7) == [AddressInfo(mapped, 7)]
    # /etc/hosts may also list ::1 for localhost; either way only IPv6.
    infos = await ip.tcp.get_address_v6_info("localhost", 7)
    assert infos
    assert set(infos) <= {AddressInfo(mapped, 7), AddressInfo(LOOPBACK_V6, 7)}
    assert await ip.tcp.get_address_v6_info("::1", 7) == [AddressInfo(LOOPBACK_V6, 7)]
    # Without v4_mapped an IPv4 literal has no IPv6 answer.
    with pytest.raises(socket.gaierror) as info:
        await ip.tcp.get_address_v6_info("127.0.0.1", 7, 0)
    assert info.value.errno == socket.EAI_ADDRFAMILY


async def test_get_address_info_empty_host_is_no_host() -> None:
    passive = await ip.tcp.get_address_info("", 80, AddressInfoFlag.passive)
    assert set(passive) == {
        AddressInfo(Address.any_v4(), 80),
        AddressInfo(Address.any_v6(), 80),
    }
    active = await ip.tcp.get_address_info("", 80, 0)
    assert set(active) == {AddressInfo(LOOPBACK, 80), AddressInfo(LOOPBACK_V6, 80)}
    assert await ip.tcp.get_address_v4_info("", 80, AddressInfoFlag.passive) == [
        AddressInfo(Address.any_v4(), 80)
    ]


async def test_get_address_info_canonical_name() -> None:
    infos = await ip.tcp.get_address_info(
        "localhost", 80, AddressInfoFlag.canonical_name
    )
    assert infos
    # One name for every entry: the hosts file's first name for the address
    # ("localhost", or "localhost.localdomain" on some systems).
    names = {info.canonical_name for info in infos}
    assert len(names) == 1
    name = names.pop()
    assert name is not None
    assert name.startswith("localhost")
    numeric = await ip.tcp.get_address_info(
        LOOPBACK, 80, AddressInfoFlag.canonical_name
    )
    assert numeric == [AddressInfo(LOOPBACK, 80, "127.0.0.1")]


async def test_get_address_info_keeps_scope_id() -> None:
    scoped = Address("fe80::1%lo")
    assert scoped.scope_id == socket.if_nametoindex("lo")
    infos = await ip.tcp.get_address_v6_info(scoped, 80)
    assert infos == [AddressInfo(scoped, 80)]
    assert infos[0].address.scope_id == scoped.scope_id


async def test_get_address_info_service_name() -> None:
    try:
        port = socket.getservbyname("http", "tcp")
    except OSError:
        pytest.skip("no services database (/etc/services)")
    assert await ip.tcp.get_address_info("127.0.0.1", "http") == [
        AddressInfo(LOOPBACK, port)
    ]
    assert await ip.tcp.get_address_info("127.0.0.1", "8080") == [
        AddressInfo(LOOPBACK, 8080)
    ]


async def test_get_address_info_unknown_host() -> None:
    with (
        assert_checkpoints(),
        pytest.raises(
            socket.gaierror,
            match=rf"^\[Errno {socket.EAI_NONAME}\] host: cannot resolve "
            r"'no-such-host\.invalid' \(.+\)$",
        ) as info,
    ):
        await ip.tcp.get_address_info("no-such-host.invalid", 80)
    assert info.value.errno == socket.EAI_NONAME


@pytest.mark.parametrize("host", ["127.0.0.1", ""])
async def test_get_address_info_unknown_service(host: str) -> None:
    with (
        assert_checkpoints(),
        pytest.raises(
            socket.gaierror,
            match=rf"^\[Errno {socket.EAI_SERVICE}\] service: unknown TCP service "
            r"'no-such-service' \(.+\)$",
        ) as info,
    ):
        await ip.tcp.get_address_info(host, "no-such-service")
    assert info.value.errno == socket.EAI_SERVICE


async def test_get_address_info_flags_refused_by_resolver() -> None:
    # glibc refuses canonical_name without a host.
    with pytest.raises(
        socket.gaierror,
        match=rf"^\[Errno {socket.EAI_BADFLAGS}\] flags: refused by the resolver ",
    ):
        await ip.tcp.get_address_info("", 80, AddressInfoFlag.canonical_name)


@pytest.mark.parametrize(
    ("host", "service", "flags", "exc", "pattern"),
    [
        (
            None,
            80,
            None,
            TypeError,
            r"^host: expected a str or an ip\.Address, got NoneType; "
            r"use '' for no host$",
        ),
        (
            b"localhost",
            80,
            None,
            TypeError,
            r"^host: expected a str or an ip\.Address, got bytes$",
        ),
        (42, 80, None, TypeError, r"^host: expected a str or an ip\.Address, got int$"),
        (
            "localhost",
            None,
            None,
            TypeError,
            r"^service: expected a str or an int, got NoneType$",
        ),
        (
            "localhost",
            1.5,
            None,
            TypeError,
            r"^service: expected a str or an int, got float$",
        ),
        (
            "localhost",
            True,
            None,
            TypeError,
            r"^service: expected a str or an int, got bool$",
        ),
        (
            "localhost",
            65536,
            None,
            ValueError,
            r"^service: must be in 0\.\.65535, got 65536$",
        ),
        (
            "localhost",
            -1,
            None,
            ValueError,
            r"^service: must be in 0\.\.65535, got -1$",
        ),
        (
            "localhost",
            "65536",
            None,
            ValueError,
            r"^service: must be in 0\.\.65535, got 65536$",
        ),
        (
            "localhost",
            80,
            "passive",
            TypeError,
            r"^flags: expected an iterable of flag names, an int, "
            r"an ip\.AddressInfoFlag or None, got str$",
        ),
        (
            "localhost",
            80,
            True,
            TypeError,
            r"^flags: expected an iterable of flag names, an int, "
            r"an ip\.AddressInfoFlag or None, got bool$",
        ),
        ("localhost", 80, -1, ValueError, r"^flags: must be in 0..2147483647, got -1$"),
        ("", "", None, ValueError, r"^host: host and service cannot both be empty$"),
        (
            "a..b",
            80,
            None,
            ValueError,
            r"^host: 'a\.\.b' is not a valid host name \(.+\)$",
        ),
    ],
)
async def test_get_address_info_bad_arguments(
    host: Any, service: Any, flags: Any, exc: type[Exception], pattern: str
) -> None:
    for function in (
        ip.tcp.get_address_info,
        ip.tcp.get_address_v4_info,
        ip.tcp.get_address_v6_info,
    ):
        with assert_checkpoints(), pytest.raises(exc, match=pattern):
            await function(host, service, flags)


async def test_get_address_info_bad_arguments_honour_cancellation() -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await ip.tcp.get_address_info(None, 80)  # type: ignore[arg-type]
    assert scope.cancelled_caught


# -- get_address_info: what reaches the resolver ------------------------------


async def test_get_address_info_hints_and_default_flags(resolver: _Resolver) -> None:
    resolver.answers["host.test"] = [_raw(AF_INET, "192.0.2.1", 80)]
    await ip.tcp.get_address_info("host.test", "http")
    await ip.tcp.get_address_v4_info("host.test", "http")
    await ip.tcp.get_address_v6_info("host.test", "http")
    await ip.tcp.get_address_info("host.test", "http", AddressInfoFlag.passive)
    await ip.tcp.get_address_v6_info("host.test", "http", 0)
    await ip.tcp.get_address_info("host.test", 80, 0)
    await ip.tcp.get_address_v4_info("host.test", "", AddressInfoFlag.all_matching)
    assert resolver.calls == [
        (b"host.test", "http", socket.AF_UNSPEC, *TCP, DEFAULT_FLAGS),
        (b"host.test", "http", AF_INET, *TCP, 0),
        (b"host.test", "http", AF_INET6, *TCP, socket.AI_V4MAPPED),
        (b"host.test", "http", socket.AF_UNSPEC, *TCP, socket.AI_PASSIVE),
        (b"host.test", "http", AF_INET6, *TCP, 0),
        (b"host.test", 80, socket.AF_UNSPEC, *TCP, socket.AI_NUMERICSERV),
        (b"host.test", None, AF_INET, *TCP, socket.AI_ALL),
    ]


async def test_get_address_info_address_host_is_never_looked_up(
    resolver: _Resolver,
) -> None:
    infos = await ip.tcp.get_address_info(Address("192.0.2.7"), 80)
    assert infos == [AddressInfo(Address("192.0.2.7"), 80)]
    assert resolver.calls == []


async def test_get_address_info_deduplicates_in_order(resolver: _Resolver) -> None:
    resolver.answers["dup.test"] = [
        _raw(AF_INET6, "2001:db8::1", 80),
        _raw(AF_INET, "192.0.2.1", 80),
        _raw(AF_INET6, "2001:db8::1", 80),
        _raw(AF_INET, "192.0.2.1", 80, socktype=socket.SOCK_DGRAM),
        _raw(AF_INET, "192.0.2.1", 81),
        _raw(AF_INET, "192.0.2.1", 80),
        _raw(AF_INET6, "2001:db8::1", 80, socktype=socket.SOCK_RAW),
    ]
    infos = await ip.tcp.get_address_info("dup.test", 80)
    assert infos == _infos(("2001:db8::1", 80), ("192.0.2.1", 80), ("192.0.2.1", 81))


async def test_get_address_info_canonical_name_on_every_entry(
    resolver: _Resolver,
) -> None:
    resolver.answers["alias.test"] = [
        _raw(AF_INET, "192.0.2.1", 80, canonname="real.test"),
        _raw(AF_INET, "192.0.2.2", 80),
    ]
    resolver.answers["plain.test"] = [_raw(AF_INET, "192.0.2.3", 80)]
    flag = AddressInfoFlag.canonical_name
    infos = await ip.tcp.get_address_info("alias.test", 80, flag)
    assert [info.canonical_name for info in infos] == ["real.test", "real.test"]
    # No canonical name in the answer: the name that was asked for.
    infos = await ip.tcp.get_address_info("plain.test", 80, flag)
    assert [info.canonical_name for info in infos] == ["plain.test"]
    # Not asked for: None, whatever the resolver says.
    infos = await ip.tcp.get_address_info("alias.test", 80, 0)
    assert [info.canonical_name for info in infos] == [None, None]


async def test_get_address_info_resolver_errors_keep_errno(resolver: _Resolver) -> None:
    with pytest.raises(socket.gaierror) as info:
        await ip.tcp.get_address_info("missing.test", 80)
    assert info.value.errno == socket.EAI_NONAME
    assert info.value.strerror == (
        "host: cannot resolve 'missing.test' (Name or service not known)"
    )
    assert info.value.__cause__ is None


async def test_get_address_info_lookup_is_cancellable(
    resolver: _Resolver, autojump_clock: trio.testing.MockClock
) -> None:
    resolver.block = True
    outcome: list[BaseException] = []
    with trio.move_on_after(5) as scope:
        try:
            await ip.tcp.get_address_info("slow.test", 80)
        except BaseException as exc:
            outcome.append(exc)
            raise
    assert scope.cancelled_caught
    assert len(outcome) == 1
    assert type(outcome[0]) is trio.Cancelled
    assert trio.current_time() == 5
    assert len(resolver.calls) == 1


async def test_AddressInfo_is_an_immutable_record() -> None:
    info = AddressInfo(LOOPBACK, 80)
    assert info == AddressInfo(Address("127.0.0.1"), 80, None)
    assert hash(info) == hash(AddressInfo(LOOPBACK, 80))
    assert (info.address, info.port, info.canonical_name) == (LOOPBACK, 80, None)
    with pytest.raises(AttributeError):
        info.port = 81  # type: ignore[misc]
    assert type(info).__module__ == "trio_emtcp.ip"


# -- ip.connect ---------------------------------------------------------------


async def test_connect_returns_the_endpoint() -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
        port = acceptor.local_port
        with assert_checkpoints():
            result = await ip.connect(sock, [AddressInfo(LOOPBACK, port)])
        assert result == (LOOPBACK, port)
        async with await acceptor.accept() as server:
            assert server.remote_port == sock.local_port


async def test_connect_empty_list_is_not_found() -> None:
    async with Socket() as sock:
        with (
            assert_checkpoints(),
            pytest.raises(NotFoundError, match=r"^entries: no entry to connect to$"),
        ):
            await ip.connect(sock, [])
        assert not sock.is_open
        assert isinstance(NotFoundError(), LookupError)


async def test_connect_dead_then_live() -> None:
    with _refusing(AF_INET) as dead:
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
            live = acceptor.local_port
            seen: list[tuple[Any, ...]] = []

            def condition(error: OSError | None, address: Address, port: int) -> bool:
                seen.append((error, address, port))
                return True

            entries = [AddressInfo(LOOPBACK, dead), AddressInfo(LOOPBACK, live)]
            assert await ip.connect(sock, entries, condition) == (LOOPBACK, live)
            assert len(seen) == 2
            assert seen[0] == (None, LOOPBACK, dead)
            error, address, port = seen[1]
            assert isinstance(error, ConnectionRefusedError)
            assert error.errno == errno.ECONNREFUSED
            assert (address, port) == (LOOPBACK, live)
            assert sock.remote_address == LOOPBACK
            assert sock.remote_port == live


async def test_connect_closes_the_socket_before_each_attempt() -> None:
    with _refusing(AF_INET) as dead, no_fd_leak():
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
            # Pre-opened, bound, and of the other family.
            sock.open("v6")
            sock.bind(LOOPBACK_V6, 0)
            descriptors = [sock.trio_socket]

            def condition(error: OSError | None, address: Address, port: int) -> bool:
                if error is not None:
                    # The failed attempt left its socket open...
                    assert sock.is_open
                    descriptors.append(sock.trio_socket)
                return True

            entries = _infos(("127.0.0.1", dead), ("127.0.0.1", acceptor.local_port))
            await ip.connect(sock, entries, condition)
            # ...and each one was closed before the next attempt.
            assert [d.fileno() for d in descriptors] == [-1, -1]
            assert len(descriptors) == 2
            assert sock.local_address == LOOPBACK
            assert sock.trio_socket.family == AF_INET
            async with await acceptor.accept():
                pass


async def test_connect_all_skipped_is_not_found() -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
        sock.open("v4")
        seen: list[tuple[Any, ...]] = []

        def never(error: OSError | None, address: Address, port: int) -> bool:
            seen.append((error, address, port))
            return False

        entries = _infos(("127.0.0.1", acceptor.local_port), ("::1", 1))
        with (
            assert_checkpoints(),
            pytest.raises(NotFoundError, match=r"^condition: every entry was skipped$"),
        ):
            await ip.connect(sock, entries, never)
        assert seen == [(None, LOOPBACK, acceptor.local_port), (None, LOOPBACK_V6, 1)]
        # Nothing was tried, so the socket was left alone.
        assert sock.is_open
        assert sock.local_port == 0


async def test_connect_condition_skips_some() -> None:
    with _refusing(AF_INET) as dead:
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
            live = acceptor.local_port
            entries = _infos(("::1", live), ("127.0.0.1", dead), ("127.0.0.1", live))

            def v4_only(error: OSError | None, address: Address, port: int) -> bool:
                return address.is_v4

            assert await ip.connect(sock, entries, v4_only) == (LOOPBACK, live)


async def test_connect_all_fail_reraises_the_last_error() -> None:
    with _refusing(AF_INET) as dead4, _refusing(AF_INET6) as dead6:
        async with Socket() as sock:
            errors: list[OSError | None] = []

            def condition(error: OSError | None, address: Address, port: int) -> bool:
                errors.append(error)
                return True

            entries = _infos(("127.0.0.1", dead4), ("::1", dead6))
            with pytest.raises(ConnectionRefusedError) as info:
                await ip.connect(sock, entries, condition)
            assert errors[0] is None
            assert isinstance(errors[1], ConnectionRefusedError)
            assert info.value is not errors[1]
            # The last attempt's socket is left open, as Socket.connect leaves it.
            assert sock.is_open
            assert sock.trio_socket.family == AF_INET6


async def test_connect_aborted_attempt_counts_as_failed() -> None:
    with _unanswered(AF_INET) as slow:
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
            live = acceptor.local_port
            errors: list[OSError | None] = []
            result: list[tuple[Address, int]] = []

            def condition(error: OSError | None, address: Address, port: int) -> bool:
                errors.append(error)
                return True

            async def connector() -> None:
                entries = _infos(("127.0.0.1", slow), ("127.0.0.1", live))
                result.append(await ip.connect(sock, entries, condition))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(connector)
                await wait_all_tasks_blocked()
                assert errors == [None]
                sock.cancel()
            assert result == [(LOOPBACK, live)]
            assert isinstance(errors[1], OperationAborted)
            assert errors[1].errno == errno.ECANCELED


async def test_connect_own_cancellation_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with _unanswered(AF_INET) as slow:
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
            calls: list[OSError | None] = []
            outcome: list[BaseException] = []

            def condition(error: OSError | None, address: Address, port: int) -> bool:
                calls.append(error)
                return True

            entries = _infos(("127.0.0.1", slow), ("127.0.0.1", acceptor.local_port))
            with trio.move_on_after(1) as scope:
                try:
                    await ip.connect(sock, entries, condition)
                except BaseException as exc:
                    outcome.append(exc)
                    raise
            assert scope.cancelled_caught
            assert type(outcome[0]) is trio.Cancelled
            # The second entry was never considered.
            assert calls == [None]


async def test_connect_accepts_pairs_and_iterators() -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
        port = acceptor.local_port
        entries = iter([("127.0.0.1", port)])
        result = await ip.connect(sock, entries)
        assert result == (LOOPBACK, port)
        assert isinstance(result[0], Address)


async def test_connect_with_get_address_info_results() -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as sock:
        entries = await ip.tcp.get_address_v4_info("localhost", acceptor.local_port)
        assert await ip.connect(sock, entries) == (LOOPBACK, acceptor.local_port)


@pytest.mark.parametrize(
    ("sock", "entries", "condition", "exc", "pattern"),
    [
        (
            Acceptor(),
            [],
            None,
            TypeError,
            r"^sock: expected an ip\.tcp\.Socket, got Acceptor$",
        ),
        (
            None,
            [],
            None,
            TypeError,
            r"^sock: expected an ip\.tcp\.Socket, got NoneType$",
        ),
        (
            Socket(),
            5,
            None,
            TypeError,
            r"^entries: expected an iterable of ip\.AddressInfo, got int$",
        ),
        (
            Socket(),
            [],
            5,
            TypeError,
            r"^condition: expected a callable or None, got int$",
        ),
        (
            Socket(),
            [5],
            None,
            TypeError,
            r"^entries\[0\]: expected an ip\.AddressInfo .* got int$",
        ),
        (
            Socket(),
            [("127.0.0.1",)],
            None,
            TypeError,
            r"^entries\[0\]: expected .* got tuple$",
        ),
        (
            Socket(),
            "127.0.0.1",
            None,
            TypeError,
            r"^entries\[0\]: expected .* got str$",
        ),
        (
            Socket(),
            [("localhost", 80)],
            None,
            ValueError,
            r"^entries\[0\]\.address: 'localhost' is not a numeric IP address; ",
        ),
        (
            Socket(),
            [(LOOPBACK, 70000)],
            None,
            ValueError,
            r"^entries\[0\]\.port: must be in 0\.\.65535, got 70000$",
        ),
        (
            Socket(),
            [(LOOPBACK, "80")],
            None,
            TypeError,
            r"^entries\[0\]\.port: expected an int, got str$",
        ),
    ],
)
async def test_connect_bad_arguments(
    sock: Any, entries: Any, condition: Any, exc: type[Exception], pattern: str
) -> None:
    with assert_checkpoints(), pytest.raises(exc, match=pattern):
        await ip.connect(sock, entries, condition)
    if isinstance(sock, (Socket, Acceptor)):
        assert not sock.is_open


async def test_connect_condition_error_propagates() -> None:
    async with Socket() as sock:

        def condition(error: OSError | None, address: Address, port: int) -> bool:
            raise RuntimeError("boom")

        with assert_checkpoints(), pytest.raises(RuntimeError, match=r"^boom$"):
            await ip.connect(sock, _infos(("127.0.0.1", 1)), condition)


async def test_connect_bad_entry_after_a_failed_attempt() -> None:
    with _refusing(AF_INET) as dead:
        async with Socket() as sock:
            entries: list[Any] = [AddressInfo(LOOPBACK, dead), 5]
            with pytest.raises(TypeError, match=r"^entries\[1\]: "):
                await ip.connect(sock, entries)


# -- ip.dial ------------------------------------------------------------------


async def test_dial_localhost() -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
        with assert_checkpoints():
            sock = await ip.dial("localhost", acceptor.local_port)
        async with sock, await acceptor.accept() as server:
            assert sock.remote_address == LOOPBACK
            assert server.remote_port == sock.local_port
            await sock.write_some(b"hi")
            buf = bytearray(2)
            assert await server.read_some(buf) == 2


async def test_dial_numeric_and_address_hosts() -> None:
    async with ip.tcp.listen(LOOPBACK_V6, 0) as acceptor:
        for host in ("::1", LOOPBACK_V6):
            async with await ip.dial(host, str(acceptor.local_port)) as sock:
                assert sock.remote_address == LOOPBACK_V6
                (await acceptor.accept()).close()


async def test_dial_falls_back_to_v4_when_v6_refuses(
    resolver: _Resolver, autojump_clock: trio.testing.MockClock
) -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
        port = acceptor.local_port
        # ::1 on the same port refuses: hold it bound but not listening.
        with socket.socket(AF_INET6) as blocker:
            blocker.bind(("::1", port))
            resolver.answers["dual.test"] = [
                _raw(AF_INET6, "::1", port),
                _raw(AF_INET, "127.0.0.1", port),
            ]
            start = trio.current_time()
            async with await ip.dial("dual.test", port) as sock:
                # The refusal started the next attempt at once: no delay.
                assert trio.current_time() == start
                assert sock.remote_address == LOOPBACK
                assert sock.remote_port == port
                async with await acceptor.accept() as server:
                    assert server.remote_port == sock.local_port


async def test_dial_all_fail_is_one_oserror(resolver: _Resolver) -> None:
    with _refusing(AF_INET6) as dead6, _refusing(AF_INET) as dead4, no_fd_leak():
        resolver.answers["dead.test"] = [
            _raw(AF_INET6, "::1", dead6),
            _raw(AF_INET, "127.0.0.1", dead4),
        ]
        pattern = (
            rf"^\[Errno {errno.ECONNREFUSED}\] cannot connect to dead\.test port 80: "
            rf"\[::1\]:{dead6}: Connection refused; "
            rf"127\.0\.0\.1:{dead4}: Connection refused$"
        )
        with pytest.raises(ConnectionRefusedError, match=pattern) as info:
            await ip.dial("dead.test", 80)
        exc = info.value
        assert type(exc) is ConnectionRefusedError
        assert exc.errno == errno.ECONNREFUSED
        attempts = exc.attempts  # type: ignore[attr-defined]
        assert [(a, p) for a, p, _ in attempts] == [
            (LOOPBACK_V6, dead6),
            (LOOPBACK, dead4),
        ]
        assert all(isinstance(e, ConnectionRefusedError) for _, _, e in attempts)
        assert exc.__cause__ is attempts[-1][2]


@pytest.mark.parametrize("dial", [ip.dial, ip.tcp.dial], ids=["ip", "ip.tcp"])
@pytest.mark.parametrize("host", ["::1", LOOPBACK_V6], ids=["str", "Address"])
@pytest.mark.parametrize("as_text", [False, True], ids=["int", "str"])
async def test_dial_error_names_host_and_service_as_given(
    dial: Any, host: str | Address, as_text: bool
) -> None:
    # SPEC §12: "cannot connect to HOST port SERVICE: ..." with every
    # attempt, and no "host:" prefix (nothing is wrong with the argument).
    with _refusing(AF_INET6) as port:
        service = str(port) if as_text else port
        with pytest.raises(ConnectionRefusedError) as info:
            await dial(host, service)
    assert str(info.value) == (
        f"[Errno {errno.ECONNREFUSED}] cannot connect to ::1 port {port}: "
        f"[::1]:{port}: Connection refused"
    )


async def test_dial_interleaves_families(resolver: _Resolver) -> None:
    with ExitStack() as stack:
        v6 = [stack.enter_context(_refusing(AF_INET6)) for _ in range(3)]
        v4 = [stack.enter_context(_refusing(AF_INET)) for _ in range(2)]
        resolver.answers["many.test"] = [
            _raw(AF_INET6, "::1", v6[0]),
            _raw(AF_INET6, "::1", v6[1]),
            _raw(AF_INET6, "::1", v6[2]),
            _raw(AF_INET, "127.0.0.1", v4[0]),
            _raw(AF_INET, "127.0.0.1", v4[1]),
        ]
        with pytest.raises(OSError) as info:
            await ip.dial("many.test", 80)
        order = [(a, p) for a, p, _ in info.value.attempts]  # type: ignore[attr-defined]
        assert order == [
            (LOOPBACK_V6, v6[0]),
            (LOOPBACK, v4[0]),
            (LOOPBACK_V6, v6[1]),
            (LOOPBACK, v4[1]),
            (LOOPBACK_V6, v6[2]),
        ]
        # The resolver's first family leads.
        resolver.answers["many.test"].reverse()
        with pytest.raises(OSError) as info:
            await ip.dial("many.test", 80)
        order = [(a, p) for a, p, _ in info.value.attempts]  # type: ignore[attr-defined]
        assert order[:3] == [(LOOPBACK, v4[1]), (LOOPBACK_V6, v6[2]), (LOOPBACK, v4[0])]


@pytest.mark.parametrize("delay", [0.25, 1.0, 0.01])
async def test_dial_slow_first_loses_to_fast_second(
    resolver: _Resolver, autojump_clock: trio.testing.MockClock, delay: float
) -> None:
    with _unanswered(AF_INET6) as slow, no_fd_leak():
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
            resolver.answers["race.test"] = [
                _raw(AF_INET6, "::1", slow),
                _raw(AF_INET, "127.0.0.1", acceptor.local_port),
            ]
            start = trio.current_time()
            kwargs: dict[str, Any] = {}
            if delay != 0.25:
                kwargs["happy_eyeballs_delay"] = delay
            async with await ip.dial("race.test", 80, **kwargs) as sock:
                assert trio.current_time() - start == pytest.approx(delay)
                assert sock.remote_address == LOOPBACK
                (await acceptor.accept()).close()


async def test_dial_without_delay_tries_one_at_a_time(
    resolver: _Resolver, autojump_clock: trio.testing.MockClock
) -> None:
    with _unanswered(AF_INET6) as slow, no_fd_leak():
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
            resolver.answers["race.test"] = [
                _raw(AF_INET6, "::1", slow),
                _raw(AF_INET, "127.0.0.1", acceptor.local_port),
            ]
            with trio.move_on_after(60) as scope:
                await ip.dial("race.test", 80, happy_eyeballs_delay=None)
            assert scope.cancelled_caught
            assert trio.current_time() == 60
            # The second candidate was never tried: nothing to accept.
            with trio.move_on_after(1) as scope:
                await acceptor.accept()
            assert scope.cancelled_caught


async def test_dial_zero_delay_starts_all_and_closes_losers(
    resolver: _Resolver,
) -> None:
    with no_fd_leak():
        async with (
            ip.tcp.listen(LOOPBACK, 0) as a4,
            ip.tcp.listen(LOOPBACK_V6, 0) as a6,
        ):
            resolver.answers["fast.test"] = [
                _raw(AF_INET6, "::1", a6.local_port),
                _raw(AF_INET, "127.0.0.1", a4.local_port),
            ]
            async with await ip.dial("fast.test", 80, happy_eyeballs_delay=0) as sock:
                assert sock.remote_port in (a4.local_port, a6.local_port)


async def test_dial_cancelled_mid_race_leaks_nothing(
    resolver: _Resolver, autojump_clock: trio.testing.MockClock
) -> None:
    with _unanswered(AF_INET6) as slow6, _unanswered(AF_INET) as slow4:
        resolver.answers["stuck.test"] = [
            _raw(AF_INET6, "::1", slow6),
            _raw(AF_INET, "127.0.0.1", slow4),
        ]
        before = open_fds()
        outcome: list[BaseException] = []
        with trio.move_on_after(1) as scope:
            try:
                await ip.dial("stuck.test", 80)
            except BaseException as exc:
                outcome.append(exc)
                raise
        assert scope.cancelled_caught
        assert trio.current_time() == 1
        # A plain Cancelled, not a group from the racing nursery.
        assert type(outcome[0]) is trio.Cancelled
        assert open_fds() == before


async def test_dial_cancelled_while_resolving(
    resolver: _Resolver, autojump_clock: trio.testing.MockClock
) -> None:
    resolver.block = True
    with no_fd_leak():
        with trio.move_on_after(1) as scope:
            await ip.dial("slow.test", 80)
        assert scope.cancelled_caught


async def test_dial_winner_closed_when_caller_cancelled_in_same_tick(
    resolver: _Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caller's scope is cancelled in the very tick the first connection
    # completes, while dial still waits to start the next candidate: dial
    # raises a plain Cancelled and closes the socket it would have returned.
    scope = trio.CancelScope()
    made: list[Socket] = []

    class _CancellingSocket:
        def __init__(self) -> None:
            self.sock = Socket()
            made.append(self.sock)

        async def connect(self, address: Address, port: int) -> None:
            await self.sock.connect(address, port)
            scope.cancel()

        def set_option(self, name: str, value: bool) -> None:
            self.sock.set_option(name, value)

        def close(self) -> None:
            self.sock.close()

    monkeypatch.setattr(_resolve, "Socket", _CancellingSocket)
    with _refusing(AF_INET) as dead, no_fd_leak():
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
            resolver.answers["now.test"] = [
                _raw(AF_INET, "127.0.0.1", acceptor.local_port),
                _raw(AF_INET, "127.0.0.1", dead),
            ]
            outcome: list[BaseException] = []
            with scope:
                try:
                    await ip.dial("now.test", 80)
                except BaseException as exc:
                    outcome.append(exc)
                    raise
            assert scope.cancelled_caught
            assert type(outcome[0]) is trio.Cancelled
            assert len(made) == 1
            assert not made[0].is_open
            # The connection had been made.
            (await acceptor.accept()).close()


async def test_dial_turns_tcp_no_delay_on() -> None:
    # As trio.open_tcp_stream: no Nagle stall on request/response (SPEC §7).
    async with (
        ip.tcp.listen(LOOPBACK, 0) as acceptor,
        await ip.dial(LOOPBACK, acceptor.local_port) as sock,
    ):
        assert sock.get_option("tcp_no_delay") is True
        (await acceptor.accept()).close()


async def test_dial_local_address_binds_every_attempt(resolver: _Resolver) -> None:
    with _refusing(AF_INET) as dead, no_fd_leak():
        async with ip.tcp.listen("0.0.0.0", 0) as acceptor:
            resolver.answers["two.test"] = [
                _raw(AF_INET, "127.0.0.1", dead),
                _raw(AF_INET, "127.0.0.3", acceptor.local_port),
            ]
            sock = await ip.dial("two.test", 80, local_address="127.0.0.2")
            async with sock, await acceptor.accept() as server:
                assert sock.local_address == Address("127.0.0.2")
                assert server.remote_address == Address("127.0.0.2")
                assert server.remote_port == sock.local_port
                # The port was left to connect (no port reserved by bind).
                assert sock.getsockopt(socket.IPPROTO_IP, 24) == 1


async def test_dial_local_address_as_Address_v6() -> None:
    async with ip.tcp.listen(LOOPBACK_V6, 0) as acceptor:
        sock = await ip.dial("::1", acceptor.local_port, local_address=LOOPBACK_V6)
        async with sock:
            assert sock.local_address == LOOPBACK_V6
            (await acceptor.accept()).close()


async def test_dial_local_address_of_the_other_family_fails_that_attempt(
    resolver: _Resolver,
) -> None:
    with no_fd_leak():
        async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
            port = acceptor.local_port
            resolver.answers["mixed.test"] = [
                _raw(AF_INET6, "::1", port),
                _raw(AF_INET, "127.0.0.1", port),
            ]
            sock = await ip.dial("mixed.test", 80, local_address="127.0.0.1")
            async with sock:
                assert sock.remote_address == LOOPBACK
                (await acceptor.accept()).close()
            resolver.answers["v6only.test"] = [_raw(AF_INET6, "::1", port)]
            with pytest.raises(OSError) as info:
                await ip.dial("v6only.test", 80, local_address="127.0.0.1")
            assert info.value.errno == errno.EAFNOSUPPORT
            assert "local_address 127.0.0.1 cannot reach ::1" in str(info.value)


@pytest.mark.parametrize(
    ("local", "exc", "pattern"),
    [
        ("localhost", ValueError, r"^local_address: 'localhost' is not a numeric IP "),
        (1, TypeError, r"^local_address: expected an ip\.Address or a numeric IP "),
    ],
)
async def test_dial_bad_local_address(
    local: Any, exc: type[Exception], pattern: str
) -> None:
    with assert_checkpoints(), pytest.raises(exc, match=pattern):
        await ip.dial("localhost", 80, local_address=local)


async def test_dial_unknown_host() -> None:
    with no_fd_leak(), pytest.raises(socket.gaierror, match=r"^\[Errno -?\d+\] host: "):
        await ip.dial("no-such-host.invalid", 80)


async def test_dial_resolved_to_nothing(resolver: _Resolver) -> None:
    resolver.answers["empty.test"] = []
    with pytest.raises(
        OSError,
        match=r"^cannot connect to empty\.test port 80: the name resolved to no "
        r"address$",
    ):
        await ip.dial("empty.test", 80)


@pytest.mark.parametrize(
    ("delay", "exc", "pattern"),
    [
        (-1, ValueError, r"^happy_eyeballs_delay: must be >= 0, got -1$"),
        (math.nan, ValueError, r"^happy_eyeballs_delay: must be >= 0, got nan$"),
        (
            "1",
            TypeError,
            r"^happy_eyeballs_delay: expected a number of seconds or None, got str$",
        ),
        (
            True,
            TypeError,
            r"^happy_eyeballs_delay: expected a number of seconds or None, got bool$",
        ),
    ],
)
async def test_dial_bad_delay(delay: Any, exc: type[Exception], pattern: str) -> None:
    with assert_checkpoints(), pytest.raises(exc, match=pattern):
        await ip.dial("localhost", 80, happy_eyeballs_delay=delay)


async def test_dial_bad_arguments() -> None:
    with assert_checkpoints(), pytest.raises(TypeError, match=r"^host: "):
        await ip.dial(None, 80)  # type: ignore[arg-type]
    with assert_checkpoints(), pytest.raises(ValueError, match=r"^service: "):
        await ip.dial("localhost", 70000)


async def test_resolve_names_have_public_modules() -> None:
    assert ip.connect.__module__ == "trio_emtcp.ip"
    assert ip.dial.__module__ == "trio_emtcp.ip"
    assert ip.tcp.listen.__module__ == "trio_emtcp.ip.tcp"
    for function in (
        ip.tcp.get_address_info,
        ip.tcp.get_address_v4_info,
        ip.tcp.get_address_v6_info,
    ):
        assert function.__module__ == "trio_emtcp.ip.tcp"


# -- Emilua's newest: flags as names, ip.tcp.dial ----------------------------------


@pytest.mark.parametrize(
    ("names", "bits"),
    [
        ((), 0),
        ([], 0),
        (["passive"], socket.AI_PASSIVE),
        (
            ("canonical_name", "numeric_host"),
            socket.AI_CANONNAME | socket.AI_NUMERICHOST,
        ),
        (
            ["address_configured", "v4_mapped", "all_matching"],
            socket.AI_ADDRCONFIG | socket.AI_V4MAPPED | socket.AI_ALL,
        ),
        ({"numeric_service"}, socket.AI_NUMERICSERV),
    ],
)
async def test_get_address_info_takes_flags_as_names(
    names: Any, bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real: Any = trio.socket.getaddrinfo

    async def spy(*args: Any, flags: int = 0, **kwargs: Any) -> Any:
        seen.append(flags)
        return await real(*args, flags=flags, **kwargs)

    monkeypatch.setattr(trio.socket, "getaddrinfo", spy)
    await ip.tcp.get_address_info("127.0.0.1", 80, names)
    await ip.tcp.get_address_v4_info("127.0.0.1", 80, names)
    await ip.tcp.get_address_v6_info("::1", 80, names)
    # numeric_service comes with the int port, as before.
    assert seen == [bits | socket.AI_NUMERICSERV] * 3


async def test_get_address_info_takes_any_iterable_of_names() -> None:
    names = (name for name in ["numeric_host", "canonical_name"])
    entries = await ip.tcp.get_address_info("127.0.0.1", 80, names)
    assert [e.canonical_name for e in entries] == ["127.0.0.1"]


async def test_get_address_info_names_agree_with_the_enum() -> None:
    for flag in AddressInfoFlag:
        assert flag.name is not None
        by_name = await ip.tcp.get_address_info("127.0.0.1", 80, [flag.name])
        by_value = await ip.tcp.get_address_info("127.0.0.1", 80, flag)
        assert by_name == by_value


async def test_get_address_info_canonical_name_by_name() -> None:
    entries = await ip.tcp.get_address_info("localhost", 80, ["canonical_name"])
    assert entries
    assert all(isinstance(e.canonical_name, str) and e.canonical_name for e in entries)
    assert len({e.canonical_name for e in entries}) == 1


@pytest.mark.parametrize(
    ("flags", "exc", "message"),
    [
        (
            ["passive", "bogus"],
            ValueError,
            r"^flags: unknown flag 'bogus'; known flags: address_configured, "
            r"all_matching, canonical_name, numeric_host, numeric_service, "
            r"passive, v4_mapped$",
        ),
        ("passive", TypeError, r"^flags: expected an iterable of flag names, "),
        ([1], TypeError, r"^flags: expected flag names \(str\), got int$"),
        (b"x", TypeError, r"^flags: expected an iterable of flag names, "),
    ],
)
async def test_get_address_info_refuses_bad_flag_names(
    flags: Any, exc: type[Exception], message: str
) -> None:
    with assert_checkpoints(), pytest.raises(exc, match=message):
        await ip.tcp.get_address_info("127.0.0.1", 80, flags)


async def test_tcp_dial_is_ip_dial() -> None:
    assert ip.tcp.dial is ip.dial
    async with (
        ip.tcp.listen(LOOPBACK, 0) as acceptor,
        await ip.tcp.dial(LOOPBACK, acceptor.local_port) as sock,
    ):
        assert sock.remote_port == acceptor.local_port
        assert sock.get_option("tcp_no_delay") is True
        (await acceptor.accept()).close()
