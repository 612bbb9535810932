"""IP addresses (:class:`trio_emtcp.ip.Address`) and the argument checks
that turn user input into addresses, ports and families.

The text forms follow Emilua, which follows Asio, which follows glibc:
parsing is ``inet_pton`` (IPv6 first, then IPv4) plus Asio's rules for a
``%scope`` suffix, and printing is ``inet_ntop`` plus ``%ifname`` or
``%number``.  Python's :mod:`ipaddress` prints some addresses differently
(``::2:3`` where glibc prints ``::0.2.0.3``), so it is used only for the
conversions to and from its own types.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from typing import Any, Final, final, overload

from ._args import int_arg, no_nul, type_name

__all__ = ["Address", "address_arg", "family_arg"]

_AF_INET: Final = socket.AF_INET
_AF_INET6: Final = socket.AF_INET6

# The largest TCP port; Emilua wraps larger numbers modulo 65536, we refuse.
# ``sin6_scope_id`` is a ``uint32_t``.
_MAX_SCOPE_ID: Final = 0xFFFF_FFFF
# Decimal digits of ``_MAX_SCOPE_ID``: a longer digit string (without
# leading zeros) is out of range, checked before ``int()`` sees it.
_MAX_SCOPE_DIGITS: Final = 10

# Bound once: these run on the accept()/getsockname() path.
_inet_pton = socket.inet_pton
_inet_ntop = socket.inet_ntop
_new = object.__new__

# atoi() reads leading decimal digits; ``[0-9]`` (not ``\d``) keeps it ASCII.
_LEADING_DIGITS: Final = re.compile(r"[0-9]*")

_RESOLVE_HINT: Final = (
    "resolve host names first with ip.tcp.get_address_info() or use ip.dial()"
)

# Distinguishes ``Address()`` from ``Address(None)``: the first is 0.0.0.0
# (Emilua's ``ip.address.new()``), the second is a TypeError, so that a
# variable that is unexpectedly None never silently means "every interface".
_UNSET: Final = object()


def _is_scoped_link_local(packed: bytes) -> bool:
    """Whether an IPv6 address names its scope by interface (fe80::/10, ffx2::/16).

    These are the two kinds of address whose ``%scope`` Asio looks up as an
    interface name when parsing, and prints as one when formatting.
    """
    return (packed[0] == 0xFE and packed[1] & 0xC0 == 0x80) or (
        packed[0] == 0xFF and packed[1] & 0x0F == 0x02
    )


def _scope_from_text(packed: bytes, scope: str, name: str, text: str) -> int:
    """The scope id that Asio's ``socket_ops::inet_pton`` reads from ``scope``.

    For (multicast) link-local addresses the text is first looked up as an
    interface name; otherwise, or when there is no such interface, its
    leading decimal digits are read as with ``atoi``, so that an unknown
    name is scope 0 (``fe80::1%eth99`` is ``fe80::1``).

    Unlike ``atoi`` no leading blank or sign is skipped, and a number that
    does not fit ``sin6_scope_id`` is an error rather than C undefined
    behaviour.

    Raises:
        ValueError: if the number is larger than 4294967295, or the text has
            a NUL.
    """
    if "\0" in scope:
        # An interface name is a C string: a NUL would cut it.
        no_nul(text, name)
    if scope and _is_scoped_link_local(packed):
        try:
            index = socket.if_nametoindex(scope)
        except (OSError, ValueError):  # ValueError: a lone surrogate
            index = 0
        if index:
            return index
    match = _LEADING_DIGITS.match(scope)
    assert match is not None  # ``[0-9]*`` matches the empty string
    digits = match.group().lstrip("0")
    if len(digits) > _MAX_SCOPE_DIGITS or (digits and int(digits) > _MAX_SCOPE_ID):
        raise ValueError(
            f"{name}: scope id out of range 0..{_MAX_SCOPE_ID} in {text!r}"
        )
    return int(digits) if digits else 0


def _parse(text: str, name: str) -> tuple[bytes, int] | None:
    """Parse a numeric IP address as Asio's ``make_address`` does.

    Returns:
        ``(packed, scope_id)``, or None if ``text`` is not an IPv6 or IPv4
        literal.

    Raises:
        ValueError: if the text has a numeric scope id out of range.
    """
    # Asio tries IPv6 then IPv4.  Every IPv6 literal has a ':' and no IPv4
    # literal has one, so looking at ':' first gives the same answers
    # without paying for a failed inet_pton (an exception) per IPv4 text.
    if ":" in text:
        # Asio cuts at the first '%' before calling inet_pton (some
        # platforms reject a scope there) and parses the rest itself.
        host, percent, scope = text.partition("%")
        try:
            packed = _inet_pton(_AF_INET6, host)
        except (OSError, ValueError):  # ValueError: NUL or lone surrogate
            return None
        if not percent:
            return packed, 0
        return packed, _scope_from_text(packed, scope, name, text)
    try:
        return _inet_pton(_AF_INET, text), 0
    except (OSError, ValueError):
        return None


@final
class Address:
    """An IPv4 or IPv6 address, Emilua's ``ip.address``.

    ``Address()`` is ``0.0.0.0``.  ``Address(text)`` parses a numeric
    address: IPv6 first, then IPv4, both as strictly as glibc's
    ``inet_pton`` (no ``1.2.3``, no leading zeros, no blanks, no host
    names).  IPv6 text may end in ``%scope``: for link-local (``fe80::/10``)
    and multicast link-local addresses an interface name is looked up;
    otherwise, or when there is no such interface, the leading decimal
    digits are the scope id, so an unknown name gives scope 0, as in
    Emilua.  ``Address`` also accepts an :class:`ipaddress.IPv4Address`,
    an :class:`ipaddress.IPv6Address` (its ``scope_id`` read by the same
    rules) or another ``Address``.

    Unlike Emilua's, an ``Address`` is immutable and hashable: its
    ``scope_id`` is read-only, and :meth:`with_scope_id` returns a new
    address.  Two addresses are equal when they have the same family, the
    same bytes and the same scope id (``1.2.3.4`` is not
    ``::ffff:1.2.3.4``).  Ordering puts every IPv4 address before every
    IPv6 address, then compares bytes, then scope ids.

    ``str()`` is glibc's ``inet_ntop`` (``::ffff:1.2.3.4``, ``::0.2.0.3``,
    ``2001:db8::1``) followed, for a non-zero scope id, by ``%`` and the
    interface name when the address is (multicast) link-local and the
    interface exists, else by the number (``fe80::1%lo``,
    ``2001:db8::1%5``).

    Args:
        address: a numeric address as a ``str`` (with an optional
            ``%scope``; no NUL), an :class:`ipaddress.IPv4Address` or
            :class:`ipaddress.IPv6Address`, another ``Address``, or nothing
            for ``0.0.0.0``.

    Raises:
        TypeError: if the argument is not one of the types above.
        ValueError: if the text is not a numeric IPv6 or IPv4 address, its
            numeric scope id is larger than 4294967295, or its scope (an
            interface name) has a NUL.
    """

    # Immutable the way ipaddress and fractions.Fraction are: every public
    # attribute is a read-only property and __slots__ refuses new ones.  A
    # __setattr__ that refuses everything would also guard the private
    # slots, but then building one would need object.__setattr__ per slot,
    # which more than doubles the cost of _from_sockaddr, run on every
    # accept() and getsockname().
    #
    # _host: inet_ntop text; _text: str() (the same object when unscoped).
    # Both are computed on first use, since most addresses made by accept()
    # and getsockname() are never printed.
    __slots__ = ("_host", "_packed", "_scope_id", "_text")

    _packed: bytes
    _scope_id: int
    _host: str | None
    _text: str | None

    @overload
    def __new__(cls, /) -> Address: ...

    @overload
    def __new__(
        cls,
        address: str | ipaddress.IPv4Address | ipaddress.IPv6Address | Address,
        /,
    ) -> Address: ...

    # __new__ rather than __init__, so that nobody can re-initialize (and so
    # mutate) an existing address by calling __init__ on it again.
    def __new__(cls, address: object = _UNSET, /) -> Address:
        scope_id = 0
        if isinstance(address, str):
            parsed = _parse(address, "address")
            if parsed is None:
                raise ValueError(f"address: {address!r} is not a valid IP address")
            packed, scope_id = parsed
        elif address is _UNSET:
            packed = bytes(4)
        elif isinstance(address, Address):
            return address  # immutable: no copy needed
        elif isinstance(address, ipaddress.IPv4Address):
            packed = address.packed
        elif isinstance(address, ipaddress.IPv6Address):
            packed = address.packed
            if address.scope_id is not None:
                scope_id = _scope_from_text(
                    packed, address.scope_id, "address", str(address)
                )
        else:
            raise TypeError(
                "address: expected a str, an ip.Address, an ipaddress.IPv4Address "
                f"or an ipaddress.IPv6Address, got {type_name(address)}"
            )
        return cls._from_packed(packed, scope_id)

    @classmethod
    def _from_packed(cls, packed: bytes, scope_id: int = 0) -> Address:
        """Build from 4 or 16 bytes and a scope id, without checks."""
        self = _new(cls)
        self._packed = packed
        self._scope_id = scope_id
        self._host = None
        self._text = None
        return self

    @classmethod
    def _from_sockaddr(cls, family: int, sockaddr: tuple[Any, ...]) -> Address:
        """Build from what ``getsockname()``, ``getpeername()`` or ``accept()``
        returned for a socket of ``family``.

        An IPv6 host may carry ``%scope`` (older Pythons format it with
        ``getnameinfo``); the numeric scope id in the tuple wins over it.

        Raises:
            ValueError: if ``family`` is neither ``AF_INET`` nor ``AF_INET6``
                or the host is not a numeric address of that family.
        """
        try:
            if family == _AF_INET:
                # The hot case, inlined (_from_packed costs one more call).
                self = _new(cls)
                self._packed = _inet_pton(_AF_INET, sockaddr[0])
                self._scope_id = 0
                self._host = None
                self._text = None
                return self
            if family != _AF_INET6:
                raise ValueError(f"family: expected AF_INET or AF_INET6, got {family}")
            text: str = sockaddr[0]
            if "%" not in text:
                packed = _inet_pton(_AF_INET6, text)
                scope_id = sockaddr[3] if len(sockaddr) >= 4 else 0
            else:
                host, _, scope = text.partition("%")
                packed = _inet_pton(_AF_INET6, host)
                if len(sockaddr) >= 4:
                    scope_id = sockaddr[3]
                else:
                    scope_id = _scope_from_text(packed, scope, "sockaddr", text)
        except OSError:
            name = "AF_INET" if family == _AF_INET else "AF_INET6"
            raise ValueError(
                f"sockaddr: {sockaddr[0]!r} is not a numeric {name} address"
            ) from None
        return cls._from_packed(packed, scope_id)

    def _sockaddr(self, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
        """The address tuple the :mod:`socket` module takes for bind/connect.

        ``(text, port)`` for IPv4 and ``(text, port, 0, scope_id)`` for IPv6,
        the text without ``%scope`` so that no name lookup happens.  ``port``
        is not checked: callers check it once with ``_args.port_arg``.
        """
        host = self._host
        if host is None:
            host = self._make_host()
        if len(self._packed) == 4:
            return (host, port)
        return (host, port, 0, self._scope_id)

    # -- pickling ----------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        # Smaller and faster than the default reduction of a __slots__
        # class, and it does not carry the text caches along.
        return (Address._from_packed, (self._packed, self._scope_id))

    # -- constructors ------------------------------------------------------

    @classmethod
    def any_v4(cls) -> Address:
        """``0.0.0.0``, every IPv4 interface."""
        return cls._from_packed(bytes(4))

    @classmethod
    def any_v6(cls) -> Address:
        """``::``, every IPv6 interface."""
        return cls._from_packed(bytes(16))

    @classmethod
    def loopback_v4(cls) -> Address:
        """``127.0.0.1``."""
        return cls._from_packed(b"\x7f\x00\x00\x01")

    @classmethod
    def loopback_v6(cls) -> Address:
        """``::1``."""
        return cls._from_packed(bytes(15) + b"\x01")

    @classmethod
    def broadcast_v4(cls) -> Address:
        """``255.255.255.255``."""
        return cls._from_packed(b"\xff\xff\xff\xff")

    # -- conversions -------------------------------------------------------

    def to_v6(self) -> Address:
        """The IPv4-mapped IPv6 address of an IPv4 address (``::ffff:a.b.c.d``).

        Raises:
            ValueError: if this is an IPv6 address.
        """
        if len(self._packed) != 4:
            raise ValueError(f"to_v6: needs an IPv4 address, got {self}")
        return Address._from_packed(bytes(10) + b"\xff\xff" + self._packed)

    def to_v4(self) -> Address:
        """The IPv4 address inside an IPv4-mapped IPv6 address.

        Raises:
            ValueError: if this is an IPv4 address, or an IPv6 address that
                is not IPv4-mapped (``::ffff:0:0/96``).
        """
        if len(self._packed) != 16 or not self._v4_mapped():
            raise ValueError(f"to_v4: needs an IPv4-mapped IPv6 address, got {self}")
        return Address._from_packed(self._packed[12:])

    def with_scope_id(self, scope_id: int) -> Address:
        """This IPv6 address with another scope id (0 for none).

        Args:
            scope_id: an ``int`` in 0..4294967295 (``sin6_scope_id``).

        Raises:
            TypeError: if ``scope_id`` is not an ``int``.
            ValueError: if this is an IPv4 address, or ``scope_id`` is not in
                0..4294967295.
        """
        self._require_v6("with_scope_id")
        scope = int_arg(scope_id, "scope_id", maximum=_MAX_SCOPE_ID)
        return Address._from_packed(self._packed, scope)

    def to_ipaddress(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The equivalent :mod:`ipaddress` object.

        A non-zero scope id becomes the ``IPv6Address``'s ``scope_id`` as a
        number (not an interface name, which may later name another
        interface or none), so ``Address(a.to_ipaddress()) == a``.
        """
        if len(self._packed) == 4:
            return ipaddress.IPv4Address(self._packed)
        v6 = ipaddress.IPv6Address(self._packed)
        if self._scope_id:
            return ipaddress.IPv6Address(f"{v6.compressed}%{self._scope_id}")
        return v6

    # -- properties, any family -------------------------------------------

    @property
    def family(self) -> socket.AddressFamily:
        """:data:`socket.AF_INET` or :data:`socket.AF_INET6`."""
        return _AF_INET if len(self._packed) == 4 else _AF_INET6

    @property
    def packed(self) -> bytes:
        """The address in network byte order (4 or 16 bytes)."""
        return self._packed

    @property
    def is_v4(self) -> bool:
        """Whether this is an IPv4 address."""
        return len(self._packed) == 4

    @property
    def is_v6(self) -> bool:
        """Whether this is an IPv6 address (IPv4-mapped ones included)."""
        return len(self._packed) == 16

    @property
    def is_loopback(self) -> bool:
        """``127.0.0.0/8`` for IPv4, ``::1`` for IPv6 (not ``::ffff:127.0.0.1``)."""
        packed = self._packed
        if len(packed) == 4:
            return packed[0] == 0x7F
        return packed == _LOOPBACK_V6

    @property
    def is_multicast(self) -> bool:
        """``224.0.0.0/4`` for IPv4, ``ff00::/8`` for IPv6."""
        packed = self._packed
        if len(packed) == 4:
            return packed[0] & 0xF0 == 0xE0
        return packed[0] == 0xFF

    @property
    def is_unspecified(self) -> bool:
        """``0.0.0.0`` or ``::`` (whatever the scope id)."""
        return not any(self._packed)

    # -- properties, IPv6 only ---------------------------------------------

    def _require_v6(self, what: str) -> None:
        if len(self._packed) != 16:
            raise ValueError(f"{what}: needs an IPv6 address, got {self}")

    def _v4_mapped(self) -> bool:
        return self._packed[:12] == _V4_MAPPED_PREFIX

    @property
    def is_link_local(self) -> bool:
        """Whether this IPv6 address is link-local unicast, ``fe80::/10``.

        Raises:
            ValueError: if this is an IPv4 address.
        """
        self._require_v6("is_link_local")
        return self._packed[0] == 0xFE and self._packed[1] & 0xC0 == 0x80

    @property
    def is_site_local(self) -> bool:
        """Whether this IPv6 address is (deprecated) site-local, ``fec0::/10``.

        Raises:
            ValueError: if this is an IPv4 address.
        """
        self._require_v6("is_site_local")
        return self._packed[0] == 0xFE and self._packed[1] & 0xC0 == 0xC0

    @property
    def is_v4_mapped(self) -> bool:
        """Whether this IPv6 address is IPv4-mapped, ``::ffff:0:0/96``.

        Raises:
            ValueError: if this is an IPv4 address.
        """
        self._require_v6("is_v4_mapped")
        return self._v4_mapped()

    def _multicast_scope(self, what: str) -> int | None:
        """The scope nibble of an IPv6 multicast address, None if not multicast."""
        self._require_v6(what)
        packed = self._packed
        return packed[1] & 0x0F if packed[0] == 0xFF else None

    @property
    def is_multicast_node_local(self) -> bool:
        """Whether this is an interface-local IPv6 multicast address (scope 1).

        Raises:
            ValueError: if this is an IPv4 address.
        """
        return self._multicast_scope("is_multicast_node_local") == 0x01

    @property
    def is_multicast_link_local(self) -> bool:
        """Whether this is a link-local IPv6 multicast address (scope 2).

        Raises:
            ValueError: if this is an IPv4 address.
        """
        return self._multicast_scope("is_multicast_link_local") == 0x02

    @property
    def is_multicast_site_local(self) -> bool:
        """Whether this is a site-local IPv6 multicast address (scope 5).

        Raises:
            ValueError: if this is an IPv4 address.
        """
        return self._multicast_scope("is_multicast_site_local") == 0x05

    @property
    def is_multicast_org_local(self) -> bool:
        """Whether this is an organization-local IPv6 multicast address (scope 8).

        Raises:
            ValueError: if this is an IPv4 address.
        """
        return self._multicast_scope("is_multicast_org_local") == 0x08

    @property
    def is_multicast_global(self) -> bool:
        """Whether this is a global IPv6 multicast address (scope 0xe).

        Raises:
            ValueError: if this is an IPv4 address.
        """
        return self._multicast_scope("is_multicast_global") == 0x0E

    @property
    def scope_id(self) -> int:
        """The IPv6 scope id (an interface index), 0 for none.  Read-only.

        Raises:
            ValueError: if this is an IPv4 address.
        """
        self._require_v6("scope_id")
        return self._scope_id

    # -- text --------------------------------------------------------------

    def _make_host(self) -> str:
        host = _inet_ntop(self.family, self._packed)
        self._host = host
        return host

    def _make_text(self) -> str:
        host = self._host
        if host is None:
            host = self._make_host()
        scope_id = self._scope_id
        if not scope_id:
            text = host
        else:
            scope = str(scope_id)
            if _is_scoped_link_local(self._packed):
                # No such interface (any more): the number stays.
                with contextlib.suppress(OSError):
                    scope = socket.if_indextoname(scope_id)
            text = f"{host}%{scope}"
        self._text = text
        return text

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._make_text()
        return text

    def __repr__(self) -> str:
        return f"Address({str(self)!r})"

    # -- comparison --------------------------------------------------------

    def __hash__(self) -> int:
        # The length of the bytes tells the families apart.
        return hash((self._packed, self._scope_id))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._packed == other._packed and self._scope_id == other._scope_id

    def _key(self) -> tuple[int, bytes, int]:
        # IPv4 (4 bytes) sorts before IPv6 (16 bytes), as in Asio.
        return (len(self._packed), self._packed, self._scope_id)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._key() >= other._key()


