"""Tests for trio_emtcp._address: ip.Address and the argument checks."""

from __future__ import annotations

import copy
import enum
import ipaddress
import itertools
import pickle
import re
import socket

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trio_emtcp._address import Address, address_arg, family_arg
from trio_emtcp._args import port_arg

LO_NAME = "lo"
LO_INDEX = socket.if_nametoindex(LO_NAME)
# An interface index that no test machine has, so it prints as a number.
NO_SUCH_INDEX = 4_000_000_000

V6_ONLY = [
    "is_link_local",
    "is_multicast_global",
    "is_multicast_link_local",
    "is_multicast_node_local",
    "is_multicast_org_local",
    "is_multicast_site_local",
    "is_site_local",
    "is_v4_mapped",
    "scope_id",
]
V6_PREDICATES = [name for name in V6_ONLY if name != "scope_id"]


def _pton(family: int, text: str) -> bytes | None:
    try:
        return socket.inet_pton(family, text)
    except (OSError, ValueError):
        return None


def _interface_exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


# -- constructors ---------------------------------------------------------


def test_Address_default_is_ipv4_any() -> None:
    a = Address()
    assert str(a) == "0.0.0.0"
    assert a.is_v4
    assert a == Address.any_v4()


def test_Address_none_is_not_the_default() -> None:
    with pytest.raises(TypeError, match=r"^address: expected a str, .* got NoneType$"):
        Address(None)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("make", "text", "family"),
    [
        (Address.any_v4, "0.0.0.0", socket.AF_INET),
        (Address.any_v6, "::", socket.AF_INET6),
        (Address.loopback_v4, "127.0.0.1", socket.AF_INET),
        (Address.loopback_v6, "::1", socket.AF_INET6),
        (Address.broadcast_v4, "255.255.255.255", socket.AF_INET),
    ],
)
def test_Address_named_constructors(make: object, text: str, family: int) -> None:
    assert callable(make)
    a = make()
    assert isinstance(a, Address)
    assert str(a) == text
    assert a.family == family
    assert a == Address(text)


def test_Address_from_address_is_the_same_address() -> None:
    a = Address("fe80::1%5")
    assert Address(a) is a


# -- parsing and printing -------------------------------------------------

# (text, str(), scope id or None for IPv4)
PARSE_PRINT = [
    ("1.2.3.4", "1.2.3.4", None),
    ("0.0.0.0", "0.0.0.0", None),
    ("255.255.255.255", "255.255.255.255", None),
    ("::2:3", "::0.2.0.3", 0),
    ("::ffff:1.2.3.4", "::ffff:1.2.3.4", 0),
    ("::1.2.3.4", "::1.2.3.4", 0),
    ("::FFFF:102:304", "::ffff:1.2.3.4", 0),
    ("2001:DB8::0:1", "2001:db8::1", 0),
    ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 0),
    ("::", "::", 0),
    ("::1", "::1", 0),
    ("fe80::1%lo", "fe80::1%lo", LO_INDEX),
    (f"fe80::1%{LO_INDEX}", "fe80::1%lo", LO_INDEX),
    ("ff02::1%lo", "ff02::1%lo", LO_INDEX),
    ("ff12::1%lo", "ff12::1%lo", LO_INDEX),
    ("2001:db8::1%5", "2001:db8::1%5", 5),
    # Names are looked up only for (multicast) link-local addresses.
    ("2001:db8::1%lo", "2001:db8::1", 0),
    ("ff05::1%lo", "ff05::1", 0),
    # atoi(): leading digits, the rest ignored; nothing there is 0.
    (f"fe80::1%{NO_SUCH_INDEX}", f"fe80::1%{NO_SUCH_INDEX}", NO_SUCH_INDEX),
    ("2001:db8::1%7abc", "2001:db8::1%7", 7),
    ("2001:db8::1%007", "2001:db8::1%7", 7),
    ("2001:db8::1%00000000000000000005", "2001:db8::1%5", 5),
    ("::1%", "::1", 0),
    ("::1%-1", "::1", 0),
    ("::1%4294967295", "::1%4294967295", 0xFFFF_FFFF),
    ("fe80::1%lo%x", "fe80::1", 0),
]


@pytest.mark.parametrize(("text", "printed", "scope"), PARSE_PRINT)
def test_Address_parse_print_table(text: str, printed: str, scope: int | None) -> None:
    a = Address(text)
    assert str(a) == printed
    if scope is None:
        assert a.family == socket.AF_INET
    else:
        assert a.family == socket.AF_INET6
        assert a.scope_id == scope


