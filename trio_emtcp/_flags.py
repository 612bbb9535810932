"""Flag enums: message flags and address-info flags (Emilua's tables)."""

from __future__ import annotations

import enum
import socket

from ._args import flag_names_arg

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
    return flag_names_arg(
        flags, name, _MESSAGE_FLAG_NAMES, "an int or an ip.MessageFlag"
    )
