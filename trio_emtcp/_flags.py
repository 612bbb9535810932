"""Flag enums: message flags and address-info flags (Emilua's tables)."""

from __future__ import annotations

import enum
import socket

from ._args import flag_bits_arg, flag_names_arg, int_arg, is_int

__all__ = [
    "AddressInfoFlag",
    "MessageFlag",
    "NameInfoFlag",
    "address_info_flags_arg",
    "message_flags_arg",
    "name_info_flags_arg",
]


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
    (Emilua's ``ip.address_info_flag``), the platform's ``AI_*`` values.

    The lower-case names are the strings accepted in a flags list
    (``["canonical_name", "passive"]``), as Emilua takes them.
    """

    passive = socket.AI_PASSIVE
    canonical_name = socket.AI_CANONNAME
    numeric_host = socket.AI_NUMERICHOST
    numeric_service = socket.AI_NUMERICSERV
    v4_mapped = socket.AI_V4MAPPED
    all_matching = socket.AI_ALL
    address_configured = socket.AI_ADDRCONFIG


class NameInfoFlag(enum.IntFlag):
    """Flags for :func:`trio_emtcp.ip.tcp.get_name_info`, the platform's
    ``NI_*`` values; the lower-case names are the strings accepted in a
    flags list.
    """

    #: Fail (``EAI_NONAME``) rather than give the address as text when it has
    #: no name.
    name_required = socket.NI_NAMEREQD
    #: The address as text, without a lookup.
    numeric_host = socket.NI_NUMERICHOST
    #: The port as digits, without a services-database lookup.
    numeric_service = socket.NI_NUMERICSERV
    #: Only the host part of a local host's name.
    not_fully_qualified = socket.NI_NOFQDN
    #: The service name of the port for UDP rather than TCP.
    datagram = socket.NI_DGRAM


_MESSAGE_FLAG_NAMES = {flag.name: int(flag) for flag in MessageFlag if flag.name}


# The bits an ``int`` may carry beyond ip.MessageFlag (SPEC §13): harmless
# on a non-blocking socket (MSG_DONTWAIT), and for send only, MSG_MORE
# (cork) and MSG_NOSIGNAL where the platform has them.  Any other bit is
# refused: MSG_TRUNC would drop the bytes it reports, MSG_ERRQUEUE would
# make a read spin (EAGAIN on a readable socket), MSG_WAITALL would block
# the event loop's thread.
def _platform_bits(*names: str) -> dict[str, int]:
    return {name: value for name in names if (value := getattr(socket, name, 0))}


_ACCEPTED = {
    "receive": {**_MESSAGE_FLAG_NAMES, **_platform_bits("MSG_DONTWAIT")},
    "send": {
        **_MESSAGE_FLAG_NAMES,
        **_platform_bits("MSG_DONTWAIT", "MSG_MORE", "MSG_NOSIGNAL"),
    },
}

# Names for the bits a message names when it refuses them.
_MSG_NAMES = {
    value: name
    for name, value in sorted(vars(socket).items(), reverse=True)
    if name.startswith("MSG_")
    and isinstance(value, int)
    and value > 0
    and value & (value - 1) == 0
}


def message_flags_arg(flags: object, operation: str, name: str = "flags") -> int:
    """Turn ``flags`` (names, an ``int`` or a :class:`MessageFlag`) into an int.

    Args:
      operation: ``"receive"`` or ``"send"``: which bits an ``int`` may
        carry besides :class:`MessageFlag`'s, and how the message names
        the call.

    Raises:
      TypeError: ``flags`` is neither an int nor an iterable of str, or
        an item of it is not a str.
      ValueError: a name is unknown, the int is negative, or it has a bit
        ``operation`` does not take (the message names it).
    """
    bits = flag_names_arg(
        flags, name, _MESSAGE_FLAG_NAMES, "an int or an ip.MessageFlag"
    )
    return flag_bits_arg(
        bits, name, _ACCEPTED[operation], call=f"{operation}()", bit_names=_MSG_NAMES
    )


_ADDRESS_INFO_FLAG_NAMES = {
    flag.name: int(flag) for flag in AddressInfoFlag if flag.name
}
_NAME_INFO_FLAG_NAMES = {flag.name: int(flag) for flag in NameInfoFlag if flag.name}


def address_info_flags_arg(flags: object, name: str = "flags") -> int:
    """``get_address_info``'s flags (names, an ``int`` or an ``AddressInfoFlag``).

    An ``int`` is a C ``int`` for the resolver, which refuses bits it does
    not know itself.

    Raises:
      TypeError: neither an ``int`` nor an iterable of ``str``.
      ValueError: an unknown name, or an ``int`` outside 0..2**31 - 1.
    """
    if is_int(flags):
        return int_arg(flags, name)
    return flag_names_arg(
        flags, name, _ADDRESS_INFO_FLAG_NAMES, "an int, an ip.AddressInfoFlag or None"
    )


def name_info_flags_arg(flags: object, name: str = "flags") -> int:
    """``get_name_info``'s flags (names, an ``int`` or a ``NameInfoFlag``).

    Raises:
      TypeError: neither an ``int`` nor an iterable of ``str``.
      ValueError: an unknown name, or a bit that is no ``NameInfoFlag``.
    """
    bits = flag_names_arg(
        flags, name, _NAME_INFO_FLAG_NAMES, "an int or an ip.NameInfoFlag"
    )
    return flag_bits_arg(
        bits, name, _NAME_INFO_FLAG_NAMES, call="get_name_info()", bit_names={}
    )
