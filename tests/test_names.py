"""Reverse resolution and the host name: ``ip.tcp.get_name_info``, ``ip.host_name``.

Loopback answers come from the hosts and services files, never from DNS.
The resolver's failures and a lookup that never ends are played by a
custom resolver (``trio.socket.set_custom_hostname_resolver``), which the
library honours like Trio does.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

from trio_emtcp import ip
from trio_emtcp.ip import Address, NameInfo, NameInfoFlag


def test_host_name_is_the_systems() -> None:
    assert ip.host_name() == socket.gethostname()


async def test_get_name_info_loopback() -> None:
    with assert_checkpoints():
        entries = await ip.tcp.get_name_info(Address("127.0.0.1"), 80)
    assert entries == [NameInfo(Address("127.0.0.1"), 80, "localhost", "http")]
    assert entries[0].host_name == socket.getnameinfo(("127.0.0.1", 80), 0)[0]


@pytest.mark.parametrize(
    ("flags", "host", "service"),
    [
        (["numeric_host"], "127.0.0.1", "http"),
        (["numeric_service"], "localhost", "80"),
        (("numeric_host", "numeric_service"), "127.0.0.1", "80"),
        (NameInfoFlag.numeric_host | NameInfoFlag.numeric_service, "127.0.0.1", "80"),
        (socket.NI_NUMERICSERV, "localhost", "80"),
        ((), "localhost", "http"),
    ],
)
async def test_get_name_info_flags(flags: Any, host: str, service: str) -> None:
    [entry] = await ip.tcp.get_name_info("127.0.0.1", 80, flags)
    assert (entry.host_name, entry.service_name) == (host, service)


async def test_get_name_info_ipv6_literal_and_datagram_service() -> None:
    [entry] = await ip.tcp.get_name_info("::1", 53, ["numeric_host", "datagram"])
    assert entry.address == Address("::1")
    assert (entry.host_name, entry.service_name) == ("::1", "domain")


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        (("localhost", 80), ValueError, r"^address: 'localhost' is not a numeric IP"),
        (
            (5, 80),
            TypeError,
            r"^address: expected an ip\.Address or a numeric IP string, got int$",
        ),
        (("127.0.0.1", 70000), ValueError, r"^port: must be in 0\.\.65535, got 70000$"),
        (("127.0.0.1", "80"), TypeError, r"^port: expected an int, got str$"),
        (
            ("127.0.0.1", 80, ["bogus"]),
            ValueError,
            r"^flags: unknown flag 'bogus'; known flags: datagram, name_required, "
            r"not_fully_qualified, numeric_host, numeric_service$",
        ),
        (("127.0.0.1", 80, "numeric_host"), TypeError, r"^flags: expected an iterable"),
        (
            ("127.0.0.1", 80, socket.NI_IDN if hasattr(socket, "NI_IDN") else 0x20),
            ValueError,
            r"^flags: get_name_info\(\) does not take 0x20; it takes ",
        ),
        (("127.0.0.1", 80, -1), ValueError, r"^flags: must be >= 0, got -1$"),
    ],
)
async def test_get_name_info_bad_arguments(
    args: tuple[Any, ...], exc: type[Exception], message: str
) -> None:
    with assert_checkpoints(), pytest.raises(exc, match=message):
        await ip.tcp.get_name_info(*args)


class _Resolver(trio.abc.HostnameResolver):
    """A resolver whose reverse lookups fail, or never end."""

    def __init__(self, outcome: BaseException | None) -> None:
        self.outcome = outcome
        self.asked: list[tuple[Any, int]] = []

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not a forward lookup")  # pragma: no cover

    async def getnameinfo(self, sockaddr: Any, flags: int) -> tuple[str, str]:
        self.asked.append((sockaddr, flags))
        if self.outcome is not None:
            await trio.lowlevel.checkpoint()
            raise self.outcome
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture
async def resolver() -> AsyncIterator[_Resolver]:
    fake = _Resolver(None)
    old = trio.socket.set_custom_hostname_resolver(fake)
    try:
        yield fake
    finally:
        trio.socket.set_custom_hostname_resolver(old)


async def test_get_name_info_resolver_failure_names_the_address(
    resolver: _Resolver,
) -> None:
    resolver.outcome = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(socket.gaierror) as info:
        await ip.tcp.get_name_info("192.0.2.1", 443, ["name_required"])
    assert info.value.errno == socket.EAI_NONAME
    assert str(info.value) == (
        f"[Errno {socket.EAI_NONAME}] address: cannot look up 192.0.2.1 port 443 "
        "(Name or service not known)"
    )
    assert resolver.asked == [(("192.0.2.1", 443), socket.NI_NAMEREQD)]


async def test_get_name_info_is_cancellable(
    resolver: _Resolver, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.move_on_after(5) as scope:
        await ip.tcp.get_name_info("fe80::1%1", 80)
    assert scope.cancelled_caught
    # The scope id travels in the sockaddr, as the C library wants it.
    assert resolver.asked == [(("fe80::1", 80, 0, 1), 0)]


async def test_get_name_info_cancelled_by_a_nursery(resolver: _Resolver) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ip.tcp.get_name_info, "127.0.0.1", 80)
        await wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert len(resolver.asked) == 1