def test_Address_unknown_interface_name_is_scope_zero() -> None:
    if _interface_exists("eth99"):  # pragma: no cover
        pytest.skip("this machine has an interface named eth99")
    a = Address("fe80::1%eth99")
    assert a.scope_id == 0
    assert str(a) == "fe80::1"
    assert a == Address("fe80::1")


def test_Address_link_local_round_trip_by_name() -> None:
    a = Address("fe80::1%lo")
    assert Address(str(a)) == a
    assert a != Address("fe80::1")


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3",
        "01.2.3.4",
        "256.1.1.1",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4\n",
        "localhost",
        "",
        "1.2.3.4%1",
        "1.2.3.4.5",
        "0x1.2.3.4",
        ":::",
        "::1::",
        "1:2:3:4:5:6:7:8:9",
        "[::1]",
        "::g",
        "%lo",
        "fe80::1 %lo",
        "1.2.3.4\x00",
        "::1\x00",
        "\ud800",
        "\u0661.\u0662.\u0663.\u0664",  # Arabic-Indic digits
    ],
)
def test_Address_rejects_invalid_text(text: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^address: {re.escape(repr(text))} is not a valid IP address$",
    ):
        Address(text)


@pytest.mark.parametrize(
    "text", ["::1%4294967296", "fe80::1%99999999999", "::1%" + "9" * 5000]
)
def test_Address_rejects_scope_id_out_of_range(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"^address: scope id out of range 0\.\.4294967295 in '"
    ):
        Address(text)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(1, "int"), (b"1.2.3.4", "bytes"), (1.5, "float"), (["::1"], "list")],
)
def test_Address_rejects_other_types(value: object, type_name: str) -> None:
    with pytest.raises(
        TypeError,
        match=(
            r"^address: expected a str, an ip\.Address, an ipaddress\.IPv4Address "
            rf"or an ipaddress\.IPv6Address, got {type_name}$"
        ),
    ):
        Address(value)  # type: ignore[call-overload]


def test_Address_str_is_cached() -> None:
    a = Address("::2:3")
    assert str(a) is str(a)
    b = Address("fe80::1%lo")
    assert str(b) is str(b)


def test_Address_repr_round_trips() -> None:
    a = Address("fe80::1%lo")
    assert repr(a) == "Address('fe80::1%lo')"
    assert eval(repr(a), {"Address": Address}) == a
    assert repr(Address("1.2.3.4")) == "Address('1.2.3.4')"


# -- properties -----------------------------------------------------------


def test_Address_family_packed_and_version() -> None:
    v4 = Address("1.2.3.4")
    assert v4.family == socket.AF_INET
    assert v4.packed == b"\x01\x02\x03\x04"
    assert (v4.is_v4, v4.is_v6) == (True, False)
    v6 = Address("::ffff:1.2.3.4")
    assert v6.family == socket.AF_INET6
    assert v6.packed == bytes(10) + b"\xff\xff\x01\x02\x03\x04"
    assert (v6.is_v4, v6.is_v6) == (False, True)


@pytest.mark.parametrize(
    ("text", "loopback", "multicast", "unspecified"),
    [
        ("127.0.0.1", True, False, False),
        ("127.255.0.9", True, False, False),
        ("126.255.255.255", False, False, False),
        ("128.0.0.0", False, False, False),
        ("224.0.0.1", False, True, False),
        ("239.255.255.255", False, True, False),
        ("223.255.255.255", False, False, False),
        ("240.0.0.0", False, False, False),
        ("0.0.0.0", False, False, True),
        ("0.0.0.1", False, False, False),
        ("::1", True, False, False),
        ("::1%3", True, False, False),
        ("::2", False, False, False),
        ("::ffff:127.0.0.1", False, False, False),
        ("ff02::1", False, True, False),
        ("ff00::", False, True, False),
        ("fe80::1", False, False, False),
        ("::", False, False, True),
        ("::%3", False, False, True),
        ("::ffff:0.0.0.0", False, False, False),
    ],
)
def test_Address_any_family_predicates(
    text: str, loopback: bool, multicast: bool, unspecified: bool
) -> None:
    a = Address(text)
    assert (a.is_loopback, a.is_multicast, a.is_unspecified) == (
        loopback,
        multicast,
        unspecified,
    )


