"""Bad input (SPEC §4): wrong calls across the whole API, in one table.

Each row is a wrong call: a wrong type is a TypeError, a wrong value a
ValueError, a closed object or a refusal of the system an OSError, and the
message names the argument (checked with an anchored regex).  No row may
leave a descriptor open, and every ``async`` one is still a checkpoint.

The two properties of the text forms are already in the module tests and
are not repeated here: ``Address(text)`` agrees with ``inet_pton`` and
``inet_ntop`` on arbitrary strings (``test_Address_agrees_with_inet_pton``
in test_address.py), and ``ip.toendpoint(ip.tostring(a, p)) == (a, p)``
(``test_toendpoint_inverts_tostring`` in test_endpoint.py).
"""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import pytest
import trio
from trio.testing import assert_checkpoints

from trio_emtcp import ip, socket_pair, stream
from trio_emtcp.ip import Address, AddressInfoFlag
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import open_fds

T = TypeVar("T")


def _any(value: object) -> Any:
    """Hide a deliberately wrong argument from the type checker."""
    return value


def _with(arg: T, call: Callable[[Ctx, T], object]) -> Callable[[Ctx], object]:
    """A row's call that takes one more value (a loop variable, bound now)."""
    return lambda c: call(c, arg)


def _grid() -> memoryview:
    """A writable, C-contiguous, two-dimensional buffer (4 x 4 bytes)."""
    return memoryview(bytearray(16)).cast("B", (4, 4))


def _strided() -> memoryview:
    """A writable one-dimensional buffer that is not contiguous."""
    return memoryview(bytearray(8))[::2]


def _released() -> memoryview:
    view = memoryview(b"released")
    view.release()
    return view


@dataclass
class Ctx:
    """The objects the rows call into, fresh for each row."""

    a: Socket  # connected to b
    b: Socket
    unconnected: Socket  # open (IPv4), not connected
    closed: Socket  # never opened
    acceptor: Acceptor  # open (IPv4), not listening
    closed_acceptor: Acceptor
    scanner: stream.Scanner[bytes]  # on b
    file: BinaryIO  # a small file open for reading


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[Ctx]:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    a, b = await socket_pair()
    unconnected = Socket()
    acceptor = Acceptor()
    closed_acceptor = Acceptor()
    closed_acceptor.open("v4")
    closed_acceptor.close()
    async with a, b, unconnected, acceptor, closed_acceptor:
        unconnected.open("v4")
        acceptor.open("v4")
        with path.open("rb") as file:
            yield Ctx(
                a,
                b,
                unconnected,
                Socket(),
                acceptor,
                closed_acceptor,
                stream.Scanner(b),
                file,
            )


@dataclass(frozen=True)
class Row:
    """One wrong call and how it must be refused."""

    id: str
    call: Callable[[Ctx], object]
    exc: type[Exception]
    match: str


_EBADF = r"^\[Errno 9\] Bad file descriptor: the socket is closed$"
_PORT_70000 = r"^port: must be in 0\.\.65535, got 70000$"

