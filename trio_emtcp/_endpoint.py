"""``ip.tostring`` and ``ip.toendpoint``: an address and a port as one string.

The forms are Emilua's: ``1.2.3.4:80`` and ``[fe80::1%lo]:80``.
"""

from __future__ import annotations

import re
import socket as _stdlib_socket
from typing import Final

from ._address import Address, address_arg
from ._args import MAX_PORT, port_arg, service_arg, type_name

__all__ = ["listen_endpoint", "toendpoint", "tostring"]

# Emilua reads the port with std::from_chars after refusing a leading zero:
# plain ASCII digits, no sign, no blanks, no "0x", and none of the
# underscores or Unicode digits that Python's int() would take.
_PORT_DIGITS: Final = re.compile(r"0|[1-9][0-9]{0,4}")


def tostring(addr: Address, port: int | None = None) -> str:
    """Format an address, or an address and a port, as text.

    ``tostring(addr)`` is ``str(addr)``; with a port it is ``1.2.3.4:80``
    for IPv4 and ``[::1]:80`` (scope id included, ``[fe80::1%lo]:80``) for
    IPv6, the form :func:`toendpoint` reads back.

    Args:
        addr: the address.
        port: a port, or None for the address alone.

    Returns:
        The text.

    Raises:
        TypeError: if ``addr`` is not an :class:`~trio_emtcp.ip.Address`, or
            ``port`` is neither None nor an ``int``.
        ValueError: if ``port`` is not in 0..65535 (Emilua wraps it modulo
            65536; trio_emtcp refuses).
    """
    if not isinstance(addr, Address):
        raise TypeError(f"addr: expected an ip.Address, got {type_name(addr)}")
    if port is None:
        return str(addr)
    port = port_arg(port)
    if addr.is_v4:
        return f"{addr}:{port}"
    return f"[{addr}]:{port}"


def toendpoint(text: str) -> tuple[Address, int]:
    """Parse ``host:port`` text into an address and a port.

    The text is split at its last ``:``.  The host is a numeric IPv4
    address, or a numeric IPv6 address (``%scope`` allowed) in brackets;
    only IPv6 may be in brackets.  The port is decimal digits without
    leading zeros, at most 65535.  Host names are not resolved.

    Args:
        text: e.g. ``"127.0.0.1:8080"`` or ``"[::1]:8080"``.

    Returns:
        ``(address, port)``.

    Raises:
        TypeError: if ``text`` is not a ``str``.
        ValueError: if ``text`` has no ``:``, its port is missing, not plain
            decimal, has a leading zero or is over 65535, an IPv6 address is
            not in brackets or brackets hold something else, or the host is
            not a numeric IP address.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type_name(text)}")
    host, colon, port_text = text.rpartition(":")
    if text.startswith("[") and "]" in port_text:
        # "[::1]80" splits inside the brackets: the "port" would be "1]80",
        # and the message would blame a port the text never had.
        raise ValueError(f"text: expected ':port' after ']', got {text!r}")
    if not colon:
        raise ValueError(f"text: expected 'host:port', got {text!r}")
    if not port_text:
        raise ValueError(f"text: missing port in {text!r}")
    if _PORT_DIGITS.fullmatch(port_text) is None:
        if port_text.isascii() and port_text.isdigit() and port_text[0] != "0":
            # Only digits, just too many of them.
            raise ValueError(f"text: port must be in 0..{MAX_PORT}, got {port_text}")
        raise ValueError(
            "text: port must be decimal digits without leading zeros, "
            f"got {port_text!r}"
        )
    port = int(port_text)
    if port > MAX_PORT:
        raise ValueError(f"text: port must be in 0..{MAX_PORT}, got {port}")

    if len(host) >= 2 and host[0] == "[" and host[-1] == "]":
        scope = host[1:-1].partition("%")[2]
        if "[" in scope or "]" in scope:
            # "[::1%[0]:80": the scope would read as 0, the brackets unseen.
            raise ValueError(f"text: unbalanced brackets in {text!r}")
        address = address_arg(host[1:-1], "text")
        if address.is_v4:
            raise ValueError(
                f"text: only an IPv6 address may be in brackets, got {text!r}"
            )
        return address, port
    if "[" in host or "]" in host:
        raise ValueError(f"text: unbalanced brackets in {text!r}")
    if ":" in host:
        raise ValueError(
            f"text: an IPv6 address must be in brackets, as in '[::1]:80', got {text!r}"
        )
    return address_arg(host, "text"), port


def listen_endpoint(text: str, name: str) -> tuple[Address, int]:
    """Emilua's ``ip.tcp.listen`` endpoint string: ``(address, port)``.

    ``host:port`` as :func:`toendpoint` reads it (an IPv4 literal, or an
    IPv6 literal in brackets), and also: the host ``localhost`` (IPv4
    loopback, as RFC 6761 lets a program decide without a resolver), an
    empty port (0: an ephemeral one), and a service name from the local
    services database (``"localhost:http"``).

    Raises:
      ValueError: no ``:``, an empty or bracketed-but-not-IPv6 host, a host
        name other than ``localhost`` (resolve it first), a port out of
        range or written with a sign or blanks, or a service name the
        services database does not know.
    """
    host, colon, port_text = text.rpartition(":")
    if text.startswith("[") and "]" in port_text:
        raise ValueError(f"{name}: expected ':port' after ']', got {text!r}")
    if not colon:
        raise ValueError(
            f"{name}: expected an endpoint 'host:port' (or a port argument), "
            f"got {text!r}"
        )
    port = _listen_port(port_text, text, name)
    if host == "localhost":
        return Address.loopback_v4(), port
    if not host:
        raise ValueError(
            f"{name}: expected a host before ':', got {text!r}; "
            "use '0.0.0.0' or '[::]' for every interface"
        )
    if host.startswith("[") and host.endswith("]"):
        address = address_arg(host[1:-1], name)
        if address.is_v4:
            raise ValueError(f"{name}: only an IPv6 address may be in brackets")
        return address, port
    if "[" in host or "]" in host:
        raise ValueError(f"{name}: unbalanced brackets in {text!r}")
    if ":" in host:
        raise ValueError(
            f"{name}: an IPv6 address must be in brackets, as in '[::1]:80', "
            f"got {text!r}"
        )
    try:
        return address_arg(host, name), port
    except ValueError:
        raise ValueError(
            f"{name}: {host!r} is not a numeric IP address or 'localhost'; "
            "resolve host names first with ip.tcp.get_address_info()"
        ) from None


def _listen_port(text: str, endpoint: str, name: str) -> int:
    """An endpoint's port: digits, empty (0) or a TCP service name."""
    if not text:
        return 0
    try:
        service = service_arg(text, name)
    except ValueError:
        raise ValueError(
            f"{name}: the port must be digits (0..{MAX_PORT}) or a service "
            f"name, got {text!r} in {endpoint!r}"
        ) from None
    if isinstance(service, int):
        return service
    try:
        return _stdlib_socket.getservbyname(service, "tcp")
    except OSError:
        raise ValueError(
            f"{name}: unknown TCP service {service!r} in {endpoint!r}"
        ) from None
