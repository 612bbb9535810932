"""Flag enums: message flags and address-info flags (Emilua's tables)."""

from __future__ import annotations

import enum
import socket
from collections.abc import Iterable

__all__ = ["AddressInfoFlag", "MessageFlag", "message_flags_arg"]


class MessageFlag(enum.IntFlag):
    """Flags for :meth:`Socket.receive <trio_emtcp.ip.tcp.Socket.receive>` and
    :meth:`~trio_emtcp.ip.tcp.Socket.send` (Emilua's ``ip.message_flag``).

    The values are the platform's ``MSG_*`` constants, so an ``int`` built
    from the :mod:`socket` module works too.  The lower-case names are the
    strings accepted in a flags list.
    """

    out_of_band = socket.MSG_OOB
    peek = socket.MSG_PEEK
    do_not_route = socket.MSG_DONTROUTE
    end_of_record = getattr(socket, "MSG_EOR", 0x80)


class AddressInfoFlag(enum.IntFlag):
    """Flags for :func:`trio_emtcp.ip.tcp.get_address_info`
    (Emilua's ``ip.address_info_flag``), the platform's ``AI_*`` values."""

    passive = socket.AI_PASSIVE
    canonical_name = socket.AI_CANONNAME
    numeric_host = socket.AI_NUMERICHOST
    numeric_service = socket.AI_NUMERICSERV
    v4_mapped = socket.AI_V4MAPPED
    all_matching = socket.AI_ALL
    address_configured = socket.AI_ADDRCONFIG


_MESSAGE_FLAG_NAMES = {flag.name: int(flag) for flag in MessageFlag if flag.name}


def message_flags_arg(flags: object, name: str = "flags") -> int:
    """Turn ``flags`` (names, an ``int`` or a :class:`MessageFlag`) into an int.

    Raises:
      TypeError: ``flags`` is neither an int nor an iterable of str, or
        an item of it is not a str.
      ValueError: a name is unknown, or the int is negative.
    """
    if isinstance(flags, int) and not isinstance(flags, bool):
        if flags < 0:
            raise ValueError(f"{name}: must be >= 0, got {flags}")
        return int(flags)
    if isinstance(flags, (str, bytes)) or not isinstance(flags, Iterable):
        raise TypeError(
            f"{name}: expected an iterable of flag names, an int or an "
            f"ip.MessageFlag, got {type(flags).__name__}"
        )
    value = 0
    for item in flags:
        if not isinstance(item, str):
            raise TypeError(
                f"{name}: expected flag names (str), got {type(item).__name__}"
            )
        try:
            value |= _MESSAGE_FLAG_NAMES[item]
        except KeyError:
            known = ", ".join(sorted(_MESSAGE_FLAG_NAMES))
            raise ValueError(
                f"{name}: unknown flag {item!r}; known flags: {known}"
            ) from None
    return value
