"""Option names of Emilua's sockets and acceptors, mapped to setsockopt.

Emilua (Asio) option names are the public vocabulary; each maps to a
``(level, optname, codec)`` triple here, so that ``set_option`` and
``get_option`` are a table lookup and the list in an error message is always
the real list.
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass
from typing import Literal

from ._args import INT_MAX, finite_seconds, int_arg, type_name

__all__ = [
    "ACCEPTOR_OPTIONS",
    "SOCKET_OPTIONS",
    "OptionValue",
    "encode",
    "get_option",
    "lookup",
    "set_option",
]

# How a value is checked and encoded: "bool", "int" (an int in low..high),
# "bufsize" (the same, halved on read), "linger" (two values), "flag" (kept
# by the object, not the kernel), "range" (an int within the option's
# low..high, the unit in ``unit``) and "millis" (seconds as int or float,
# kept by the kernel in whole milliseconds).
Codec = Literal["bool", "int", "bufsize", "linger", "flag", "range", "millis"]
OptionValue = bool | int | float | tuple[bool, int]

_LINGER = struct.Struct("ii")

# Linux doubles SO_SNDBUF/SO_RCVBUF on set (the extra half is its own
# bookkeeping) and reports the doubled value.  Asio halves it on read so that
# a program reads back what it set; Emilua inherits that, and so do we.
_BUFSIZE_READ_DIVISOR = 2 if sys.platform.startswith("linux") else 1


@dataclass(frozen=True)
class _Option:
    level: int
    # None where the platform has no such option (``set_option`` and
    # ``get_option`` then say so).
    name: int | None
    codec: Codec
    low: int = 0
    high: int = 0
    unit: str = ""


# The dead-peer options (SPEC §10).  The ranges are Linux's: it refuses
# TCP_KEEPIDLE/TCP_KEEPINTVL outside 1..MAX_TCP_KEEPIDLE (32767 s) and
# TCP_KEEPCNT outside 1..MAX_TCP_KEEPCNT (127); TCP_USER_TIMEOUT is an int
# of milliseconds (0 = the kernel's default).  macOS calls the first one
# TCP_KEEPALIVE.
_MAX_MILLIS = 2**31 - 1
_DEAD_PEER_OPTIONS: dict[str, _Option] = {
    "keep_alive_idle": _Option(
        socket.IPPROTO_TCP,
        getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None)),
        "range",
        1,
        32767,
        "seconds",
    ),
    "keep_alive_interval": _Option(
        socket.IPPROTO_TCP,
        getattr(socket, "TCP_KEEPINTVL", None),
        "range",
        1,
        32767,
        "seconds",
    ),
    "keep_alive_count": _Option(
        socket.IPPROTO_TCP,
        getattr(socket, "TCP_KEEPCNT", None),
        "range",
        1,
        127,
        "probes",
    ),
    "user_timeout": _Option(
        socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", None), "millis"
    ),
}


SOCKET_OPTIONS: dict[str, _Option] = {
    "tcp_no_delay": _Option(socket.IPPROTO_TCP, socket.TCP_NODELAY, "bool"),
    "send_low_watermark": _Option(
        socket.SOL_SOCKET, socket.SO_SNDLOWAT, "int", 0, INT_MAX, "bytes"
    ),
    "send_buffer_size": _Option(
        socket.SOL_SOCKET, socket.SO_SNDBUF, "bufsize", 0, INT_MAX, "bytes"
    ),
    "receive_low_watermark": _Option(
        socket.SOL_SOCKET, socket.SO_RCVLOWAT, "int", 0, INT_MAX, "bytes"
    ),
    "receive_buffer_size": _Option(
        socket.SOL_SOCKET, socket.SO_RCVBUF, "bufsize", 0, INT_MAX, "bytes"
    ),
    "out_of_band_inline": _Option(socket.SOL_SOCKET, socket.SO_OOBINLINE, "bool"),
    "linger": _Option(socket.SOL_SOCKET, socket.SO_LINGER, "linger"),
    "keep_alive": _Option(socket.SOL_SOCKET, socket.SO_KEEPALIVE, "bool"),
    "do_not_route": _Option(socket.SOL_SOCKET, socket.SO_DONTROUTE, "bool"),
    "debug": _Option(socket.SOL_SOCKET, socket.SO_DEBUG, "bool"),
    "v6_only": _Option(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, "bool"),
    # Beyond Emilua (SPEC §12): the limit on unsent data that the Trio
    # send-side methods otherwise set on first use (_trio_stream.py), so a
    # program can choose its own without the raw setsockopt.  Linux takes
    # any C int (a negative one is stored as a huge unsigned limit, which
    # is why 0.. is the range here); 0 means "the sysctl
    # net.ipv4.tcp_notsent_lowat" (no limit unless the system sets one),
    # and getsockopt then reads 0 back, as on a socket never set.
    "not_sent_low_watermark": _Option(
        socket.IPPROTO_TCP,
        getattr(socket, "TCP_NOTSENT_LOWAT", None),
        "int",
        0,
        INT_MAX,
        "bytes",
    ),
    **_DEAD_PEER_OPTIONS,
}

# ``enable_connection_aborted`` is not a kernel option: like Asio's flag it
# only changes what ``accept`` reports, so the acceptor keeps it itself
# (codec "flag", level/name unused).
ACCEPTOR_OPTIONS: dict[str, _Option] = {
    "reuse_address": _Option(socket.SOL_SOCKET, socket.SO_REUSEADDR, "bool"),
    # Beyond Emilua: set on the listening socket, the kernel copies it to
    # every socket accepted from it (Linux and the BSDs); ip.tcp.listen
    # turns it on (SPEC §7).
    "tcp_no_delay": _Option(socket.IPPROTO_TCP, socket.TCP_NODELAY, "bool"),
    "enable_connection_aborted": _Option(0, 0, "flag"),
    "debug": _Option(socket.SOL_SOCKET, socket.SO_DEBUG, "bool"),
    "v6_only": _Option(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, "bool"),
    # Beyond Emilua: set on the listening socket, these reach every
    # connection accepted from it (Linux copies them), at one syscall per
    # option instead of one per connection.
    "keep_alive": _Option(socket.SOL_SOCKET, socket.SO_KEEPALIVE, "bool"),
    **_DEAD_PEER_OPTIONS,
}
if hasattr(socket, "SO_REUSEPORT"):
    # Beyond Emilua (SPEC §3): lets several worker processes share a port.
    ACCEPTOR_OPTIONS["reuse_port"] = _Option(
        socket.SOL_SOCKET, socket.SO_REUSEPORT, "bool"
    )


def lookup(table: dict[str, _Option], name: object) -> _Option:
    """Find ``name`` in ``table``.

    Raises:
      TypeError: ``name`` is not a ``str``.
      ValueError: ``name`` is not one of the table's options, or the
        platform lacks it.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected an option name (str), got {type_name(name)}")
    try:
        opt = table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ValueError(
            f"name: unknown option {name!r}; known options: {known}"
        ) from None
    if opt.name is None:
        raise ValueError(f"name: {name} is not available on {sys.platform}")
    return opt