@pytest.mark.parametrize(
    ("text", "true"),
    [
        ("fe80::1", {"is_link_local"}),
        ("febf:ffff::1", {"is_link_local"}),
        ("fec0::1", {"is_site_local"}),
        ("feff::1", {"is_site_local"}),
        ("fe7f::1", set()),
        ("fe40::1", set()),
        ("::ffff:1.2.3.4", {"is_v4_mapped"}),
        ("::ffff:0.0.0.0", {"is_v4_mapped"}),
        ("::fffe:1.2.3.4", set()),
        ("1::ffff:1.2.3.4", set()),
        ("::1.2.3.4", set()),
        ("ff01::1", {"is_multicast_node_local"}),
        ("ff02::1", {"is_multicast_link_local"}),
        ("ff05::1", {"is_multicast_site_local"}),
        ("ff08::1", {"is_multicast_org_local"}),
        ("ff0e::1", {"is_multicast_global"}),
        ("ff32::1", {"is_multicast_link_local"}),  # flag nibble ignored
        ("ff1e::1", {"is_multicast_global"}),
        ("ff03::1", set()),
        ("ff0f::1", set()),
        ("fe02::1", set()),  # scope nibble 2, but not multicast
        ("fe0e::1", set()),
        ("2001:db8::1", set()),
        ("::", set()),
    ],
)
def test_Address_v6_predicates(text: str, true: set[str]) -> None:
    a = Address(text)
    assert {name for name in V6_PREDICATES if getattr(a, name)} == true


@pytest.mark.parametrize("name", V6_ONLY)
def test_Address_v6_only_properties_refuse_v4(name: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^{name}: needs an IPv6 address, got 1\.2\.3\.4$"
    ):
        getattr(Address("1.2.3.4"), name)


def test_Address_is_immutable() -> None:
    a = Address("fe80::1%lo")
    with pytest.raises(AttributeError):
        a.scope_id = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.packed = b"1234"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.comment = "x"  # type: ignore[attr-defined]
    assert not hasattr(a, "__dict__")
    assert a.scope_id == LO_INDEX


# -- conversions ----------------------------------------------------------


def test_Address_to_v6_maps_v4() -> None:
    assert Address("1.2.3.4").to_v6() == Address("::ffff:1.2.3.4")
    assert str(Address("0.0.0.0").to_v6()) == "::ffff:0.0.0.0"


def test_Address_to_v6_refuses_v6() -> None:
    with pytest.raises(ValueError, match=r"^to_v6: needs an IPv4 address, got ::1$"):
        Address("::1").to_v6()


def test_Address_to_v4_unmaps() -> None:
    assert Address("::ffff:1.2.3.4").to_v4() == Address("1.2.3.4")
    assert Address("::ffff:1.2.3.4%9").to_v4() == Address("1.2.3.4")


@pytest.mark.parametrize("text", ["1.2.3.4", "::1.2.3.4", "::1", "::fffe:1.2.3.4"])
def test_Address_to_v4_refuses_unmapped(text: str) -> None:
    with pytest.raises(
        ValueError,
        match=(
            r"^to_v4: needs an IPv4-mapped IPv6 address, "
            rf"got {re.escape(str(Address(text)))}$"
        ),
    ):
        Address(text).to_v4()


def test_Address_with_scope_id_returns_a_new_address() -> None:
    a = Address("2001:db8::1")
    b = a.with_scope_id(5)
    assert (a.scope_id, b.scope_id) == (0, 5)
    assert str(b) == "2001:db8::1%5"
    assert b.with_scope_id(0) == a
    assert a.with_scope_id(0xFFFF_FFFF).scope_id == 0xFFFF_FFFF


def test_Address_with_scope_id_prints_link_local_by_name() -> None:
    assert str(Address("fe80::1").with_scope_id(LO_INDEX)) == "fe80::1%lo"
    assert str(Address("fe80::1").with_scope_id(NO_SUCH_INDEX)) == (
        f"fe80::1%{NO_SUCH_INDEX}"
    )


