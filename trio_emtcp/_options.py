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

__all__ = [
    "ACCEPTOR_OPTIONS",
    "SOCKET_OPTIONS",
    "OptionValue",
    "encode",
    "get_option",
    "lookup",
]

Codec = Literal["bool", "int", "bufsize", "linger", "flag"]
OptionValue = bool | int | tuple[bool, int]

_LINGER = struct.Struct("ii")

# Linux doubles SO_SNDBUF/SO_RCVBUF on set (the extra half is its own
# bookkeeping) and reports the doubled value.  Asio halves it on read so that
# a program reads back what it set; Emilua inherits that, and so do we.
_BUFSIZE_READ_DIVISOR = 2 if sys.platform.startswith("linux") else 1


@dataclass(frozen=True)
class _Option:
    level: int
    name: int
    codec: Codec


SOCKET_OPTIONS: dict[str, _Option] = {
    "tcp_no_delay": _Option(socket.IPPROTO_TCP, socket.TCP_NODELAY, "bool"),
    "send_low_watermark": _Option(socket.SOL_SOCKET, socket.SO_SNDLOWAT, "int"),
    "send_buffer_size": _Option(socket.SOL_SOCKET, socket.SO_SNDBUF, "bufsize"),
    "receive_low_watermark": _Option(socket.SOL_SOCKET, socket.SO_RCVLOWAT, "int"),
    "receive_buffer_size": _Option(socket.SOL_SOCKET, socket.SO_RCVBUF, "bufsize"),
    "out_of_band_inline": _Option(socket.SOL_SOCKET, socket.SO_OOBINLINE, "bool"),
    "linger": _Option(socket.SOL_SOCKET, socket.SO_LINGER, "linger"),
    "keep_alive": _Option(socket.SOL_SOCKET, socket.SO_KEEPALIVE, "bool"),
    "do_not_route": _Option(socket.SOL_SOCKET, socket.SO_DONTROUTE, "bool"),
    "debug": _Option(socket.SOL_SOCKET, socket.SO_DEBUG, "bool"),
    "v6_only": _Option(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, "bool"),
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
      ValueError: ``name`` is not one of the table's options.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected an option name (str), got {_tn(name)}")
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ValueError(
            f"name: unknown option {name!r}; known options: {known}"
        ) from None


def encode(name: str, opt: _Option, value: object, timeout: object) -> int | bytes:
    """Check a value given to ``set_option`` and encode it for setsockopt.

    Raises:
      TypeError: the value has the wrong type, or ``timeout`` was given
        (or omitted) where it does not belong.
      ValueError: a size or timeout is negative.
    """
    if opt.codec == "linger":
        if not isinstance(value, bool):
            raise TypeError(f"value: linger expects a bool, got {_tn(value)}")
        if timeout is None:
            raise TypeError(
                "timeout: linger needs a timeout in seconds: "
                "set_option('linger', enabled, timeout)"
            )
        seconds = _int_arg(timeout, "timeout")
        return _LINGER.pack(int(value), seconds)
    if timeout is not None:
        raise TypeError(f"timeout: only the linger option takes one, not {name!r}")
    if opt.codec in ("bool", "flag"):
        if not isinstance(value, bool):
            raise TypeError(f"value: {name} expects a bool, got {_tn(value)}")
        return int(value)
    return _int_arg(value, "value")


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
    return raw


def get_option(sock: socket.socket, opt: _Option) -> OptionValue:
    """Read one option (not used for ``flag`` options)."""
    if opt.codec == "linger":
        return decode(opt, sock.getsockopt(opt.level, opt.name, _LINGER.size))
    return decode(opt, sock.getsockopt(opt.level, opt.name))


def _int_arg(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {_tn(value)}")
    if value < 0:
        raise ValueError(f"{name}: must be >= 0, got {value}")
    return value


def _tn(value: object) -> str:
    return type(value).__name__
