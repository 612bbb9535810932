"""Reverse resolution and the host's own name: ``ip.tcp.get_name_info`` and
``ip.host_name`` (Emilua's newest ``ip`` module).

The lookup goes through :func:`trio.socket.getnameinfo`: in a worker thread
that a Trio cancellation abandons, or through the resolver installed with
:func:`trio.socket.set_custom_hostname_resolver`.
"""

from __future__ import annotations

import socket as _stdlib_socket
from dataclasses import dataclass
from typing import final

import trio

from ._address import Address, address_arg
from ._args import port_arg
from ._driver import checkpoint
from ._flags import name_info_flags_arg

__all__ = ["NameInfo", "get_name_info", "host_name"]


@final
@dataclass(frozen=True)
class NameInfo:
    """One result of :func:`~trio_emtcp.ip.tcp.get_name_info`.

    Emilua returns a table ``{address = ..., port = ..., host_name = ...,
    service_name = ...}``; this is the same record, immutable.

    Attributes:
      address: the :class:`~trio_emtcp.ip.Address` that was looked up.
      port: the port that was looked up.
      host_name: its name, or the address as text where it has none (or
        with ``numeric_host``).
      service_name: the port's TCP service name, or the port's digits where
        it has none (or with ``numeric_service``).
    """

    address: Address
    port: int
    host_name: str
    service_name: str


async def get_name_info(
    address: Address | str, port: int, flags: object = ()
) -> list[NameInfo]:
    """Reverse-resolve an address and a port: their names.

    Emilua's ``ip.tcp.get_name_info`` (Asio's reverse resolve): a list of
    one entry.  The lookup runs in a worker thread, as Trio's
    :func:`trio.socket.getnameinfo` does; a Trio cancellation ends the wait
    at once (the thread is abandoned, its answer dropped).

    Args:
      address: an :class:`~trio_emtcp.ip.Address`, or a numeric IP literal
        (``%scope`` allowed for IPv6); host names are refused.
      port: an ``int`` in 0..65535.
      flags: an iterable of the names of :class:`~trio_emtcp.ip.NameInfoFlag`
        (``"name_required"``, ``"numeric_host"``, ``"numeric_service"``,
        ``"not_fully_qualified"``, ``"datagram"``), or an ``int`` /
        ``NameInfoFlag`` of those bits; ``()`` for none.

    Returns:
      One :class:`~trio_emtcp.ip.NameInfo`.

    Raises:
      TypeError: an argument has the wrong type.
      ValueError: ``address`` is not a numeric address, ``port`` is out of
        range, or ``flags`` holds an unknown name or bit.
      socket.gaierror: the resolver failed (``EAI_NONAME`` with
        ``name_required`` for an address without a name); the message
        names the address.
    """
    try:
        where = address_arg(address, "address")
        number = port_arg(port)
        bits = name_info_flags_arg(flags)
    except (TypeError, ValueError):
        await checkpoint()
        raise
    try:
        host, service = await trio.socket.getnameinfo(where._sockaddr(number), bits)
    except _stdlib_socket.gaierror as exc:
        reason = exc.strerror or str(exc)
        raise _stdlib_socket.gaierror(
            exc.errno, f"address: cannot look up {where} port {number} ({reason})"
        ) from None
    return [NameInfo(where, number, host, service)]


def host_name() -> str:
    """The name of this host (Emilua's ``ip.host_name``, ``gethostname``).

    Raises:
      OSError: the system could not tell.
    """
    return _stdlib_socket.gethostname()
