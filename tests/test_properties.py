"""Bad input, generated (SPEC §13): every property against an oracle of its own.

Each property compares the library with something that shares no code with
it: the C library (``inet_pton``, ``getaddrinfo``), the :mod:`ipaddress`
module, a grammar or a domain written here from the SPEC, ``bytes.split``,
and the buffer protocol itself (:class:`memoryview`).  Where the library
refuses, the refusal is a ``TypeError`` or ``ValueError`` whose message
starts with the argument's name, nothing it was called on changed, and no
descriptor is left open.

The tests session runs each property a bounded number of times (the
``tests`` profile of conftest.py); ``nox -s fuzz`` runs many more.
"""

from __future__ import annotations

import array
import ctypes
import enum
import errno
import ipaddress
import itertools
import math
import mmap
import pickle
import re
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

import pytest
import trio
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from trio.testing import assert_checkpoints

from trio_emtcp import EndOfFile, ip, socket_pair, stream
from trio_emtcp.ip import Address, AddressInfoFlag, MessageFlag
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import open_fds

INT_MAX = 2**31 - 1
C_SPACE = " \t\n\v\f\r"  # what C's isspace() skips, in the "C" locale

# Each example makes sockets, so the default deadline would only measure
# the machine; the number of examples comes from the profile.
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- outcomes ------------------------------------------------------------------

Verdict = Literal["ok", "type", "value"]


@contextmanager
def _fds_kept() -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before


def _assert_refusal(
    exc: BaseException, verdict: Verdict, name: str, *also: str
) -> None:
    """``exc`` is the refusal ``verdict`` calls for, naming ``name`` (or,
    for a rule that joins two arguments, one of ``also``)."""
    kind = TypeError if verdict == "type" else ValueError
    other = ValueError if verdict == "type" else TypeError
    assert isinstance(exc, kind), f"expected {kind.__name__}, got {exc!r}"
    assert not isinstance(exc, (other, OSError)), repr(exc)
    named = tuple(f"{n}: " for n in (name, *also))
    assert str(exc).startswith(named), f"{str(exc)!r} does not name {name}"