def encode(name: str, opt: _Option, value: object, timeout: object) -> int | bytes:
    """Check a value given to ``set_option`` and encode it for setsockopt.

    Raises:
      TypeError: the value has the wrong type, or ``timeout`` was given
        (or omitted) where it does not belong.
      ValueError: a size or timeout is outside its range (sizes: 0 to
        2**31 - 1 bytes; ``linger``'s timeout: 0 to 2**31 - 1 seconds).
    """
    if opt.codec == "linger":
        if not isinstance(value, bool):
            raise TypeError(f"value: linger expects a bool, got {type_name(value)}")
        if timeout is None:
            raise TypeError(
                "timeout: linger needs a timeout in seconds: "
                "set_option('linger', enabled, timeout)"
            )
        # l_linger is a C int.
        seconds = int_arg(timeout, "timeout", subject="linger", unit="seconds")
        return _LINGER.pack(int(value), seconds)
    if timeout is not None:
        raise TypeError(f"timeout: only the linger option takes one, not {name!r}")
    if opt.codec in ("bool", "flag"):
        if not isinstance(value, bool):
            raise TypeError(f"value: {name} expects a bool, got {type_name(value)}")
        return int(value)
    if opt.codec in ("range", "int", "bufsize"):
        # A C int for the kernel in every case (SPEC §13), within the
        # option's own range.
        return int_arg(
            value,
            "value",
            minimum=opt.low,
            maximum=opt.high,
            subject=name,
            unit=opt.unit,
        )
    if opt.codec == "millis":
        # Seconds, kept by the kernel in whole milliseconds (a C int).
        limit = _MAX_MILLIS / 1000
        return round(finite_seconds(value, "value", option=name, limit=limit) * 1000)
    raise AssertionError(f"no codec {opt.codec!r}")  # pragma: no cover


def decode(opt: _Option, raw: int | bytes) -> OptionValue:
    """Turn what getsockopt returned into the value ``get_option`` reports."""
    if opt.codec == "linger":
        assert isinstance(raw, bytes)
        onoff, seconds = _LINGER.unpack(raw)
        return (bool(onoff), seconds)
    assert isinstance(raw, int)
    if opt.codec == "bool":
        return bool(raw)
    if opt.codec == "bufsize":
        return raw // _BUFSIZE_READ_DIVISOR
    if opt.codec == "millis":
        return raw / 1000
    return raw


def set_option(sock: socket.socket, opt: _Option, encoded: int | bytes) -> None:
    """Apply a value :func:`encode` made (not used for ``flag`` options)."""
    assert opt.name is not None  # lookup() refused it
    sock.setsockopt(opt.level, opt.name, encoded)


def get_option(sock: socket.socket, opt: _Option) -> OptionValue:
    """Read one option (not used for ``flag`` options)."""
    assert opt.name is not None  # lookup() refused it
    if opt.codec == "linger":
        return decode(opt, sock.getsockopt(opt.level, opt.name, _LINGER.size))
    return decode(opt, sock.getsockopt(opt.level, opt.name))
