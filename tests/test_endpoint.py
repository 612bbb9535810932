"""Tests for trio_emtcp._endpoint: ip.tostring and ip.toendpoint."""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_emtcp._address import Address
from trio_emtcp._endpoint import toendpoint, tostring

LO_INDEX = socket.if_nametoindex("lo")


@pytest.mark.parametrize(
    ("address", "port", "text"),
    [
        ("1.2.3.4", 80, "1.2.3.4:80"),
        ("0.0.0.0", 0, "0.0.0.0:0"),
        ("255.255.255.255", 65535, "255.255.255.255:65535"),
        ("::1", 80, "[::1]:80"),
        ("::2:3", 8080, "[::0.2.0.3]:8080"),
        ("::ffff:1.2.3.4", 1, "[::ffff:1.2.3.4]:1"),
        ("fe80::1%lo", 80, "[fe80::1%lo]:80"),
        ("2001:db8::1%5", 443, "[2001:db8::1%5]:443"),
    ],
)
def test_tostring_with_port(address: str, port: int, text: str) -> None:
    assert tostring(Address(address), port) == text


@pytest.mark.parametrize("address", ["1.2.3.4", "::2:3", "fe80::1%lo"])
def test_tostring_without_port_is_str(address: str) -> None:
    a = Address(address)
    assert tostring(a) == str(a)
    assert tostring(a, None) == str(a)


def test_tostring_refuses_a_non_address() -> None:
    with pytest.raises(TypeError, match=r"^addr: expected an ip\.Address, got str$"):
        tostring("1.2.3.4", 80)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("port", "error", "message"),
    [
        (70000, ValueError, r"^port: must be in 0\.\.65535, got 70000$"),
        (-1, ValueError, r"^port: must be in 0\.\.65535, got -1$"),
        ("80", TypeError, r"^port: expected an int, got str$"),
        (True, TypeError, r"^port: expected an int, got bool$"),
    ],
)
def test_tostring_refuses_bad_ports(
    port: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        tostring(Address("1.2.3.4"), port)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "address", "port"),
    [
        ("1.2.3.4:80", "1.2.3.4", 80),
        ("0.0.0.0:0", "0.0.0.0", 0),
        ("127.0.0.1:65535", "127.0.0.1", 65535),
        ("[::1]:80", "::1", 80),
        ("[::]:1", "::", 1),
        ("[2001:DB8::0:1]:443", "2001:db8::1", 443),
        ("[::ffff:1.2.3.4]:80", "::ffff:1.2.3.4", 80),
        ("[fe80::1%lo]:80", "fe80::1%lo", 80),
        (f"[fe80::1%{LO_INDEX}]:80", "fe80::1%lo", 80),
        ("[2001:db8::1%5]:80", "2001:db8::1%5", 80),
    ],
)
def test_toendpoint_parses(text: str, address: str, port: int) -> None:
    a, p = toendpoint(text)
    assert (a, p) == (Address(address), port)
    assert str(a) == address
    assert type(p) is int


def _quoted(text: str) -> str:
    return re.escape(repr(text))


NOT_NUMERIC = (
    r" is not a numeric IP address; resolve host names first with "
    r"ip\.tcp\.get_address_info\(\) or use ip\.dial\(\)$"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.2.3.4", r"^text: expected 'host:port', got '1\.2\.3\.4'$"),
        ("", r"^text: expected 'host:port', got ''$"),
        ("1.2.3.4:", r"^text: missing port in '1\.2\.3\.4:'$"),
        ("[::1]:", r"^text: missing port in '\[::1\]:'$"),
        (
            "1.2.3.4:080",
            r"^text: port must be decimal digits without leading "
            r"zeros, got '080'$",
        ),
        ("1.2.3.4:00", r"^text: port must be .*, got '00'$"),
        ("1.2.3.4:+80", r"^text: port must be .*, got '\+80'$"),
        ("1.2.3.4: 80", r"^text: port must be .*, got ' 80'$"),
        ("1.2.3.4:80 ", r"^text: port must be .*, got '80 '$"),
        ("1.2.3.4:8_0", r"^text: port must be .*, got '8_0'$"),
        ("1.2.3.4:0x50", r"^text: port must be .*, got '0x50'$"),
        ("1.2.3.4:http", r"^text: port must be .*, got 'http'$"),
        ("1.2.3.4:\u0668\u0660", r"^text: port must be .*, got '\u0668\u0660'$"),
        ("[::1]", r"^text: expected ':port' after '\]', got '\[::1\]'$"),
        ("1.2.3.4:65536", r"^text: port must be in 0\.\.65535, got 65536$"),
        ("1.2.3.4:99999999999", r"^text: port must be in 0\.\.65535, got 99999999999$"),
        (
            "::1:80",
            r"^text: an IPv6 address must be in brackets, as in "
            r"'\[::1\]:80', got '::1:80'$",
        ),
        ("fe80::1%lo:80", r"^text: an IPv6 address must be in brackets, .*$"),
        (
            "[1.2.3.4]:80",
            r"^text: only an IPv6 address may be in brackets, "
            r"got '\[1\.2\.3\.4\]:80'$",
        ),
        ("[::1:80", r"^text: unbalanced brackets in '\[::1:80'$"),
        ("::1]:80", r"^text: unbalanced brackets in '::1\]:80'$"),
        ("[::1%[0]:80", r"^text: unbalanced brackets in '\[::1%\[0\]:80'$"),
        ("[fe80::1%lo]]:80", r"^text: unbalanced brackets in "),
        ("[[::1]]:80", rf"^text: {_quoted('[::1]')}{NOT_NUMERIC}"),
        ("[]:80", rf"^text: ''{NOT_NUMERIC}"),
        (":80", rf"^text: ''{NOT_NUMERIC}"),
        ("localhost:80", rf"^text: 'localhost'{NOT_NUMERIC}"),
        ("[localhost]:80", rf"^text: 'localhost'{NOT_NUMERIC}"),
        ("1.2.3:80", rf"^text: '1\.2\.3'{NOT_NUMERIC}"),
        ("01.2.3.4:80", rf"^text: '01\.2\.3\.4'{NOT_NUMERIC}"),
        (
            "[fe80::1%99999999999]:80",
            r"^text: scope id out of range 0\.\.4294967295 in 'fe80::1%99999999999'$",
        ),
    ],
)
def test_toendpoint_refuses_bad_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        toendpoint(text)


@pytest.mark.parametrize(
    ("value", "type_name"), [(b"1.2.3.4:80", "bytes"), (None, "NoneType")]
)
def test_toendpoint_refuses_a_non_str(value: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"^text: expected a str, got {type_name}$"):
        toendpoint(value)  # type: ignore[arg-type]


addresses = st.one_of(
    st.ip_addresses(v=4).map(Address),
    st.builds(
        lambda a, scope: Address(a).with_scope_id(scope),
        st.ip_addresses(v=6),
        st.one_of(st.just(0), st.just(LO_INDEX), st.integers(0, 0xFFFF_FFFF)),
    ),
)
ports = st.integers(0, 65535)


@settings(deadline=None)
@given(addresses, ports)
def test_toendpoint_inverts_tostring(a: Address, port: int) -> None:
    text = tostring(a, port)
    assert toendpoint(text) == (a, port)
    assert tostring(*toendpoint(text)) == text