async def _call(call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raised (awaited if it is async), or None."""
    return (await _result(call))[1]


async def _result(call: Callable[[], object]) -> tuple[object, BaseException | None]:
    """``(result, None)`` or ``(None, what it raised)``; async calls awaited,
    each a checkpoint however it ends."""
    try:
        result = call()
    except Exception as exc:
        return None, exc
    if not isinstance(result, Awaitable):
        return result, None
    with assert_checkpoints(), trio.fail_after(5):
        try:
            return await result, None
        except Exception as exc:
            return None, exc


# -- Address against ipaddress --------------------------------------------------
#
# test_address.py holds Address(text) against inet_pton/inet_ntop; here the
# classification, the conversions and the order against ipaddress, and bytes
# read by hand for the multicast scopes ipaddress does not name.

v4_addresses = st.ip_addresses(v=4)
v6_addresses = st.one_of(
    st.ip_addresses(v=6),
    # The interesting corners: mapped, compatible, link-local, multicast.
    st.builds(
        lambda v4: ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + v4.packed),
        v4_addresses,
    ),
    st.builds(
        lambda prefix, rest: ipaddress.IPv6Address(prefix + rest),
        st.sampled_from([b"\xfe\x80", b"\xfe\xc0", b"\xff\x02", b"\xff\x0e", b"\0\0"]),
        st.binary(min_size=14, max_size=14),
    ),
)


@PROPERTY
@given(st.one_of(v4_addresses, v6_addresses))
def test_Address_classifies_as_ipaddress_does(
    oracle: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    a = Address(oracle)
    assert a.packed == oracle.packed
    assert a.is_v4 == (oracle.version == 4)
    assert a.is_v6 == (oracle.version == 6)
    assert a.is_unspecified == oracle.is_unspecified
    assert a.is_multicast == oracle.is_multicast
    assert a.to_ipaddress() == oracle
    if isinstance(oracle, ipaddress.IPv4Address):
        assert a.is_loopback == oracle.is_loopback  # 127/8
        mapped = a.to_v6().to_ipaddress()
        assert isinstance(mapped, ipaddress.IPv6Address)
        assert mapped.ipv4_mapped == oracle
        return
    assert a.is_loopback == (oracle == ipaddress.IPv6Address("::1"))
    assert a.is_link_local == oracle.is_link_local
    assert a.is_site_local == oracle.is_site_local
    assert a.is_v4_mapped == (oracle.ipv4_mapped is not None)
    if oracle.ipv4_mapped is not None:
        assert a.to_v4().to_ipaddress() == oracle.ipv4_mapped
    else:
        with pytest.raises(ValueError, match=r"^to_v4: "):
            a.to_v4()
    # RFC 4291: ff<flags><scope>; ipaddress has no names for the scopes.
    scope = oracle.packed[1] & 0x0F if oracle.packed[0] == 0xFF else None
    assert a.is_multicast_node_local == (scope == 0x1)
    assert a.is_multicast_link_local == (scope == 0x2)
    assert a.is_multicast_site_local == (scope == 0x5)
    assert a.is_multicast_org_local == (scope == 0x8)
    assert a.is_multicast_global == (scope == 0xE)


@PROPERTY
@given(st.lists(st.one_of(v4_addresses, v6_addresses), min_size=2, max_size=6))
def test_Address_orders_as_ipaddress_does(
    oracles: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    # ipaddress refuses to compare the families; every v4 comes first here.
    key = [(o.version, o.packed) for o in oracles]
    ours = sorted(range(len(oracles)), key=lambda i: Address(oracles[i]))
    theirs = sorted(range(len(oracles)), key=lambda i: key[i])
    assert [key[i] for i in ours] == [key[i] for i in theirs]


# -- endpoints against a grammar written here -----------------------------------
#
#   endpoint = v4 ":" port | "[" v6 [ "%" scope ] "]" ":" port
#   port     = "0" | nonzero-digit *4digit          (at most 65535)
#   v4, v6   = what inet_pton(AF_INET / AF_INET6) accepts
#   scope    = an interface name (for link-local addresses, also multicast
#              link-local) or text whose leading ASCII digits are the id
#              (none: 0), the id at most 2**32 - 1

_ENDPOINT_V4 = re.compile(r"([^\[\]:]*):(0|[1-9][0-9]{0,4})")
_ENDPOINT_V6 = re.compile(r"\[([^\[\]%]*)(?:%([^\[\]]*))?\]:(0|[1-9][0-9]{0,4})")


def _pton(family: int, text: str) -> bytes | None:
    try:
        return socket.inet_pton(family, text)
    except (OSError, UnicodeError, ValueError):
        return None


def _scope_oracle(packed: bytes, scope: str) -> int | None:
    # fe80::/10, and multicast of link-local scope (ffx2::/16).
    link_local = (packed[0] == 0xFE and packed[1] & 0xC0 == 0x80) or (
        packed[0] == 0xFF and packed[1] & 0x0F == 0x2
    )
    if scope and link_local and "\0" not in scope:
        try:
            index = socket.if_nametoindex(scope)
        except (OSError, UnicodeError, ValueError):
            index = 0
        if index:
            return index
    digits = re.match(r"[0-9]*", scope, re.ASCII)
    assert digits is not None
    number = int(digits.group()) if digits.group() else 0
    return number if number <= 0xFFFF_FFFF else None


def endpoint_oracle(text: str) -> tuple[bytes, int, int] | None:
    """``(packed, scope id, port)`` as the grammar reads ``text``, or None."""
    if "\0" in text:
        return None
    if m := _ENDPOINT_V4.fullmatch(text):
        packed = _pton(socket.AF_INET, m[1])
        port = int(m[2])
        return (packed, 0, port) if packed is not None and port <= 65535 else None
    if m := _ENDPOINT_V6.fullmatch(text):
        packed = _pton(socket.AF_INET6, m[1])
        port = int(m[3])
        if packed is None or port > 65535:
            return None
        scope = _scope_oracle(packed, m[2] or "")
        return None if scope is None else (packed, scope, port)
    return None


def _mutated(text: str, draw: st.DrawFn) -> str:
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(text)))
        what = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from([*"0123456789af:.[]% -+\0x\u0660", "lo"]))
        if what == "insert":
            text = text[:i] + char + text[i:]
        elif what == "delete":
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + char + text[i + 1 :]
    return text


@st.composite
def endpoint_texts(draw: st.DrawFn) -> str:
    address = draw(st.one_of(v4_addresses, v6_addresses))
    port = draw(st.one_of(st.integers(0, 65535), st.integers(65536, 10**7)))
    host = str(address)
    if address.version == 6:
        scope = draw(st.sampled_from(["", "%0", "%lo", "%1", "%4294967296", "%7x"]))
        host = f"[{host}{scope}]"
    return _mutated(f"{host}:{port}", draw)


@PROPERTY
@given(st.one_of(endpoint_texts(), st.text(max_size=20)))
def test_toendpoint_agrees_with_the_grammar(text: str) -> None:
    expected = endpoint_oracle(text)
    event("refused" if expected is None else "accepted")
    if expected is None:
        with pytest.raises(ValueError, match=r"^text: "):
            ip.toendpoint(text)
        return
    address, port = ip.toendpoint(text)
    assert (address.packed, address.scope_id if address.is_v6 else 0, port) == (
        expected
    )


# -- get_address_info against getaddrinfo ----------------------------------------
#
# Hosts are numeric or refused before any lookup: every call carries
# numeric_host, so no name ever reaches DNS.  The oracle's rules for a
# service text, from SPEC §13: a NUL is refused; ASCII digits are a port
# (over 65535: refused); anything C's strtoul() would read as a number
# (blanks, a sign) is refused; the rest is a name for the services
# database, and an empty text means no service, as in Asio.


# What glibc's getaddrinfo reads as a port: strtoul() (blanks, a sign,
# digits) up to the end of the text; it then keeps 16 bits of it.
_NUMERIC_TO_C = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


ServiceVerdict = tuple[Literal["port"], int] | tuple[Literal["name"], str | None]


def service_oracle(service: object) -> ServiceVerdict | Verdict:
    if isinstance(service, bool) or not isinstance(service, (int, str)):
        return "type"
    if isinstance(service, int):
        return ("port", int(service)) if 0 <= service <= 65535 else "value"
    if "\0" in service:
        return "value"
    if service and all(c in "0123456789" for c in service):
        return ("port", int(service)) if int(service) <= 65535 else "value"
    if _NUMERIC_TO_C.fullmatch(service):
        return "value"
    return ("name", service or None)


def _entries(raw: list[Any]) -> list[tuple[bytes, int, int]]:
    out: list[tuple[bytes, int, int]] = []
    for family, _type, _proto, _canon, sockaddr in raw:
        host = sockaddr[0].partition("%")[0]
        scope = sockaddr[3] if family == socket.AF_INET6 else 0
        entry = (socket.inet_pton(family, host), sockaddr[1], scope)
        if entry not in out:
            out.append(entry)
    return out


services = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(0, 70000),
    st.integers(0, 70000).map(str),
    st.sampled_from(
        ["http", "https", "ssh", "domain", "", "0080", "+80", " 80", "80 ", "-1"]
    ),
    st.sampled_from(["+65616", " 70000", "\t65536", "65536", "99999999999"]),
    st.text(alphabet="0123456789+- \t\n\v\f\rhtpsx\0\u00a0\u0660", max_size=8),
    st.text(max_size=6),
    st.none(),
    st.floats(),
    st.booleans(),
)
hosts = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses().map(Address),
    st.sampled_from(["", "127.0.0.1\0.evil.example", "::1\0junk", "1.2.3.4 "]),
    st.builds(lambda a, junk: str(a) + junk, st.ip_addresses(), st.text(max_size=3)),
)
ai_flags = st.one_of(
    st.builds(
        lambda names: sum(names, AddressInfoFlag(0)),
        st.lists(st.sampled_from(list(AddressInfoFlag)), unique=True),
    ),
    st.integers(-(2**40), 2**40),
    st.sampled_from([0, 2**31 - 1, 2**31, -1, 0x10000]),
)


@PROPERTY
@given(hosts, services, ai_flags)
async def test_get_address_info_agrees_with_getaddrinfo(
    host: str | Address, service: Any, flags: int
) -> None:
    flags = flags | AddressInfoFlag.numeric_host if flags >= 0 else flags
    entries, got = await _result(lambda: ip.tcp.get_address_info(host, service, flags))
    expected: list[tuple[bytes, int, int]] | BaseException | None = None

    verdict = service_oracle(service)
    event(f"service: {verdict if isinstance(verdict, str) else verdict[0]}")
    host_text = str(host)
    if verdict in ("type", "value"):
        assert isinstance(got, BaseException), f"{service!r} was not refused"
        if isinstance(got, (TypeError, ValueError)) and not str(got).startswith(
            "service: "
        ):
            # Another argument may be refused first; it must be as wrong.
            assert "\0" in host_text or not 0 <= flags <= INT_MAX, got
            return
        _assert_refusal(got, verdict, "service")
        return
    if not 0 <= flags <= INT_MAX:
        assert got is not None
        _assert_refusal(got, "value", "flags")
        return
    if "\0" in host_text:
        assert got is not None
        _assert_refusal(got, "value", "host")
        return
    assert isinstance(verdict, tuple)
    if not host_text and verdict[1] is None:
        assert got is not None
        _assert_refusal(got, "value", "host")
        return
    try:
        raw = socket.getaddrinfo(
            host_text or None,
            verdict[1],
            socket.AF_UNSPEC,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
            flags,
        )
    except (socket.gaierror, UnicodeError) as exc:
        expected = exc
    else:
        expected = _entries(raw)
    if isinstance(expected, BaseException):
        # Refused by the resolver (or by the name's encoding): so is ours,
        # naming what it refused.
        assert got is not None, f"resolved where getaddrinfo said {expected!r}"
        if isinstance(got, socket.gaierror):
            assert isinstance(expected, socket.gaierror)
            assert got.errno == expected.errno
        else:
            assert isinstance(got, ValueError), repr(got)
            assert str(got).startswith(("host: ", "service: ")), str(got)
        return
    assert got is None, f"getaddrinfo resolved it, trio_emtcp said {got!r}"
    assert isinstance(entries, list)
    ours = [
        (e.address.packed, e.port, e.address.scope_id if e.address.is_v6 else 0)
        for e in entries
    ]
    assert ours == expected


# -- numbers, names and flags: every argument's domain, written from the SPEC ----


@dataclass
class Objects:
    """What a site may call into, fresh for every example."""

    a: Socket  # connected to b; b has 4 bytes pending from a
    b: Socket
    acceptor: Acceptor  # open (IPv4), not listening
    stack: ExitStack = field(default_factory=ExitStack)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_domain(
    low: int, high: float, *, none: bool = False
) -> Callable[[object], Verdict]:
    def verdict(value: object) -> Verdict:
        if value is None and none:
            return "ok"
        if not _is_int(value):
            return "type"
        assert isinstance(value, int)
        return "ok" if low <= value <= high else "value"

    return verdict


def bool_domain(value: object) -> Verdict:
    return "ok" if isinstance(value, bool) else "type"


def seconds_domain(limit: float) -> Callable[[object], Verdict]:
    def verdict(value: object) -> Verdict:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "type"
        return "ok" if math.isfinite(value) and 0 <= value <= limit else "value"

    return verdict


def choice_domain(*names: str) -> Callable[[object], Verdict]:
    def verdict(value: object) -> Verdict:
        if not isinstance(value, str):
            return "type"
        return "ok" if value in names else "value"

    return verdict


_MESSAGE_NAMES = {"out_of_band", "peek", "do_not_route", "end_of_record"}
# Plain ints: the ~ of an IntFlag (socket.MSG_*) would keep only its own bits.
_RECEIVE_BITS = int(sum(MessageFlag)) | int(socket.MSG_DONTWAIT)
_SEND_BITS = _RECEIVE_BITS | int(socket.MSG_MORE) | int(socket.MSG_NOSIGNAL)


def flags_domain(bits: int) -> Callable[[object], Verdict]:
    """SPEC §2 and §13: names, or an int of the bits the call takes."""

    def verdict(value: object) -> Verdict:
        if _is_int(value):
            assert isinstance(value, int)
            return "ok" if value >= 0 and value & ~bits == 0 else "value"
        if isinstance(value, (str, bytes)):
            return "type"
        try:
            items = list(value)  # type: ignore[call-overload]
        except TypeError:
            return "type"
        for item in items:
            if not isinstance(item, str):
                return "type"
            if item not in _MESSAGE_NAMES:
                return "value"
        return "ok"

    return verdict


@dataclass(frozen=True)
class Site:
    """One argument of one call: its domain, the call, what must not change."""

    id: str
    name: str
    domain: Callable[[object], Verdict]
    call: Callable[[Objects, Any], object]
    # Read before and after a refusal: it must not have changed.
    state: Callable[[Objects], object] = lambda o: None
    # Valid values are not tried where the call would wait or reach out.
    try_valid: bool = True
    # Arguments a joint rule may name instead (offset + size_in_bytes).
    joined: tuple[str, ...] = ()


def _option_site(
    owner: Literal["Socket", "Acceptor"],
    name: str,
    domain: Callable[[object], Verdict],
) -> Site:
    def target(o: Objects) -> Socket | Acceptor:
        return o.a if owner == "Socket" else o.acceptor

    return Site(
        f"{owner}.set_option-{name}",
        "value",
        domain,
        lambda o, v: target(o).set_option(name, v),
        lambda o: target(o).get_option(name),
    )


def _pending(o: Objects) -> int:
    return o.b.io_control("bytes_readable")


def _fresh(o: Objects, kind: type[Socket] | type[Acceptor] = Socket) -> Any:
    thing = kind()
    o.stack.callback(thing.close)
    thing.open("v4")
    return thing


def _listening(acceptor: Acceptor) -> bool:
    return bool(acceptor.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))


def _receive(o: Objects, flags: Any) -> object:
    urgent = (
        flags & MessageFlag.out_of_band
        if _is_int(flags)
        else isinstance(flags, list) and "out_of_band" in flags
    )
    if urgent and _RECEIVE_FLAGS(flags) == "ok":
        return None  # no urgent data ever comes: it would wait
    return o.b.receive(bytearray(2), flags)


def _delay_domain(value: object) -> Verdict:
    """None, or seconds >= 0; infinity too (never start the next attempt)."""
    if value is None:
        return "ok"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "type"
    return "ok" if value >= 0 else "value"  # NaN compares false: refused


def _service_domain(value: object) -> Verdict:
    verdict = service_oracle(value)
    return verdict if isinstance(verdict, str) else "ok"


@contextmanager
def _closing(thing: Socket | Acceptor) -> Iterator[None]:
    try:
        yield
    finally:
        thing.close()


def _opened(family: Any) -> Socket:
    sock = Socket()
    try:
        sock.open(family)
    except BaseException:
        sock.close()
        raise
    return sock


# SPEC §2 and §10: every socket option's name, with a value it takes.
SOCKET_OPTIONS: dict[str, tuple[object, ...]] = {
    "tcp_no_delay": (True,),
    "send_low_watermark": (1,),  # Linux refuses it: an OSError, not a refusal
    "send_buffer_size": (8192,),
    "receive_low_watermark": (1,),
    "receive_buffer_size": (8192,),
    "out_of_band_inline": (False,),
    "linger": (False, 0),
    "keep_alive": (False,),
    "do_not_route": (False,),
    "debug": (False,),  # needs CAP_NET_ADMIN elsewhere: an OSError there
    "v6_only": (False,),  # an IPv4 socket: an OSError
    "keep_alive_idle": (30,),
    "keep_alive_interval": (5,),
    "keep_alive_count": (3,),
    "user_timeout": (1.5,),
    "not_sent_low_watermark": (16384,),
}


def _a_value_for(name: object) -> tuple[Any, ...]:
    """A value the option ``name`` takes (``False`` for a name it is not)."""
    return SOCKET_OPTIONS.get(name, (False,)) if isinstance(name, str) else (False,)


_SIZE = int_domain(0, INT_MAX)
_RECEIVE_FLAGS = flags_domain(_RECEIVE_BITS)
SITES = [
    *(
        _option_site("Socket", name, _SIZE)
        for name in (
            "send_buffer_size",
            "receive_buffer_size",
            "receive_low_watermark",
            "not_sent_low_watermark",
        )
    ),
    _option_site("Socket", "keep_alive_idle", int_domain(1, 32767)),
    _option_site("Socket", "keep_alive_interval", int_domain(1, 32767)),
    _option_site("Socket", "keep_alive_count", int_domain(1, 127)),
    _option_site("Socket", "user_timeout", seconds_domain(INT_MAX / 1000)),
    _option_site("Socket", "tcp_no_delay", bool_domain),
    _option_site("Socket", "keep_alive", bool_domain),
    _option_site("Acceptor", "keep_alive_count", int_domain(1, 127)),
    _option_site("Acceptor", "reuse_address", bool_domain),
    Site(
        "Socket.set_option-linger-timeout",
        "timeout",
        int_domain(0, INT_MAX),
        lambda o, v: o.a.set_option("linger", True, v),
        lambda o: o.a.get_option("linger"),
    ),
    Site(
        "Socket.set_option-name",
        "name",
        choice_domain(*SOCKET_OPTIONS),
        lambda o, v: o.a.set_option(v, *_a_value_for(v)),
        lambda o: o.a.get_option("keep_alive"),
    ),
    Site(
        "Socket.get_option-name",
        "name",
        choice_domain(*SOCKET_OPTIONS),
        lambda o, v: o.a.get_option(v),
    ),
    Site(
        "Acceptor.listen-backlog",
        "backlog",
        int_domain(0, INT_MAX, none=True),
        lambda o, v: o.acceptor.listen(v),
        lambda o: _listening(o.acceptor),
    ),
    Site(
        "ip.tcp.listen-backlog",
        "backlog",
        int_domain(0, INT_MAX, none=True),
        lambda o, v: o.stack.enter_context(_closing(ip.tcp.listen("127.0.0.1", 0, v))),
    ),
    Site(
        "ip.tcp.listen-port",
        "port",
        # None: "127.0.0.1" is then read as an endpoint, which has no port.
        lambda v: "value" if v is None else int_domain(0, 65535)(v),
        lambda o, v: o.stack.enter_context(_closing(ip.tcp.listen("127.0.0.1", v))),
        joined=("host",),
    ),
    Site(
        "Socket.bind-port",
        "port",
        int_domain(0, 65535),
        lambda o, v: _fresh(o).bind("127.0.0.1", v),
    ),
    Site(
        "Socket.connect-port",
        "port",
        int_domain(0, 65535),
        lambda o, v: _fresh(o).connect("127.0.0.1", v),
        try_valid=False,
    ),
    Site(
        "Socket.assign-fd",
        "fd",
        int_domain(0, INT_MAX),
        lambda o, v: Socket().assign("v4", v),
        try_valid=False,  # a valid number may be any descriptor of ours
    ),
    Site(
        "Socket.receive-flags",
        "flags",
        _RECEIVE_FLAGS,
        _receive,
        _pending,
    ),
    Site(
        "Socket.send-flags",
        "flags",
        flags_domain(_SEND_BITS),
        lambda o, v: o.a.send(b"z", v),
        _pending,
    ),
    Site(
        "Socket.receive_some-max_bytes",
        "max_bytes",
        int_domain(1, INT_MAX, none=True),
        lambda o, v: o.b.receive_some(v),
        _pending,
    ),
    Site(
        "Socket.shutdown-what",
        "what",
        choice_domain("receive", "send", "both"),
        lambda o, v: o.a.shutdown(v),
    ),
    Site(
        "Socket.io_control-command",
        "command",
        choice_domain("bytes_readable"),
        lambda o, v: o.b.io_control(v),
    ),
    Site(
        "Socket.wait-kind",
        "kind",
        choice_domain("read", "write"),  # "error" would wait
        lambda o, v: o.b.wait(v),
    ),
    Site(
        "Socket.open-family",
        "family",
        lambda v: (
            "ok" if v in ("v4", "v6") else ("value" if isinstance(v, str) else "type")
        ),
        lambda o, v: o.stack.enter_context(_closing(_opened(v))),
    ),
    Site(
        "Scanner-max_record_size",
        "max_record_size",
        int_domain(1, sys.maxsize),
        lambda o, v: stream.Scanner(o.b, max_record_size=v),
    ),
    Site(
        "Scanner-buffer_size_hint",
        "buffer_size_hint",
        int_domain(1, INT_MAX),
        lambda o, v: stream.Scanner(o.b, buffer_size_hint=v),
    ),
    Site(
        "Scanner-max_separator_size",
        "max_separator_size",
        int_domain(1, INT_MAX, none=True),
        lambda o, v: stream.Scanner(o.b, re.compile(rb"\r?\n"), max_separator_size=v),
    ),
    Site(
        "stream.read_at_least-minimum",
        "minimum",
        int_domain(0, math.inf),
        lambda o, v: stream.read_at_least(o.b, bytearray(4), v),
        _pending,
        try_valid=False,  # more than the 4 pending bytes would wait
    ),
    Site(
        "send_file-offset",
        "offset",
        int_domain(0, 2**63 - 2),  # offset + size (1) is an off_t too
        lambda o, v: o.a.send_file(_zero_file(o), v, 1),
        joined=("size_in_bytes",),
    ),
    Site(
        "send_file-size_in_bytes",
        "size_in_bytes",
        int_domain(0, 2**63 - 1),
        lambda o, v: o.a.send_file(_zero_file(o), 0, v),
    ),
    Site(
        "send_file-n_number_of_bytes_per_send",
        "n_number_of_bytes_per_send",
        int_domain(1, INT_MAX, none=True),
        lambda o, v: o.a.send_file(_zero_file(o), 0, 1, n_number_of_bytes_per_send=v),
    ),
    Site(
        "send_file-file",
        "file",
        int_domain(0, INT_MAX),
        lambda o, v: o.a.send_file(v, 0, 1),
        try_valid=False,  # a valid number may be any descriptor of ours
    ),
    Site(
        "Address.with_scope_id",
        "scope_id",
        int_domain(0, 2**32 - 1),
        lambda o, v: Address("fe80::1").with_scope_id(v),
    ),
    Site(
        "ip.dial-happy_eyeballs_delay",
        "happy_eyeballs_delay",
        _delay_domain,
        lambda o, v: ip.dial("127.0.0.1", 9, happy_eyeballs_delay=v),
        try_valid=False,
    ),
    Site(
        "ip.dial-service",
        "service",
        _service_domain,
        lambda o, v: ip.dial("127.0.0.1", v),
        try_valid=False,
    ),
]


def _zero_file(o: Objects) -> BinaryIO:
    """A file of one byte, ``b"f"``, closed with the example."""
    # Closed by the example's ExitStack.
    file = o.stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
    file.write(b"f")
    file.flush()
    return file


class _Small(enum.IntEnum):
    one = 1


wild_values = st.one_of(
    st.sampled_from(
        [
            -(2**63) - 1,
            -(2**31) - 1,
            -(2**31),
            -1,
            0,
            1,
            2,
            127,
            128,
            32767,
            32768,
            65535,
            65536,
            2**31 - 1,
            2**31,
            2**32,
            2**32 + 3,
            2**63 - 1,
            2**63,
            2**64,
            2**70,
        ]
    ),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["read", "write", "v4", "v6", "send", "both", "keep_alive"]),
    st.binary(max_size=4),
    st.lists(st.sampled_from([*sorted(_MESSAGE_NAMES), "bogus", 1]), max_size=3),
    st.sampled_from(
        [
            MessageFlag.peek,
            socket.MSG_TRUNC,
            socket.MSG_ERRQUEUE,
            socket.MSG_WAITALL,
            socket.MSG_MORE,
            socket.MSG_DONTWAIT,
            _Small.one,
            1.0,
            1 + 0j,
            object(),
        ]
    ),
)


@pytest.mark.parametrize("site", SITES, ids=[s.id for s in SITES])
@PROPERTY
@given(value=wild_values)
async def test_every_argument_keeps_to_its_domain(site: Site, value: Any) -> None:
    verdict = site.domain(value)
    event(verdict)
    if verdict == "ok" and not site.try_valid:
        return
    with _fds_kept():
        a, b = await socket_pair()
        async with a, b:
            await stream.write_all(a, b"4444")
            await b.wait("read")
            o = Objects(a, b, Acceptor())
            with o.stack:
                o.stack.callback(o.acceptor.close)
                o.acceptor.open("v4")
                before = site.state(o)
                got = await _call(lambda: site.call(o, value))
                if verdict == "ok":
                    assert not isinstance(got, (TypeError, ValueError)), (
                        f"{value!r} is valid for {site.name}, got {got!r}"
                    )
                    return
                assert got is not None, f"{value!r} was taken as {site.name}"
                _assert_refusal(got, verdict, site.name, *site.joined)
                assert site.state(o) == before


# -- Scanner against bytes.split --------------------------------------------------


class _Chunks:
    """A stream that returns the given chunks, then the end."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    async def read_some(self, buf: Any) -> int:
        await trio.lowlevel.checkpoint()
        while self._chunks and not self._chunks[0]:
            self._chunks.pop(0)
        if not self._chunks:
            raise EndOfFile
        with memoryview(buf) as view:
            head = self._chunks[0][: view.nbytes]
            view[: len(head)] = head
        self._chunks[0] = self._chunks[0][len(head) :]
        return len(head)


def split_oracle(
    data: bytes,
    separator: bytes,
    limit: int,
    trim: bool | bytes,
    fields: bytes | None,
) -> tuple[list[bytes | list[bytes]], bool]:
    """The records of the whole ``data``, by ``bytes.split``; True if one
    broke the limit (its terminator counted) before the end."""
    parts = data.split(separator)
    final = parts.pop()
    out: list[bytes | list[bytes]] = []
    records = [(p, True) for p in parts] + ([(final, False)] if final else [])
    for record, terminated in records:
        if len(record) + (len(separator) if terminated else 0) > limit:
            return out, True
        if trim is True:
            record = record.strip(b" \f\n\r\t\v")
        elif trim:
            record = record.strip(trim)
        if fields is None:
            out.append(record)
        else:
            out.append(record.split(fields) if record else [])
    return out, False


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[bytes, list[bytes], bytes]:
    alphabet = b"ab;\n "
    separator = draw(
        st.binary(min_size=1, max_size=3).map(
            lambda raw: bytes(alphabet[c % len(alphabet)] for c in raw)
        )
    )
    data = bytes(draw(st.lists(st.sampled_from(alphabet), max_size=80)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    bounds = [0, *cuts, len(data)]
    return data, [data[i:j] for i, j in itertools.pairwise(bounds)], separator


@PROPERTY
@given(
    split_cases(),
    st.integers(1, 100),
    st.integers(1, 9),
    st.sampled_from([False, True, b"a", b" ;"]),
    st.sampled_from([None, b" ", b"a", b";;"]),
)
async def test_Scanner_agrees_with_bytes_split(
    case: tuple[bytes, list[bytes], bytes],
    limit: int,
    hint: int,
    trim: bool | bytes,
    fields: bytes | None,
) -> None:
    data, chunks, separator = case
    assume(fields is None or fields != separator)
    scanner: Any = stream.Scanner(
        _Chunks(chunks),
        separator,
        max_record_size=limit,
        buffer_size_hint=hint,
        trim_record=trim,
        field_separator=fields,
    )
    got: list[Any] = []
    broke = False
    try:
        async for record in scanner:
            got.append(record)
    except OSError as exc:
        assert exc.errno == errno.EMSGSIZE
        broke = True
    assert (got, broke) == split_oracle(data, separator, limit, trim, fields)


# -- buffers of every kind against the buffer protocol ----------------------------


@dataclass
class BufferCase:
    """A buffer-ish object, made fresh, and what the buffer protocol says of it."""

    label: str
    make: Callable[[], Any]


def _released_view() -> memoryview:
    view = memoryview(bytearray(b"gone"))
    view.release()
    return view


def _mmap(size: int) -> mmap.mmap:
    m = mmap.mmap(-1, max(size, 1))
    m.write(bytes(range(65, 65 + min(size, 26))).ljust(max(size, 1), b"m"))
    return m


BUFFER_CASES = [
    BufferCase("bytes", lambda: b"hello"),
    BufferCase("empty-bytes", lambda: b""),
    BufferCase("bytearray", lambda: bytearray(b"hello world")),
    BufferCase("memoryview", lambda: memoryview(bytearray(b"abcdef"))),
    BufferCase("readonly-view", lambda: memoryview(b"abcdef")),
    BufferCase("sliced-view", lambda: memoryview(bytearray(b"abcdefgh"))[2:6]),
    BufferCase("strided-view", lambda: memoryview(bytearray(b"abcdefgh"))[::2]),
    BufferCase("reversed-view", lambda: memoryview(bytearray(b"abcdefgh"))[::-1]),
    BufferCase("2d-view", lambda: memoryview(bytearray(b"abcdefgh")).cast("B", (2, 4))),
    BufferCase("2d-strided", lambda: memoryview(bytearray(16)).cast("B", (4, 4))[::2]),
    BufferCase("int-view", lambda: memoryview(bytearray(8)).cast("i")),
    BufferCase("released-view", _released_view),
    BufferCase("array-B", lambda: array.array("B", b"xyz")),
    BufferCase("array-h", lambda: array.array("h", [1, -2, 3])),
    BufferCase("array-d", lambda: array.array("d", [1.5])),
    BufferCase("empty-array", lambda: array.array("i")),
    BufferCase("mmap", lambda: _mmap(12)),
    BufferCase("ctypes-char", lambda: ctypes.create_string_buffer(b"ctypes", 6)),
    BufferCase("ctypes-int", lambda: (ctypes.c_int * 3)(1, 2, 3)),
    BufferCase("ctypes-scalar", lambda: ctypes.c_uint16(0x4142)),
    BufferCase("picklebuffer", lambda: pickle.PickleBuffer(bytearray(b"pickled"))),
    BufferCase("str", lambda: "text"),
    BufferCase("int", lambda: 5),
    BufferCase("list", lambda: [1, 2]),
    BufferCase("none", lambda: None),
]


def buffer_oracle(value: object, *, writable: bool) -> tuple[Verdict, bytes]:
    """What SPEC §13 says of ``value`` as a buffer, and its bytes if usable."""
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        return "type", b""
    except ValueError:
        return "value", b""  # released
    with view:
        if not view.c_contiguous or view.ndim > 1 or (writable and view.readonly):
            return "type", b""
        return "ok", view.tobytes()


@dataclass(frozen=True)
class BufferSite:
    """One buffer argument: the call, and what the peer gets for ``raw``."""

    id: str
    name: str
    writable: bool
    call: Callable[[Objects, Any], object]
    sent: Callable[[bytes], bytes] = lambda raw: raw
    none_is_empty: bool = False  # ``None`` means no buffer (send_file's head)


WRITE_SITES = [
    BufferSite("write_some", "data", False, lambda o, v: o.a.write_some(v)),
    BufferSite("send", "data", False, lambda o, v: o.a.send(v)),
    BufferSite("send_all", "data", False, lambda o, v: o.a.send_all(v)),
    BufferSite(
        "stream.write_all", "data", False, lambda o, v: stream.write_all(o.a, v)
    ),
    BufferSite(
        "stream.write_all-list",
        "data",
        False,
        lambda o, v: stream.write_all(o.a, [b"<", v, b">"]),
        lambda raw: b"<" + raw + b">",
    ),
    BufferSite(
        "stream.write_at_least",
        "data",
        False,
        lambda o, v: stream.write_at_least(o.a, v, 2**20),
    ),
    BufferSite(
        "send_file-head",
        "head",
        False,
        lambda o, v: o.a.send_file(_zero_file(o), 0, 1, head=v),
        lambda raw: raw + b"f",
        none_is_empty=True,
    ),
]
READ_SITES = [
    BufferSite("read_some", "buf", True, lambda o, v: o.b.read_some(v)),
    BufferSite("receive", "buf", True, lambda o, v: o.b.receive(v)),
    BufferSite("receive-peek", "buf", True, lambda o, v: o.b.receive(v, ["peek"])),
    BufferSite(
        "stream.read_at_least",
        "buf",
        True,
        lambda o, v: stream.read_at_least(o.b, v, 1),
    ),
]
INCOMING = b"INCOMING-DATA-" * 3


def _release_and_check(value: object) -> None:
    """No view of ``value`` is left: a bytearray resizes, an mmap closes."""
    if isinstance(value, bytearray):
        value.append(0)
        value.pop()
    elif isinstance(value, mmap.mmap):
        value.close()  # BufferError while a view is exported
    elif isinstance(value, memoryview):
        value.release()  # BufferError while a view of it is exported


@pytest.mark.parametrize(
    "site", WRITE_SITES + READ_SITES, ids=[s.id for s in WRITE_SITES + READ_SITES]
)
@pytest.mark.parametrize("case", BUFFER_CASES, ids=[c.label for c in BUFFER_CASES])
async def test_every_buffer_kind_against_the_buffer_protocol(
    site: BufferSite, case: BufferCase
) -> None:
    value = case.make()
    verdict: Verdict
    if value is None and site.none_is_empty:
        verdict, raw = "ok", b""
    else:
        verdict, raw = buffer_oracle(value, writable=site.writable)
    with _fds_kept():
        a, b = await socket_pair()
        async with a, b:
            o = Objects(a, b, Acceptor())
            with o.stack:
                if site.writable:
                    await stream.write_all(a, INCOMING)
                    await b.wait("read")
                result, got = await _result(lambda: site.call(o, value))
                if verdict != "ok":
                    assert got is not None, f"{case.label} taken as {site.name}"
                    _assert_refusal(got, verdict, site.name)
                elif site.writable:
                    assert got is None, f"{case.label} refused: {got!r}"
                    assert result == min(len(raw), len(INCOMING))
                    with memoryview(value) as view:
                        filled = view.tobytes()
                    assert filled[: len(INCOMING)] == INCOMING[: len(raw)]
                else:
                    assert got is None, f"{case.label} refused: {got!r}"
                    expected = site.sent(raw)
                    arrived = bytearray(len(expected))
                    with trio.fail_after(5):
                        await stream.read_all(b, arrived)
                    assert arrived == expected
                    assert b.io_control("bytes_readable") == 0
                _release_and_check(value)