def test_Address_with_scope_id_refuses_bad_arguments() -> None:
    a = Address("fe80::1")
    with pytest.raises(
        ValueError, match=r"^with_scope_id: needs an IPv6 address, got 1\.2\.3\.4$"
    ):
        Address("1.2.3.4").with_scope_id(1)
    with pytest.raises(TypeError, match=r"^scope_id: expected an int, got str$"):
        a.with_scope_id("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^scope_id: expected an int, got bool$"):
        a.with_scope_id(True)
    for bad in (-1, 0x1_0000_0000):
        with pytest.raises(
            ValueError, match=rf"^scope_id: must be in 0\.\.4294967295, got {bad}$"
        ):
            a.with_scope_id(bad)


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        (ipaddress.IPv4Address("1.2.3.4"), "1.2.3.4"),
        (ipaddress.IPv6Address("::2:3"), "::0.2.0.3"),
        (ipaddress.IPv6Address("fe80::1%lo"), "fe80::1%lo"),
        (ipaddress.IPv6Address(f"fe80::1%{LO_INDEX}"), "fe80::1%lo"),
        (ipaddress.IPv6Address("2001:db8::1%5"), "2001:db8::1%5"),
        (ipaddress.IPv6Address("2001:db8::1%lo"), "2001:db8::1"),
    ],
)
def test_Address_from_ipaddress(
    obj: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str
) -> None:
    assert Address(obj) == Address(text)
    assert str(Address(obj)) == text


def test_Address_to_ipaddress() -> None:
    assert Address("1.2.3.4").to_ipaddress() == ipaddress.IPv4Address("1.2.3.4")
    v6 = Address("::2:3").to_ipaddress()
    assert v6 == ipaddress.IPv6Address("::2:3")
    assert isinstance(v6, ipaddress.IPv6Address)
    assert v6.scope_id is None
    scoped = Address("fe80::1%lo").to_ipaddress()
    assert isinstance(scoped, ipaddress.IPv6Address)
    assert scoped.scope_id == str(LO_INDEX)  # numeric: names can change
    assert Address(scoped) == Address("fe80::1%lo")


# -- equality, ordering, hashing ------------------------------------------


def test_Address_equality() -> None:
    assert Address("1.2.3.4") == Address("1.2.3.4")
    assert Address("2001:DB8::1") == Address("2001:db8::1")
    assert Address("1.2.3.4") != Address("::ffff:1.2.3.4")
    assert Address("0.0.0.0") != Address("::")
    assert Address("fe80::1%lo") != Address("fe80::1")
    assert Address("fe80::1%1") == Address("fe80::1").with_scope_id(1)


def test_Address_equality_with_other_types() -> None:
    a = Address("1.2.3.4")
    assert a != "1.2.3.4"
    assert a != ipaddress.IPv4Address("1.2.3.4")
    assert a.__eq__("1.2.3.4") is NotImplemented


def test_Address_hash() -> None:
    same = {Address("::1"), Address("0::1"), Address("::0.0.0.1")}
    assert len(same) == 1
    assert hash(Address("2001:DB8::1%5")) == hash(Address("2001:db8::1%5"))
    assert len({Address("1.2.3.4"), Address("::ffff:1.2.3.4")}) == 2
    assert len({Address("fe80::1"), Address("fe80::1%1")}) == 2


def test_Address_ordering() -> None:
    ordered = [
        Address("0.0.0.0"),
        Address("1.2.3.4"),
        Address("255.255.255.255"),
        Address("::"),
        Address("::1"),
        Address("fe80::1"),
        Address("fe80::1%1"),
        Address("fe80::1%2"),
        Address("ff02::1"),
    ]
    assert sorted(reversed(ordered)) == ordered
    for lower, higher in itertools.pairwise(ordered):
        assert lower < higher
        assert lower <= higher
        assert higher > lower
        assert higher >= lower
        assert not higher < lower
        assert not lower >= higher
    a = Address("::1")
    assert a <= Address("::1")
    assert a >= Address("::1")
    assert not a < Address("::1")
    assert not a > Address("::1")


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_Address_ordering_with_other_types_is_a_TypeError(op: str) -> None:
    with pytest.raises(TypeError, match=r"not supported between instances of"):
        eval(f"a {op} b", {"a": Address("1.2.3.4"), "b": "1.2.3.4"})


def test_Address_pickle_and_copy() -> None:
    for a in (Address("1.2.3.4"), Address("fe80::1%lo"), Address("::2:3")):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            b = pickle.loads(pickle.dumps(a, protocol))
            assert b == a
            assert str(b) == str(a)
        assert copy.copy(a) == a
        assert copy.deepcopy(a) == a


# -- socket tuples --------------------------------------------------------


def test_Address_sockaddr() -> None:
    assert Address("1.2.3.4")._sockaddr(80) == ("1.2.3.4", 80)
    assert Address("::2:3")._sockaddr(0) == ("::0.2.0.3", 0, 0, 0)
    assert Address("fe80::1%lo")._sockaddr(443) == ("fe80::1", 443, 0, LO_INDEX)
    assert Address("2001:db8::1%5")._sockaddr(1) == ("2001:db8::1", 1, 0, 5)