ROWS = [
    # -- Socket: plain members ------------------------------------------------
    Row(
        "Socket.open-unknown-family",
        lambda c: Socket().open(_any("v5")),
        ValueError,
        r"^family: must be 'v4', 'v6' or an ip\.Address, got 'v5'$",
    ),
    Row(
        "Socket.open-int-family",
        lambda c: Socket().open(_any(4)),
        TypeError,
        r"^family: expected 'v4', 'v6' or an ip\.Address, got int$",
    ),
    Row(
        "Socket.bind-host-name",
        lambda c: c.unconnected.bind("localhost", 0),
        ValueError,
        r"^address: 'localhost' is not a numeric IP address; resolve host names "
        r"first with ip\.tcp\.get_address_info\(\) or use ip\.dial\(\)$",
    ),
    Row(
        "Socket.bind-negative-port",
        lambda c: c.unconnected.bind("127.0.0.1", -1),
        ValueError,
        r"^port: must be in 0\.\.65535, got -1$",
    ),
    Row(
        "Socket.bind-str-port",
        lambda c: c.unconnected.bind("127.0.0.1", _any("80")),
        TypeError,
        r"^port: expected an int, got str$",
    ),
    Row(
        "Socket.bind-other-family",
        lambda c: c.unconnected.bind("::1", 0),
        ValueError,
        r"^address: ::1 is not an IPv4 address, and the socket is IPv4$",
    ),
    Row(
        "Socket.bind-bytes-address",
        lambda c: c.unconnected.bind(_any(b"127.0.0.1"), 0),
        TypeError,
        r"^address: expected an ip\.Address or a numeric IP string, got bytes$",
    ),
    Row(
        "Socket.shutdown-unknown",
        lambda c: c.a.shutdown(_any("sideways")),
        ValueError,
        r"^what: expected one of 'receive', 'send', 'both', got 'sideways'$",
    ),
    Row(
        "Socket.io_control-unknown",
        lambda c: c.a.io_control(_any("bytes_writable")),
        ValueError,
        r"^command: expected one of 'bytes_readable', got 'bytes_writable'$",
    ),
    Row(
        "Socket.assign-negative-fd",
        lambda c: Socket().assign("v4", -1),
        ValueError,
        r"^fd: must be in 0\.\.2147483647, got -1$",
    ),
    Row(
        "Socket.assign-str-fd",
        lambda c: Socket().assign("v4", _any("3")),
        TypeError,
        r"^fd: expected an int file descriptor, got str$",
    ),
    # -- options --------------------------------------------------------------
    Row(
        "Socket.set_option-unknown",
        lambda c: c.a.set_option("nodelay", True),
        ValueError,
        r"^name: unknown option 'nodelay'; known options: debug, do_not_route, "
        r"keep_alive, keep_alive_count, keep_alive_idle, keep_alive_interval, "
        r"linger, not_sent_low_watermark, out_of_band_inline, "
        r"receive_buffer_size, receive_low_watermark, send_buffer_size, "
        r"send_low_watermark, tcp_no_delay, user_timeout, v6_only$",
    ),
    Row(
        "Socket.set_option-int-for-bool",
        lambda c: c.a.set_option("tcp_no_delay", 1),
        TypeError,
        r"^value: tcp_no_delay expects a bool, got int$",
    ),
    Row(
        "Socket.set_option-negative-size",
        lambda c: c.a.set_option("send_buffer_size", -1),
        ValueError,
        r"^value: send_buffer_size must be in 0\.\.2147483647 bytes, got -1$",
    ),
    Row(
        "Socket.set_option-linger-without-timeout",
        lambda c: c.a.set_option("linger", True),
        TypeError,
        r"^timeout: linger needs a timeout in seconds: "
        r"set_option\('linger', enabled, timeout\)$",
    ),
    Row(
        "Socket.set_option-linger-negative-timeout",
        lambda c: c.a.set_option("linger", True, -5),
        ValueError,
        r"^timeout: linger must be in 0\.\.2147483647 seconds, got -5$",
    ),
    Row(
        "Socket.set_option-timeout-elsewhere",
        lambda c: c.a.set_option("keep_alive", True, 5),
        TypeError,
        r"^timeout: only the linger option takes one, not 'keep_alive'$",
    ),
    Row(
        "Socket.get_option-int-name",
        lambda c: c.a.get_option(_any(5)),
        TypeError,
        r"^name: expected an option name \(str\), got int$",
    ),
    Row(
        "Acceptor.set_option-socket-only-name",
        lambda c: c.acceptor.set_option("out_of_band_inline", True),
        ValueError,
        r"^name: unknown option 'out_of_band_inline'; known options: debug, "
        r"enable_connection_aborted, keep_alive, keep_alive_count, keep_alive_idle, "
        r"keep_alive_interval, reuse_address, (reuse_port, )?tcp_no_delay, "
        r"user_timeout, v6_only$",
    ),
    Row(
        "Acceptor.set_option-int-for-bool",
        lambda c: c.acceptor.set_option("reuse_address", _any(1)),
        TypeError,
        r"^value: reuse_address expects a bool, got int$",
    ),
    # -- Socket: blocking members ---------------------------------------------
    Row(
        "Socket.read_some-bytes",
        lambda c: c.a.read_some(b"read-only"),
        TypeError,
        r"^buf: expected a writable buffer \(bytearray, memoryview, array, \.\.\.\), "
        r"got bytes$",
    ),
    Row(
        "Socket.write_some-str",
        lambda c: c.a.write_some(_any("text")),
        TypeError,
        r"^data: expected a bytes-like object, got str; encode it first$",
    ),
    Row(
        "Socket.write_some-int",
        lambda c: c.a.write_some(_any(42)),
        TypeError,
        r"^data: expected a bytes-like object, got int$",
    ),
    Row(
        "Socket.receive-unknown-flag",
        lambda c: c.a.receive(bytearray(1), ["urgent"]),
        ValueError,
        r"^flags: unknown flag 'urgent'; known flags: do_not_route, "
        r"end_of_record, out_of_band, peek$",
    ),
    Row(
        "Socket.send-str-flags",
        lambda c: c.a.send(b"x", "peek"),
        TypeError,
        r"^flags: expected an iterable of flag names, an int or an "
        r"ip\.MessageFlag, got str$",
    ),
    Row(
        "Socket.send-negative-flags",
        lambda c: c.a.send(b"x", -1),
        ValueError,
        r"^flags: must be >= 0, got -1$",
    ),
    Row(
        "Socket.wait-unknown-kind",
        lambda c: c.a.wait(_any("readable")),
        ValueError,
        r"^kind: expected one of 'read', 'write', 'error', got 'readable'$",
    ),
    Row(
        "Socket.connect-host-name",
        lambda c: Socket().connect("localhost", 80),
        ValueError,
        r"^address: 'localhost' is not a numeric IP address; ",
    ),
    Row(
        "Socket.connect-port-out-of-range",
        lambda c: Socket().connect("127.0.0.1", 70000),
        ValueError,
        _PORT_70000,
    ),
    Row(
        "Socket.send_file-negative-offset",
        lambda c: c.a.send_file(c.file, -1, 10),
        ValueError,
        r"^offset: must be in 0\.\.9223372036854775807, got -1$",
    ),
    Row(
        "Socket.send_file-negative-size",
        lambda c: c.a.send_file(c.file, 0, -5),
        ValueError,
        r"^size_in_bytes: must be in 0\.\.9223372036854775807, got -5$",
    ),
    Row(
        "Socket.send_file-path-for-file",
        lambda c: c.a.send_file("data.bin", 0, 10),
        TypeError,
        r"^file: expected a binary file object or an int descriptor, got str$",
    ),
    Row(
        "Socket.send_file-str-head",
        lambda c: c.a.send_file(c.file, 0, 10, head=_any("head")),
        TypeError,
        r"^head: expected a bytes-like object, got str; encode it first$",
    ),
    Row(
        "Socket.send_file-zero-per-send",
        lambda c: c.a.send_file(c.file, 0, 10, n_number_of_bytes_per_send=0),
        ValueError,
        r"^n_number_of_bytes_per_send: must be in 1\.\.2147483647, got 0$",
    ),
    # -- closed objects -------------------------------------------------------
    Row(
        "closed-Socket.read_some",
        lambda c: c.closed.read_some(bytearray(1)),
        OSError,
        _EBADF,
    ),
    Row(
        "closed-Socket.write_some", lambda c: c.closed.write_some(b"x"), OSError, _EBADF
    ),
    Row("closed-Socket.wait", lambda c: c.closed.wait("error"), OSError, _EBADF),
    Row("closed-Socket.cancel", lambda c: c.closed.cancel(), OSError, _EBADF),
    Row("closed-Socket.release", lambda c: c.closed.release(), OSError, _EBADF),
    Row("closed-Socket.remote_port", lambda c: c.closed.remote_port, OSError, _EBADF),
    Row(
        "closed-Socket.send_file",
        lambda c: c.closed.send_file(c.file, 0, 10),
        OSError,
        _EBADF,
    ),
    Row(
        "closed-Acceptor.accept", lambda c: c.closed_acceptor.accept(), OSError, _EBADF
    ),
    Row(
        "closed-Acceptor.listen", lambda c: c.closed_acceptor.listen(), OSError, _EBADF
    ),
    Row(
        "closed-stream.write_all",
        lambda c: stream.write_all(c.closed, b"x"),
        OSError,
        _EBADF,
    ),
    # -- Acceptor -------------------------------------------------------------
    Row(
        "Acceptor.listen-negative-backlog",
        lambda c: c.acceptor.listen(-1),
        ValueError,
        r"^backlog: must be in 0\.\.2147483647, got -1$",
    ),
    Row(
        "Acceptor.listen-str-backlog",
        lambda c: c.acceptor.listen(_any("8")),
        TypeError,
        r"^backlog: expected an int or None, got str$",
    ),
    Row(
        "Acceptor.bind-port-out-of-range",
        lambda c: c.acceptor.bind("127.0.0.1", 70000),
        ValueError,
        _PORT_70000,
    ),
    Row(
        "Acceptor.accept-not-listening",
        lambda c: c.acceptor.accept(),
        OSError,
        r"^\[Errno 22\] Invalid argument$",
    ),
    # -- Address, tostring, toendpoint ----------------------------------------
    Row(
        "Address-invalid-text",
        lambda c: Address("1.2.3.256"),
        ValueError,
        r"^address: '1\.2\.3\.256' is not a valid IP address$",
    ),
    Row(
        "Address-None",
        lambda c: Address(_any(None)),
        TypeError,
        r"^address: expected a str, an ip\.Address, an ipaddress\.IPv4Address "
        r"or an ipaddress\.IPv6Address, got NoneType$",
    ),
    Row(
        "Address-packed-bytes",
        lambda c: Address(_any(b"\x7f\0\0\1")),
        TypeError,
        r"^address: expected a str, .* got bytes$",
    ),
    Row(
        "Address-scope-out-of-range",
        lambda c: Address("fe80::1%99999999999"),
        ValueError,
        r"^address: scope id out of range 0\.\.4294967295 in 'fe80::1%99999999999'$",
    ),
    Row(
        "Address.with_scope_id-negative",
        lambda c: Address("::1").with_scope_id(-1),
        ValueError,
        r"^scope_id: must be in 0\.\.4294967295, got -1$",
    ),
    Row(
        "Address.with_scope_id-on-v4",
        lambda c: Address("127.0.0.1").with_scope_id(1),
        ValueError,
        r"^with_scope_id: needs an IPv6 address, got 127\.0\.0\.1$",
    ),
    Row(
        "Address.to_v6-on-v6",
        lambda c: Address("::1").to_v6(),
        ValueError,
        r"^to_v6: needs an IPv4 address, got ::1$",
    ),
    Row(
        "Address.scope_id-on-v4",
        lambda c: Address("127.0.0.1").scope_id,
        ValueError,
        r"^scope_id: needs an IPv6 address, got 127\.0\.0\.1$",
    ),
    Row(
        "tostring-str-address",
        lambda c: ip.tostring(_any("1.2.3.4"), 80),
        TypeError,
        r"^addr: expected an ip\.Address, got str$",
    ),
    Row(
        "tostring-port-out-of-range",
        lambda c: ip.tostring(Address("1.2.3.4"), 70000),
        ValueError,
        _PORT_70000,
    ),
    Row(
        "toendpoint-bytes",
        lambda c: ip.toendpoint(_any(b"1.2.3.4:80")),
        TypeError,
        r"^text: expected a str, got bytes$",
    ),
    Row(
        "toendpoint-no-port",
        lambda c: ip.toendpoint("1.2.3.4"),
        ValueError,
        r"^text: expected 'host:port', got '1\.2\.3\.4'$",
    ),
    Row(
        "toendpoint-port-out-of-range",
        lambda c: ip.toendpoint("1.2.3.4:65536"),
        ValueError,
        r"^text: port must be in 0\.\.65535, got 65536$",
    ),
    Row(
        "toendpoint-v4-in-brackets",
        lambda c: ip.toendpoint("[1.2.3.4]:80"),
        ValueError,
        r"^text: only an IPv6 address may be in brackets, got '\[1\.2\.3\.4\]:80'$",
    ),
    # -- stream ---------------------------------------------------------------
    Row(
        "stream.write_all-str",
        lambda c: stream.write_all(c.a, _any("text")),
        TypeError,
        r"^data: expected a bytes-like object, got str; encode it first$",
    ),
    Row(
        "stream.write_all-str-in-list",
        lambda c: stream.write_all(c.a, [b"ok", _any("text")]),
        TypeError,
        r"^data: expected a bytes-like object, got str; encode it first$",
    ),
    Row(
        "stream.read_all-bytes",
        lambda c: stream.read_all(c.b, b"read-only"),
        TypeError,
        r"^buf: expected a writable buffer \(bytearray, memoryview, array, \.\.\.\), "
        r"got bytes$",
    ),
    Row(
        "stream.read_at_least-negative-minimum",
        lambda c: stream.read_at_least(c.b, bytearray(4), -1),
        ValueError,
        r"^minimum: must be >= 0, got -1$",
    ),
    Row(
        "stream.write_at_least-float-minimum",
        lambda c: stream.write_at_least(c.a, b"x", _any(1.5)),
        TypeError,
        r"^minimum: expected an int, got float$",
    ),
    # -- Scanner --------------------------------------------------------------
    Row(
        "Scanner-not-a-stream",
        lambda c: stream.Scanner(_any(object())),
        TypeError,
        r"^stream: expected an object with read_some\(\), got object$",
    ),
    Row(
        "Scanner-str-separator",
        lambda c: stream.Scanner(c.b, _any("\n")),
        TypeError,
        r"^record_separator: expected bytes or a compiled bytes regex, got str; "
        r"use bytes$",
    ),
    Row(
        "Scanner-empty-separator",
        lambda c: stream.Scanner(c.b, b""),
        ValueError,
        r"^record_separator: must not be empty$",
    ),
    Row(
        "Scanner-str-regex-separator",
        lambda c: stream.Scanner(c.b, _any(re.compile("\n"))),
        TypeError,
        r"^record_separator: expected a bytes regex, got a str regex; use bytes$",
    ),
    Row(
        "Scanner-separator-matching-empty",
        lambda c: stream.Scanner(c.b, re.compile(b"x*")),
        ValueError,
        r"^record_separator: must not match the empty string$",
    ),
    Row(
        "Scanner-zero-max-record-size",
        lambda c: stream.Scanner(c.b, max_record_size=0),
        ValueError,
        r"^max_record_size: must be in 1\.\.9223372036854775807, got 0$",
    ),
    Row(
        "Scanner-both-field-options",
        lambda c: stream.Scanner(
            c.b, field_separator=b",", field_pattern=_any(re.compile(b"[^,]+"))
        ),
        ValueError,
        r"^field_pattern: cannot be combined with field_separator$",
    ),
    Row(
        "Scanner.set_buffer-str",
        lambda c: c.scanner.set_buffer(_any("text")),
        TypeError,
        r"^data: expected a bytes-like object, got str; use bytes$",
    ),
    # -- resolution, connect, dial, listen, socket_pair -------------------------
    Row(
        "get_address_info-None-host",
        lambda c: ip.tcp.get_address_info(_any(None), 80),
        TypeError,
        r"^host: expected a str or an ip\.Address, got NoneType; use '' for no host$",
    ),
    Row(
        "get_address_info-port-out-of-range",
        lambda c: ip.tcp.get_address_info("127.0.0.1", 70000),
        ValueError,
        r"^service: must be in 0\.\.65535, got 70000$",
    ),
    Row(
        "get_address_info-numeric-service-out-of-range",
        lambda c: ip.tcp.get_address_v4_info("127.0.0.1", "65536"),
        ValueError,
        r"^service: must be in 0\.\.65535, got 65536$",
    ),
    Row(
        "get_address_info-float-service",
        lambda c: ip.tcp.get_address_v6_info("::1", _any(80.0)),
        TypeError,
        r"^service: expected a str or an int, got float$",
    ),
    Row(
        "get_address_info-both-empty",
        lambda c: ip.tcp.get_address_info("", ""),
        ValueError,
        r"^host: host and service cannot both be empty$",
    ),
    Row(
        "get_address_info-negative-flags",
        lambda c: ip.tcp.get_address_info("127.0.0.1", 80, -1),
        ValueError,
        r"^flags: must be in 0\.\.2147483647, got -1$",
    ),
    Row(
        "get_address_info-str-flags",
        lambda c: ip.tcp.get_address_info("127.0.0.1", 80, _any("passive")),
        TypeError,
        r"^flags: expected an iterable of flag names, an int, an ip\.AddressInfoFlag "
        r"or None, got str$",
    ),
    Row(
        "get_address_info-name-with-numeric_host",
        # numeric_host: the resolver refuses the name without asking DNS.
        lambda c: ip.tcp.get_address_info(
            "no-such-host.invalid", 80, AddressInfoFlag.numeric_host
        ),
        OSError,
        r"^\[Errno -?\d+\] host: cannot resolve 'no-such-host\.invalid' \(.+\)$",
    ),
    Row(
        "ip.connect-not-a-socket",
        lambda c: ip.connect(_any("sock"), [("127.0.0.1", 80)]),
        TypeError,
        r"^sock: expected an ip\.tcp\.Socket, got str$",
    ),
    Row(
        "ip.connect-entries-not-iterable",
        lambda c: ip.connect(c.unconnected, _any(5)),
        TypeError,
        r"^entries: expected an iterable of ip\.AddressInfo, got int$",
    ),
    Row(
        "ip.connect-entry-port-out-of-range",
        lambda c: ip.connect(c.unconnected, [("127.0.0.1", 70000)]),
        ValueError,
        r"^entries\[0\]\.port: must be in 0\.\.65535, got 70000$",
    ),
    Row(
        "ip.connect-entry-wrong-type",
        lambda c: ip.connect(c.unconnected, [_any("127.0.0.1:80")]),
        TypeError,
        r"^entries\[0\]: expected an ip\.AddressInfo \(or an object with address "
        r"and port\) or an \(address, port\) pair, got str$",
    ),
    Row(
        "ip.connect-condition-not-callable",
        lambda c: ip.connect(c.unconnected, [], condition=_any(True)),
        TypeError,
        r"^condition: expected a callable or None, got bool$",
    ),
    Row(
        "ip.dial-negative-delay",
        lambda c: ip.dial("127.0.0.1", 80, happy_eyeballs_delay=-1),
        ValueError,
        r"^happy_eyeballs_delay: must be >= 0, got -1$",
    ),
    Row(
        "ip.dial-str-delay",
        lambda c: ip.dial("127.0.0.1", 80, happy_eyeballs_delay=_any("0.25")),
        TypeError,
        r"^happy_eyeballs_delay: expected a number of seconds or None, got str$",
    ),
    Row(
        "ip.dial-None-host",
        lambda c: ip.dial(_any(None), 80),
        TypeError,
        r"^host: expected a str or an ip\.Address, got NoneType; use '' for no host$",
    ),
    Row(
        "ip.tcp.listen-host-name",
        lambda c: ip.tcp.listen("localhost", 0),
        ValueError,
        r"^host: 'localhost' is not a numeric IP address; ",
    ),
    Row(
        "ip.tcp.listen-port-out-of-range",
        lambda c: ip.tcp.listen("127.0.0.1", 70000),
        ValueError,
        _PORT_70000,
    ),
    Row(
        # Fails after the descriptor is made: listen() must close it.
        "ip.tcp.listen-negative-backlog",
        lambda c: ip.tcp.listen("127.0.0.1", 0, -1),
        ValueError,
        r"^backlog: must be in 0\.\.2147483647, got -1$",
    ),
    # -- SPEC §13: what reaches the kernel, struct or the resolver ------------
    # NUL in a text that becomes a C string: the C side would stop there.
    *(
        Row(
            f"get_address_info-NUL-host-{i}",
            _with(host, lambda c, host: ip.tcp.get_address_info(host, 80)),
            ValueError,
            rf"^host: must not contain a NUL character, got {re.escape(repr(host))}$",
        )
        for i, host in enumerate(["127.0.0.1\0.evil.example", "::1\0junk"])
    ),
    Row(
        "get_address_info-NUL-service",
        lambda c: ip.tcp.get_address_info("127.0.0.1", "80\0junk"),
        ValueError,
        r"^service: must not contain a NUL character, got '80\\x00junk'$",
    ),
    Row(
        "get_address_v4_info-NUL-host",
        lambda c: ip.tcp.get_address_v4_info("127.0.0.1\0x", 80),
        ValueError,
        r"^host: must not contain a NUL character",
    ),
    Row(
        "ip.dial-NUL-host",
        lambda c: ip.dial("127.0.0.1\0.evil.example", 80),
        ValueError,
        r"^host: must not contain a NUL character",
    ),
    Row(
        "Address-NUL-interface",
        lambda c: Address("fe80::1%lo\0x"),
        ValueError,
        r"^address: must not contain a NUL character, got 'fe80::1%lo\\x00x'$",
    ),
    # A service is digits only or a name: nothing the resolver could wrap.
    *(
        Row(
            f"get_address_info-numeric-looking-service-{i}",
            _with(
                service,
                lambda c, service: ip.tcp.get_address_info("127.0.0.1", service),
            ),
            ValueError,
            r"^service: expected a port in decimal digits \(0\.\.65535\) or a "
            rf"service name, got {re.escape(repr(service))}$",
        )
        for i, service in enumerate(["+65616", " 70000", "+65536", "\t65536", "80 "])
    ),
    Row(
        "get_address_info-surrogate-service",
        lambda c: ip.tcp.get_address_info("127.0.0.1", "\ud800"),
        ValueError,
        r"^service: '\\ud800' is not a valid service name",
    ),
    Row(
        "get_address_info-flags-beyond-int",
        lambda c: ip.tcp.get_address_info("127.0.0.1", 80, 2**31),
        ValueError,
        r"^flags: must be in 0\.\.2147483647, got 2147483648$",
    ),
    # Message flags: only those that cannot lose data or spin.
    Row(
        "Socket.receive-MSG_TRUNC",
        lambda c: c.a.receive(bytearray(4), socket.MSG_TRUNC),
        ValueError,
        r"^flags: receive\(\) does not take 0x20 \(MSG_TRUNC\); it takes "
        r"out_of_band, peek, do_not_route, end_of_record and MSG_DONTWAIT$",
    ),
    Row(
        "Socket.receive-MSG_ERRQUEUE",
        lambda c: c.a.receive(bytearray(4), socket.MSG_ERRQUEUE),
        ValueError,
        r"^flags: receive\(\) does not take 0x2000 \(MSG_ERRQUEUE\); ",
    ),
    Row(
        "Socket.receive-flags-beyond-int",
        lambda c: c.a.receive(bytearray(4), 2**31),
        ValueError,
        r"^flags: receive\(\) does not take 0x80000000; ",
    ),
    Row(
        "Socket.send-flags-beyond-int",
        lambda c: c.a.send(b"x", 2**40),
        ValueError,
        r"^flags: send\(\) does not take 0x10000000000; it takes out_of_band, "
        r"peek, do_not_route, end_of_record, MSG_DONTWAIT, MSG_MORE and "
        r"MSG_NOSIGNAL$",
    ),
    Row(
        "Socket.send-MSG_PEEK-and-MSG_TRUNC",
        lambda c: c.a.send(b"x", socket.MSG_PEEK | socket.MSG_TRUNC),
        ValueError,
        r"^flags: send\(\) does not take 0x20 \(MSG_TRUNC\); ",
    ),
    # Integers within the C int the kernel takes.
    *(
        Row(
            f"Socket.assign-fd-{fd}",
            _with(fd, lambda c, fd: Socket().assign("v4", fd)),
            ValueError,
            rf"^fd: must be in 0\.\.2147483647, got {fd}$",
        )
        for fd in (2**31, 2**32 + 3, 2**63)
    ),
    *(
        Row(
            f"Socket.set_option-{name}-beyond-int",
            _with(name, lambda c, name: c.a.set_option(_any(name), 2**31)),
            ValueError,
            rf"^value: {name} must be in 0\.\.2147483647 bytes, got 2147483648$",
        )
        for name in (
            "send_buffer_size",
            "receive_buffer_size",
            "send_low_watermark",
            "receive_low_watermark",
        )
    ),
    Row(
        "Socket.set_option-linger-timeout-beyond-int",
        lambda c: c.a.set_option("linger", True, 2**31),
        ValueError,
        r"^timeout: linger must be in 0\.\.2147483647 seconds, got 2147483648$",
    ),
    Row(
        "Acceptor.listen-backlog-beyond-int",
        lambda c: c.acceptor.listen(2**31),
        ValueError,
        r"^backlog: must be in 0\.\.2147483647, got 2147483648$",
    ),
    Row(
        "ip.tcp.listen-backlog-beyond-int",
        lambda c: ip.tcp.listen("127.0.0.1", 0, 2**31),
        ValueError,
        r"^backlog: must be in 0\.\.2147483647, got 2147483648$",
    ),
    Row(
        "Socket.send_file-fd-beyond-int",
        lambda c: c.a.send_file(2**31, 0, 1),
        ValueError,
        r"^file: a descriptor must be in 0\.\.2147483647, got 2147483648$",
    ),
    # Sizes that would allocate: refused with the limit.
    *(
        Row(
            f"Socket.receive_some-{size}",
            _with(size, lambda c, size: c.a.receive_some(size)),
            ValueError,
            rf"^max_bytes: must be in 1\.\.2147483647, got {size}$",
        )
        for size in (2**40, 2**63)
    ),
    *(
        Row(
            f"Scanner-{name}-{size}",
            _with(
                (name, size),
                lambda c, arg: stream.Scanner(c.b, **_any({arg[0]: arg[1]})),
            ),
            ValueError,
            rf"^{name}: must be in 1\.\.{limit}, got {size}$",
        )
        for name, limit in (
            ("max_record_size", sys.maxsize),
            ("buffer_size_hint", 2**31 - 1),
        )
        for size in (2**40 if name == "buffer_size_hint" else 2**63, 2**70)
    ),
    # Buffers: non-contiguous is a TypeError, released is named.
    *(
        Row(
            f"Socket.{method}-non-contiguous-{i}",
            _with(
                (method, view),
                lambda c, arg: getattr(c.a, arg[0])(_any(arg[1])()),
            ),
            TypeError,
            r"^data: expected a C-contiguous buffer$",
        )
        for method in ("write_some", "send", "send_all")
        for i, view in enumerate(
            [
                lambda: memoryview(b"abcd")[::2],
                lambda: memoryview(b"abcd")[::-1],
                lambda: memoryview(bytes(16)).cast("B", (4, 4))[::2],
            ]
        )
    ),
    Row(
        "Socket.read_some-non-contiguous",
        lambda c: c.a.read_some(memoryview(bytearray(4))[::2]),
        TypeError,
        r"^buf: expected a C-contiguous buffer$",
    ),
    *(
        Row(
            f"released-{name}",
            call,
            ValueError,
            rf"^{arg}: got a released memoryview$",
        )
        for name, arg, call in [
            ("write_some", "data", lambda c: c.a.write_some(_released())),
            ("send", "data", lambda c: c.a.send(_released())),
            ("send_all", "data", lambda c: c.a.send_all(_released())),
            ("read_some", "buf", lambda c: c.a.read_some(_released())),
            ("receive", "buf", lambda c: c.a.receive(_released())),
            ("stream.write_all", "data", lambda c: stream.write_all(c.a, _released())),
            (
                "stream.write_all-list",
                "data",
                lambda c: stream.write_all(c.a, [b"ok", _released()]),
            ),
            ("stream.read_all", "buf", lambda c: stream.read_all(c.b, _released())),
            (
                "stream.write_at_least",
                "data",
                lambda c: stream.write_at_least(c.a, _released(), 1),
            ),
            (
                "Scanner-record_separator",
                "record_separator",
                lambda c: stream.Scanner(c.b, _any(_released())),
            ),
            (
                "Scanner-field_separator",
                "field_separator",
                lambda c: stream.Scanner(c.b, field_separator=_any(_released())),
            ),
            (
                "Scanner-trim_record",
                "trim_record",
                lambda c: stream.Scanner(c.b, trim_record=_any(_released())),
            ),
            ("Scanner.set_buffer", "data", lambda c: c.scanner.set_buffer(_released())),
            (
                "send_file-head",
                "head",
                lambda c: c.a.send_file(c.file, 0, 1, head=_released()),
            ),
        ]
    ),
    # Multi-dimensional buffers, even C-contiguous ones (which socket.send
    # would take), and non-contiguous ones where a copy would hide it.
    *(
        Row(
            f"two-dimensional-{name}",
            call,
            TypeError,
            rf"^{arg}: expected a one-dimensional buffer; flatten it with "
            r"memoryview\(\.\.\.\)\.cast\('B'\)$",
        )
        for name, arg, call in [
            ("write_some", "data", lambda c: c.a.write_some(_grid())),
            ("send", "data", lambda c: c.a.send(_grid())),
            ("send_all", "data", lambda c: c.a.send_all(_grid())),
            ("read_some", "buf", lambda c: c.a.read_some(_grid())),
            ("receive", "buf", lambda c: c.a.receive(_grid())),
            ("receive-oob", "buf", lambda c: c.a.receive(_grid(), ["out_of_band"])),
            ("stream.write_all", "data", lambda c: stream.write_all(c.a, _grid())),
            (
                "stream.write_all-list",
                "data",
                lambda c: stream.write_all(c.a, [b"ok", _grid()]),
            ),
            ("stream.read_all", "buf", lambda c: stream.read_all(c.b, _grid())),
            (
                "Scanner-record_separator",
                "record_separator",
                lambda c: stream.Scanner(c.b, _any(_grid())),
            ),
            ("Scanner.set_buffer", "data", lambda c: c.scanner.set_buffer(_grid())),
            (
                "send_file-tail",
                "tail",
                lambda c: c.a.send_file(c.file, 0, 1, tail=_grid()),
            ),
        ]
    ),
    *(
        Row(
            f"non-contiguous-{name}",
            call,
            TypeError,
            rf"^{arg}: expected a C-contiguous buffer$",
        )
        for name, arg, call in [
            (
                "Scanner-field_separator",
                "field_separator",
                lambda c: stream.Scanner(c.b, field_separator=_any(_strided())),
            ),
            ("Scanner.set_buffer", "data", lambda c: c.scanner.set_buffer(_strided())),
            ("stream.write_all", "data", lambda c: stream.write_all(c.a, _strided())),
            ("receive-oob", "buf", lambda c: c.a.receive(_strided(), ["out_of_band"])),
        ]
    ),
    # The raw option calls of trio.SocketStream's surface.
    *(
        Row(f"Socket.{id_}", call, exc, match)
        for id_, call, exc, match in [
            (
                "getsockopt-level-beyond-int",
                lambda c: c.a.getsockopt(2**40, socket.TCP_NODELAY),
                ValueError,
                r"^level: must be in 0\.\.2147483647, got 1099511627776$",
            ),
            (
                "getsockopt-buffersize",
                lambda c: c.a.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 5000),
                ValueError,
                r"^buffersize: must be in 0\.\.1024, got 5000$",
            ),
            (
                "setsockopt-option-beyond-int",
                lambda c: c.a.setsockopt(socket.IPPROTO_TCP, 2**33, 1),
                ValueError,
                r"^option: must be in 0\.\.2147483647, got 8589934592$",
            ),
            (
                "setsockopt-value-beyond-int",
                lambda c: c.a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 2**40),
                ValueError,
                r"^value: must be in -2147483648\.\.2147483647, got 1099511627776$",
            ),
            (
                "setsockopt-length-beyond-int",
                lambda c: c.a.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, None, 2**40
                ),
                ValueError,
                r"^length: must be in 0\.\.2147483647, got 1099511627776$",
            ),
            (
                "setsockopt-str-level",
                lambda c: c.a.setsockopt(_any("6"), socket.TCP_NODELAY, 1),
                TypeError,
                r"^level: expected an int, got str$",
            ),
            (
                "setsockopt-float-value",
                lambda c: c.a.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, _any(1.0)
                ),
                TypeError,
                r"^value: expected an int or a bytes-like object, got float$",
            ),
        ]
    ),
    Row(
        "toendpoint-bracket-without-colon",
        lambda c: ip.toendpoint("[::1]80"),
        ValueError,
        r"^text: expected ':port' after '\]', got '\[::1\]80'$",
    ),
    Row(
        "socket_pair-unknown-family",
        lambda c: socket_pair(_any("v5")),
        ValueError,
        r"^family: must be 'v4', 'v6' or an ip\.Address, got 'v5'$",
    ),
    Row(
        "socket_pair-Address-family",
        lambda c: socket_pair(_any(Address("127.0.0.1"))),
        TypeError,
        r"^family: expected 'v4' or 'v6', got Address$",
    ),
]