_LOOPBACK_V6: Final = bytes(15) + b"\x01"
_V4_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"


def address_arg(value: object, name: str = "address") -> Address:
    """Check an address argument of ``bind`` and friends.

    Args:
        value: an :class:`Address`, or a ``str`` holding a numeric IPv4 or
            IPv6 address (IPv6 may end in ``%scope``).
        name: the argument's name, for error messages.

    Returns:
        The address.

    Raises:
        TypeError: if ``value`` is neither an ``Address`` nor a ``str``.
        ValueError: if the string is not a numeric IP address (host names
            are not resolved here), or its numeric scope id is out of range.
    """
    if isinstance(value, Address):
        return value
    if isinstance(value, str):
        parsed = _parse(value, name)
        if parsed is None:
            raise ValueError(
                f"{name}: {value!r} is not a numeric IP address; {_RESOLVE_HINT}"
            )
        return Address._from_packed(*parsed)
    raise TypeError(
        f"{name}: expected an ip.Address or a numeric IP string, got {type_name(value)}"
    )


def family_arg(value: object, name: str = "family") -> int:
    """Check a family argument of ``open`` and ``assign``.

    Args:
        value: ``"v4"``, ``"v6"``, or an :class:`Address` whose family is
            taken.
        name: the argument's name, for error messages.

    Returns:
        :data:`socket.AF_INET` or :data:`socket.AF_INET6`.

    Raises:
        TypeError: if ``value`` is neither a ``str`` nor an ``Address``.
        ValueError: if it is a ``str`` other than ``"v4"`` and ``"v6"``.
    """
    if isinstance(value, Address):
        return value.family
    if isinstance(value, str):
        if value == "v4":
            return _AF_INET
        if value == "v6":
            return _AF_INET6
        raise ValueError(f"{name}: must be 'v4', 'v6' or an ip.Address, got {value!r}")
    raise TypeError(
        f"{name}: expected 'v4', 'v6' or an ip.Address, got {type_name(value)}"
    )