@pytest.mark.parametrize(
    ("family", "sockaddr", "expected"),
    [
        (socket.AF_INET, ("1.2.3.4", 80), "1.2.3.4"),
        (socket.AF_INET6, ("::1", 80, 0, 0), "::1"),
        (socket.AF_INET6, ("fe80::1", 80, 0, LO_INDEX), "fe80::1%lo"),
        # The numeric scope id of the tuple wins over the text's.
        (socket.AF_INET6, ("fe80::1%lo", 80, 0, 0), "fe80::1"),
        (socket.AF_INET6, ("2001:db8::1%7", 80, 0, 5), "2001:db8::1%5"),
        (socket.AF_INET6, ("2001:db8::1%7", 80), "2001:db8::1%7"),
        (socket.AF_INET6, ("fe80::1%lo", 80), "fe80::1%lo"),
        (socket.AF_INET6, ("2001:DB8::1", 80), "2001:db8::1"),
    ],
)
def test_Address_from_sockaddr(
    family: int, sockaddr: tuple[object, ...], expected: str
) -> None:
    assert Address._from_sockaddr(family, sockaddr) == Address(expected)


@pytest.mark.parametrize(
    "text", ["1.2.3.4", "::2:3", "fe80::1%lo", "2001:db8::1%5", "::ffff:1.2.3.4"]
)
def test_Address_sockaddr_round_trip(text: str) -> None:
    a = Address(text)
    assert Address._from_sockaddr(a.family, a._sockaddr(1234)) == a


def test_Address_from_sockaddr_refuses_bad_input() -> None:
    with pytest.raises(
        ValueError, match=r"^family: expected AF_INET or AF_INET6, got 1$"
    ):
        Address._from_sockaddr(socket.AF_UNIX, ("/tmp/x",))
    with pytest.raises(
        ValueError, match=r"^sockaddr: '::1' is not a numeric AF_INET address$"
    ):
        Address._from_sockaddr(socket.AF_INET, ("::1", 0))
    with pytest.raises(
        ValueError, match=r"^sockaddr: '1\.2\.3\.4' is not a numeric AF_INET6 address$"
    ):
        Address._from_sockaddr(socket.AF_INET6, ("1.2.3.4", 0, 0, 0))


@pytest.fixture(params=[Address.loopback_v4(), Address.loopback_v6()], ids=str)
def loopback(request: pytest.FixtureRequest) -> Address:
    address: Address = request.param
    with socket.socket(address.family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address._sockaddr(0))
        except OSError:  # pragma: no cover
            pytest.skip(f"cannot bind to {address}")
    return address


def test_Address_round_trip_through_a_real_socket(loopback: Address) -> None:
    with socket.socket(loopback.family, socket.SOCK_STREAM) as listener:
        listener.bind(loopback._sockaddr(0))
        listener.listen()
        name = listener.getsockname()
        assert Address._from_sockaddr(listener.family, name) == loopback
        port = name[1]
        assert port != 0
        with socket.socket(loopback.family, socket.SOCK_STREAM) as client:
            client.connect(loopback._sockaddr(port))
            server, peer = listener.accept()
            with server:
                assert Address._from_sockaddr(server.family, peer) == loopback
                here = Address._from_sockaddr(client.family, client.getpeername())
                assert (here, client.getpeername()[1]) == (loopback, port)


# -- argument checks ------------------------------------------------------


def test_address_arg_accepts_addresses_and_literals() -> None:
    a = Address("::1")
    assert address_arg(a) is a
    assert address_arg("1.2.3.4") == Address("1.2.3.4")
    assert address_arg("fe80::1%lo") == Address("fe80::1%lo")


@pytest.mark.parametrize("text", ["localhost", "example.com", "1.2.3", ""])
def test_address_arg_refuses_host_names(text: str) -> None:
    with pytest.raises(
        ValueError,
        match=(
            rf"^addr: {re.escape(repr(text))} is not a numeric IP address; "
            r"resolve host names first with ip\.tcp\.get_address_info\(\) "
            r"or use ip\.dial\(\)$"
        ),
    ):
        address_arg(text, "addr")


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (1, "int"),
        (None, "NoneType"),
        (b"::1", "bytes"),
        (ipaddress.IPv4Address("1.2.3.4"), "IPv4Address"),
    ],
)
def test_address_arg_refuses_other_types(value: object, type_name: str) -> None:
    with pytest.raises(
        TypeError,
        match=(
            r"^address: expected an ip\.Address or a numeric IP string, "
            rf"got {type_name}$"
        ),
    ):
        address_arg(value)