async def _attempt(row: Row, c: Ctx) -> Exception:
    """Make the call; return what it raised (an async call is awaited)."""
    try:
        result = row.call(c)
    except Exception as exc:
        return exc
    assert hasattr(result, "__await__"), f"{row.id}: neither raised nor awaitable"
    # An async method is a checkpoint on every outcome (SPEC §4), errors
    # included.
    # Bounded: on a bad flag a read could wait, or spin, forever.
    with assert_checkpoints(), trio.fail_after(5):
        try:
            await result
        except Exception as exc:
            return exc
    raise AssertionError(f"{row.id}: did not raise")


def test_bad_input_table_is_large_and_unique() -> None:
    assert len(ROWS) >= 40
    assert len({row.id for row in ROWS}) == len(ROWS)
    for row in ROWS:
        assert row.exc in (TypeError, ValueError, OSError)
        assert row.match.startswith("^")


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_bad_input_is_refused_naming_the_argument(row: Row, ctx: Ctx) -> None:
    before = open_fds()
    exc = await _attempt(row, ctx)
    assert isinstance(exc, row.exc), f"expected {row.exc.__name__}, got {exc!r}"
    # One kind only: a TypeError must not also be a ValueError, and so on.
    others = tuple({TypeError, ValueError, OSError} - {row.exc})
    assert not any(isinstance(exc, kind) for kind in others), f"{exc!r} is {others}"
    assert re.search(row.match, str(exc)), f"{str(exc)!r} !~ {row.match!r}"
    assert open_fds() == before
    # The objects the row used are still in the state it found them in.
    assert ctx.a.is_open
    assert ctx.b.is_open
    assert not ctx.closed.is_open


async def test_bad_input_leaves_every_object_usable(ctx: Ctx) -> None:
    """After every wrong call, the same objects still work."""
    for row in ROWS:
        await _attempt(row, ctx)
    await stream.write_all(ctx.a, b"still fine")
    buf = bytearray(10)
    assert await stream.read_all(ctx.b, buf) == 10
    assert buf == b"still fine"
    ctx.acceptor.bind("127.0.0.1", 0)
    ctx.acceptor.listen()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            ctx.unconnected.connect, "127.0.0.1", ctx.acceptor.local_port
        )
        async with await ctx.acceptor.accept():
            pass