def test_address_arg_refuses_scope_id_out_of_range() -> None:
    with pytest.raises(
        ValueError,
        match=r"^addr: scope id out of range 0\.\.4294967295 in '::1%4294967296'$",
    ):
        address_arg("::1%4294967296", "addr")


class _Port(enum.IntEnum):
    HTTP = 80


def test_port_arg_accepts_ports() -> None:
    assert port_arg(0) == 0
    assert port_arg(65535) == 65535
    port = port_arg(_Port.HTTP)
    assert port == 80
    assert type(port) is int


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(True, "bool"), ("80", "str"), (80.0, "float"), (None, "NoneType")],
)
def test_port_arg_refuses_other_types(value: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"^port: expected an int, got {type_name}$"):
        port_arg(value)


@pytest.mark.parametrize("value", [-1, 65536, 70000, 2**100])
def test_port_arg_refuses_out_of_range(value: int) -> None:
    with pytest.raises(
        ValueError, match=rf"^local_port: must be in 0\.\.65535, got {value}$"
    ):
        port_arg(value, "local_port")


def test_family_arg_accepts_names_and_addresses() -> None:
    assert family_arg("v4") == socket.AF_INET
    assert family_arg("v6") == socket.AF_INET6
    assert family_arg(Address("1.2.3.4")) == socket.AF_INET
    assert family_arg(Address("::ffff:1.2.3.4")) == socket.AF_INET6


@pytest.mark.parametrize("value", ["v5", "V4", "", "ipv4", "AF_INET"])
def test_family_arg_refuses_other_strings(value: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^family: must be 'v4', 'v6' or an ip\.Address, got {value!r}$",
    ):
        family_arg(value)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (int(socket.AF_INET), "int"),
        (socket.AF_INET6, "AddressFamily"),
        (None, "NoneType"),
    ],
)
def test_family_arg_refuses_other_types(value: object, type_name: str) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^how: expected 'v4', 'v6' or an ip\.Address, got {type_name}$",
    ):
        family_arg(value, "how")


# -- properties (hypothesis) ----------------------------------------------

address_like_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
)

addresses = st.one_of(
    st.ip_addresses(v=4).map(Address),
    st.builds(
        lambda a, scope: Address(a).with_scope_id(scope),
        st.ip_addresses(v=6),
        st.one_of(st.just(0), st.just(LO_INDEX), st.integers(0, 0xFFFF_FFFF)),
    ),
)


@settings(deadline=None)
@given(address_like_text)
def test_Address_agrees_with_inet_pton(text: str) -> None:
    assume("%" not in text)
    v6 = _pton(socket.AF_INET6, text)
    v4 = _pton(socket.AF_INET, text)
    if v6 is None and v4 is None:
        with pytest.raises(
            ValueError, match=r"^address: .* is not a valid IP address$"
        ):
            Address(text)
        return
    a = Address(text)
    family, packed = (socket.AF_INET6, v6) if v6 is not None else (socket.AF_INET, v4)
    assert packed is not None
    assert (a.family, a.packed) == (family, packed)
    assert str(a) == socket.inet_ntop(family, packed)


@settings(deadline=None)
@given(st.ip_addresses(v=6), st.integers(0, 0xFFFF_FFFF), st.sampled_from(["", "0"]))
def test_Address_reads_numeric_scope_ids(
    address: ipaddress.IPv6Address, scope: int, zeros: str
) -> None:
    # No interface is named by digits, so link-local addresses too end up
    # reading the number.
    a = Address(f"{address}%{zeros}{scope}")
    assert a.packed == address.packed
    assert a.scope_id == scope


@settings(deadline=None)
@given(addresses)
def test_Address_text_round_trip(a: Address) -> None:
    assert Address(str(a)) == a
    assert Address(a.to_ipaddress()) == a
    assert Address._from_sockaddr(a.family, a._sockaddr(0)) == a


@settings(deadline=None)
@given(addresses, addresses)
def test_Address_ordering_is_total_and_consistent(a: Address, b: Address) -> None:
    key_a = (a.is_v6, a.packed, a.scope_id if a.is_v6 else 0)
    key_b = (b.is_v6, b.packed, b.scope_id if b.is_v6 else 0)
    assert (a < b) == (key_a < key_b)
    assert (a <= b) == (key_a <= key_b)
    assert (a == b) == (key_a == key_b)
    if a == b:
        assert hash(a) == hash(b)
