"""Name resolution and connecting by name: ``ip.tcp.get_address_info`` (and
its ``_v4_``/``_v6_`` variants), ``ip.connect``, and ``ip.dial`` (Emilua's
``ip.tcp.dial``, with happy eyeballs).

Lookups go through :func:`trio.socket.getaddrinfo`: numeric hosts are
answered at once, real names in a worker thread that a Trio cancellation
abandons, and :func:`trio.socket.set_custom_hostname_resolver` is honoured.
"""

from __future__ import annotations

import contextlib
import errno
import math
import socket as _stdlib_socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, final

import trio

from ._address import Address, address_arg
from ._args import (
    no_nul,
    number_arg,
    port_arg,
    service_arg,
    type_name,
)
from ._driver import cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled
from ._endpoint import tostring
from ._errors import NotFoundError
from ._flags import address_info_flags_arg
from ._socket import Socket
from ._util import BaseExceptionGroup_ as _BaseExceptionGroup

__all__ = [
    "DEFAULT_HAPPY_EYEBALLS_DELAY",
    "AddressInfo",
    "connect",
    "dial",
    "get_address_info",
    "get_address_v4_info",
    "get_address_v6_info",
]

_AF_INET: Final = _stdlib_socket.AF_INET
_AF_INET6: Final = _stdlib_socket.AF_INET6
_AF_UNSPEC: Final = _stdlib_socket.AF_UNSPEC
_SOCK_STREAM: Final = _stdlib_socket.SOCK_STREAM
_IPPROTO_TCP: Final = _stdlib_socket.IPPROTO_TCP
_IPPROTO_IP: Final = _stdlib_socket.IPPROTO_IP
# Python names it from 3.12 on; Linux has had it since 4.2 (value 24).
_IP_BIND_ADDRESS_NO_PORT: Final[int | None] = getattr(
    _stdlib_socket,
    "IP_BIND_ADDRESS_NO_PORT",
    24 if sys.platform.startswith("linux") else None,
)

# The flags glibc's getaddrinfo uses when it is given no hints, which is
# what Emilua (through Asio) passes when the caller gives none: only
# families with a configured address, and IPv4-mapped results for an IPv6
# query.  The v4 variant starts from 0 and the v6 one from AI_V4MAPPED, as
# Emilua does (research notes §10).
_DEFAULT_FLAGS: Final = _stdlib_socket.AI_ADDRCONFIG | _stdlib_socket.AI_V4MAPPED
_DEFAULT_V4_FLAGS: Final = 0
_DEFAULT_V6_FLAGS: Final = _stdlib_socket.AI_V4MAPPED

#: Seconds :func:`dial` waits for an attempt before starting the next one in
#: parallel: the "Connection Attempt Delay" that RFC 8305 §5 recommends
#: (also trio.open_tcp_stream's and anyio.connect_tcp's default).
DEFAULT_HAPPY_EYEBALLS_DELAY: Final = 0.25


@final
@dataclass(frozen=True, slots=True)
class AddressInfo:
    """One result of :func:`~trio_emtcp.ip.tcp.get_address_info`.

    Emilua returns a table ``{address = ..., port = ...}``; this is the same
    record, immutable.  :func:`~trio_emtcp.ip.connect` takes a list of them.

    Attributes:
      address: the resolved :class:`~trio_emtcp.ip.Address`.
      port: the resolved port.
      canonical_name: the host's canonical name when
        :attr:`AddressInfoFlag.canonical_name
        <trio_emtcp.ip.AddressInfoFlag.canonical_name>` was asked for (the
        same on every entry of one lookup: the resolver's answer, or the
        name queried when it gave none), else ``None``.
    """

    address: Address
    port: int
    canonical_name: str | None = None


# -- get_address_info ---------------------------------------------------------


def _flags_arg(flags: object, default: int) -> int:
    if flags is None:
        return default
    return address_info_flags_arg(flags)


def _host_arg(host: object) -> tuple[str | None, int]:
    """``(host for getaddrinfo, extra flags)``."""
    if isinstance(host, Address):
        # Emilua stringifies an address and adds the numeric-host flag, so
        # no resolver is ever asked about it.
        return str(host), _stdlib_socket.AI_NUMERICHOST
    if isinstance(host, str):
        # A NUL would end the C string there: "127.0.0.1\0.evil.example"
        # would resolve as 127.0.0.1 past any check made on the text.
        no_nul(host, "host")
        # Empty means "no host" (the wildcard with ``passive``, else
        # loopback), as in Asio; getaddrinfo wants NULL for that.
        return (host or None), 0
    raise TypeError(
        f"host: expected a str or an ip.Address, got {type_name(host)}"
        + ("; use '' for no host" if host is None else "")
    )


def _service_arg(service: object) -> tuple[str | int | None, int]:
    """``(service for getaddrinfo, extra flags)``: a port goes as a number."""
    checked = service_arg(service)
    if isinstance(checked, int):
        return checked, _stdlib_socket.AI_NUMERICSERV
    return (checked or None), 0


def _lookup_error(
    exc: _stdlib_socket.gaierror, host: str | None, service: str | int | None
) -> _stdlib_socket.gaierror:
    """The resolver's error, its message naming what it could not find."""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code == _stdlib_socket.EAI_SERVICE:
        message = f"service: unknown TCP service {service!r} ({reason})"
    elif code == _stdlib_socket.EAI_BADFLAGS:
        message = f"flags: refused by the resolver ({reason})"
    elif host is None:
        message = f"service: cannot resolve {service!r} without a host ({reason})"
    else:
        message = f"host: cannot resolve {host!r} ({reason})"
    return _stdlib_socket.gaierror(code, message)


async def _get_address_info(
    host: object, service: object, flags: object, family: int, default: int
) -> list[AddressInfo]:
    try:
        flags_value = _flags_arg(flags, default)
        host_text, host_flags = _host_arg(host)
        service_value, service_flags = _service_arg(service)
        if host_text is None and service_value is None:
            raise ValueError("host: host and service cannot both be empty")
    except (TypeError, ValueError):
        await checkpoint()
        raise
    flags_value |= host_flags | service_flags
    try:
        # A full checkpoint in every case: trio answers numeric hosts inline
        # (with a checkpoint around it) and names in a worker thread.
        raw = await trio.socket.getaddrinfo(
            host_text,
            service_value,
            family=family,
            type=_SOCK_STREAM,
            proto=_IPPROTO_TCP,
            flags=flags_value,
        )
    except _stdlib_socket.gaierror as exc:
        raise _lookup_error(exc, host_text, service_value) from None
    except UnicodeError as exc:
        # trio encodes real names with IDNA 2008 first: "a..b", a label of
        # more than 63 characters, a lone surrogate...  It refuses them after
        # its cancel point and before any schedule point: make the one the
        # call owes (SPEC §4).
        await cancel_shielded_checkpoint()
        raise ValueError(
            f"host: {host_text!r} is not a valid host name ({exc})"
        ) from None

    canonical: str | None = None
    if flags_value & _stdlib_socket.AI_CANONNAME:
        # glibc puts the canonical name on the first entry only; Asio gives
        # it to every entry, falling back on the name that was asked for.
        canonical = next((entry[3] for entry in raw if entry[3]), host_text)
    results: list[AddressInfo] = []
    seen: set[tuple[Address, int]] = set()
    for af, socktype, _proto, _canonname, sockaddr in raw:
        # The hints already ask for TCP over IPv4/IPv6; a custom resolver
        # may answer more than it was asked.
        if af not in (_AF_INET, _AF_INET6) or socktype != _SOCK_STREAM:
            continue
        address = Address._from_sockaddr(af, sockaddr)
        key = (address, int(sockaddr[1]))
        if key in seen:
            continue
        seen.add(key)
        results.append(AddressInfo(address, key[1], canonical))
    return results


async def get_address_info(
    host: str | Address,
    service: str | int,
    flags: int | Iterable[str] | None = None,
) -> list[AddressInfo]:
    """Resolve a host and a service to TCP endpoints, IPv4 and IPv6.

    Emilua's ``ip.tcp.get_address_info``.  Only ``SOCK_STREAM``/TCP results
    are returned, in the resolver's order (RFC 6724 preference), without
    duplicates.  Numeric hosts are answered without a thread; names are
    looked up in a worker thread (or by the resolver installed with
    :func:`trio.socket.set_custom_hostname_resolver`).  A Trio cancellation
    ends the wait at once (the thread is abandoned, its answer dropped).

    Args:
      host: a host name or numeric address as a ``str`` without NUL
        (``""`` for none: the wildcard address with ``passive``, loopback
        without), or an :class:`~trio_emtcp.ip.Address`, which adds
        ``numeric_host`` and is never looked up.
      service: a port, as an ``int`` in 0..65535 or as decimal digits
        (``"8080"``; no sign, no blanks), which adds ``numeric_service``;
        or a name from the local services database (``"http"``; no NUL);
        ``""`` for none.  The resolver never reads a port from text
        itself, so it cannot wrap one (``"+65616"`` would be port 80).
      flags: an iterable of flag names, as Emilua takes them
        (``["canonical_name", "v4_mapped"]``; the names of
        :class:`~trio_emtcp.ip.AddressInfoFlag`), or
        :class:`~trio_emtcp.ip.AddressInfoFlag` values (or an ``int`` in
        0..2**31 - 1; the resolver refuses bits it does not know); ``None``
        for glibc's defaults, ``address_configured | v4_mapped``, as in
        Emilua; ``()`` for no flag at all.

    Returns:
      The entries, each with ``address``, ``port`` and ``canonical_name``
      (``None`` unless ``canonical_name`` was in ``flags``).

    Raises:
      TypeError: ``host``, ``service`` or ``flags`` has the wrong type.
      ValueError: ``service`` is out of range or a number written with a
        sign or blanks, ``flags`` is out of range or holds an unknown name
        (the message lists the known ones), ``host`` or ``service``
        has a NUL, both are empty, or ``host`` is not a valid name (IDNA).
      socket.gaierror: the resolver failed; the errno is the ``EAI_*``
        code (``EAI_NONAME`` for an unknown host, ``EAI_SERVICE`` for an
        unknown service) and the message names the host or service.
    """
    return await _get_address_info(host, service, flags, _AF_UNSPEC, _DEFAULT_FLAGS)


async def get_address_v4_info(
    host: str | Address,
    service: str | int,
    flags: int | Iterable[str] | None = None,
) -> list[AddressInfo]:
    """:func:`get_address_info` restricted to IPv4 (``AF_INET``).

    Args:
      host: as for :func:`get_address_info`.
      service: as for :func:`get_address_info`.
      flags: as for :func:`get_address_info`, but ``None`` means no flag at
        all, as in Emilua.

    Raises:
      TypeError, ValueError, socket.gaierror: as :func:`get_address_info`
        (an IPv6 ``host`` is a ``gaierror``).
    """
    return await _get_address_info(host, service, flags, _AF_INET, _DEFAULT_V4_FLAGS)


async def get_address_v6_info(
    host: str | Address,
    service: str | int,
    flags: int | Iterable[str] | None = None,
) -> list[AddressInfo]:
    """:func:`get_address_info` restricted to IPv6 (``AF_INET6``).

    Args:
      host: as for :func:`get_address_info`.
      service: as for :func:`get_address_info`.
      flags: as for :func:`get_address_info`, but ``None`` means
        ``v4_mapped``, as in Emilua: a host with only IPv4 addresses
        resolves to IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``).

    Raises:
      TypeError, ValueError, socket.gaierror: as :func:`get_address_info`.
    """
    return await _get_address_info(host, service, flags, _AF_INET6, _DEFAULT_V6_FLAGS)


# -- ip.connect ---------------------------------------------------------------

# What ip.connect's ``condition`` is called with: (last_error, address, port);
# its answer is only tested for truth, as in Lua.
Condition = Callable[[OSError | None, Address, int], object]


def _endpoint_of(entry: object, index: int) -> tuple[Address, int]:
    """The ``(address, port)`` of one entry given to :func:`connect`."""
    name = f"entries[{index}]"
    try:
        address: object = entry.address  # type: ignore[attr-defined]
        port: object = entry.port  # type: ignore[attr-defined]
    except AttributeError:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise TypeError(
                f"{name}: expected an ip.AddressInfo (or an object with "
                f"address and port) or an (address, port) pair, "
                f"got {type_name(entry)}"
            ) from None
        address, port = entry
    return address_arg(address, f"{name}.address"), port_arg(port, f"{name}.port")


async def connect(
    sock: Socket,
    entries: Iterable[AddressInfo | tuple[Address | str, int]],
    condition: Condition | None = None,
) -> tuple[Address, int]:
    """Connect ``sock`` to the first entry that accepts, trying them in order.

    Emilua's ``ip.connect``.  For each entry, ``condition(last_error,
    address, port)`` is asked first (if given); a falsy answer skips the
    entry.  ``last_error`` is ``None`` until an attempt has failed, then the
    error of the latest failed attempt.  Before each attempt an open
    ``sock`` is **closed** (as in Emilua: a socket bound or connected
    beforehand loses that), then ``sock.connect(address, port)`` opens it
    with the entry's family.

    Only :class:`OSError` counts as a failed attempt (this includes
    :class:`~trio_emtcp.OperationAborted` from another task's
    ``sock.cancel()``); anything else, and the task's own
    :class:`trio.Cancelled`, propagates at once.  After a failure ``sock``
    is left as the failed attempt left it (open).

    Args:
      sock: the socket to connect.
      entries: :class:`~trio_emtcp.ip.AddressInfo` objects (anything with
        ``address`` and ``port`` attributes) or ``(address, port)`` pairs;
        an address may be a numeric IP string.
      condition: ``None``, or a callable deciding whether to try an entry.

    Returns:
      The ``(address, port)`` that ``sock`` is now connected to.

    Raises:
      TypeError: an argument or an entry has the wrong type.
      ValueError: an entry has a bad address or port.
      trio_emtcp.NotFoundError: no entry was tried: ``entries`` is empty, or
        ``condition`` skipped them all.
      OSError: every tried entry failed; the last attempt's error is
        re-raised.
    """
    await checkpoint_if_cancelled()
    attempted = False
    last_error: OSError | None = None
    try:
        if not isinstance(sock, Socket):
            raise TypeError(f"sock: expected an ip.tcp.Socket, got {type_name(sock)}")
        if condition is not None and not callable(condition):
            raise TypeError(
                f"condition: expected a callable or None, got {type_name(condition)}"
            )
        try:
            iterator = iter(entries)
        except TypeError:
            raise TypeError(
                f"entries: expected an iterable of ip.AddressInfo, "
                f"got {type_name(entries)}"
            ) from None
        seen_any = False
        for index, entry in enumerate(iterator):
            seen_any = True
            address, port = _endpoint_of(entry, index)
            if condition is not None and not condition(last_error, address, port):
                continue
            if sock.is_open:
                sock.close()
            attempted = True
            try:
                # Socket.connect is a full checkpoint on every outcome.
                await sock.connect(address, port)
            except OSError as exc:
                last_error = exc
                continue
            return address, port
    except BaseException:
        if not attempted:
            await cancel_shielded_checkpoint()
        raise
    if last_error is not None:
        raise last_error
    await cancel_shielded_checkpoint()
    if seen_any:
        raise NotFoundError("condition: every entry was skipped")
    raise NotFoundError("entries: no entry to connect to")


# -- ip.dial --------------------------------------------------------------------


def _delay_arg(delay: object) -> float:
    if delay is None:
        return math.inf
    return number_arg(
        delay, "happy_eyeballs_delay", expected="a number of seconds or None"
    )


def _interleave(entries: list[AddressInfo]) -> list[AddressInfo]:
    """Alternate address families, starting with the resolver's first choice.

    RFC 8305 §4 with a "First Address Family Count" of 1: the first entry
    stays first (getaddrinfo already sorted by RFC 6724), then the families
    take turns, each keeping its own order.
    """
    if not entries:
        return []
    first_family = entries[0].address.family
    first = [e for e in entries if e.address.family == first_family]
    other = [e for e in entries if e.address.family != first_family]
    out: list[AddressInfo] = []
    for i in range(max(len(first), len(other))):
        out.extend(group[i] for group in (first, other) if i < len(group))
    return out


def _bind_local(sock: Socket, local: Address, remote: Address) -> None:
    """Open ``sock`` bound to ``local`` (any port), to connect to ``remote``.

    As ``trio.open_tcp_stream``'s ``local_address``: the port is left to
    ``connect``, which picks one for the whole 4-tuple (with
    ``IP_BIND_ADDRESS_NO_PORT``; a plain ``bind`` to port 0 would reserve
    a port of its own and run out of them under many connections).

    Raises:
      OSError: ``local`` is of the other family than ``remote``
        (``EAFNOSUPPORT``), or the bind failed (``EADDRNOTAVAIL``...).
    """
    if local.family != remote.family:
        raise OSError(
            errno.EAFNOSUPPORT,
            f"local_address {local} cannot reach {remote}: the address families differ",
        )
    sock.open(local)
    if _IP_BIND_ADDRESS_NO_PORT is not None:
        # Best effort, as in Trio: an older kernel only loses the saving.
        with contextlib.suppress(OSError):
            sock.setsockopt(_IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
    sock.bind(local, 0)


def _cannot_connect(host: object, service: object) -> str:
    """``cannot connect to example.com port 80``: how a failed dial begins.

    The host and the service as the caller gave them (an ``Address`` as its
    text), as ``curl`` and ``ssh`` word it (SPEC §12).
    """
    return f"cannot connect to {host} port {service}"


class _Race:
    """Shared state of one :func:`dial`: the winner and the failures."""

    __slots__ = ("failures", "local", "winner")

    def __init__(self, local: Address | None) -> None:
        self.winner: Socket | None = None
        self.local = local
        # (candidate index, entry, error), in the order they failed.
        self.failures: list[tuple[int, AddressInfo, OSError]] = []

    async def attempt(
        self,
        index: int,
        entry: AddressInfo,
        failed: trio.Event,
        nursery: trio.Nursery,
    ) -> None:
        sock = Socket()
        try:
            if self.local is not None:
                _bind_local(sock, self.local, entry.address)
            await sock.connect(entry.address, entry.port)
            # As trio.open_tcp_stream does (SPEC §7): without it a
            # request/response exchange waits for Nagle and delayed ACKs.
            sock.set_option("tcp_no_delay", True)
        except OSError as exc:
            sock.close()
            self.failures.append((index, entry, exc))
            failed.set()
            return
        except BaseException:
            # Lost the race (the nursery was cancelled) or the caller was
            # cancelled: Socket.connect leaves the socket open either way.
            sock.close()
            raise
        if self.winner is None:
            self.winner = sock
            nursery.cancel_scope.cancel()
        else:
            # Two connects completed in the same tick; the first one won.
            sock.close()

    def error(self, host: object, service: object) -> tuple[OSError, OSError]:
        """One OSError for a dial where every attempt failed, and its cause
        (the error of the attempt that failed last)."""
        ordered = sorted(self.failures, key=lambda failure: failure[0])
        details = "; ".join(
            f"{tostring(entry.address, entry.port)}: {exc.strerror or exc}"
            for _, entry, exc in ordered
        )
        last = self.failures[-1][2]
        # No "host:" prefix: that names an argument that is wrong, and here
        # the arguments were fine; the message says what was tried.
        exc = OSError(last.errno, f"{_cannot_connect(host, service)}: {details}")
        # Every attempt as (address, port, error), in the order tried.
        exc.attempts = tuple(  # type: ignore[attr-defined]
            (entry.address, entry.port, error) for _, entry, error in ordered
        )
        return exc, last


async def dial(
    host: str | Address,
    service: str | int,
    *,
    local_address: str | Address | None = None,
    happy_eyeballs_delay: float | None = DEFAULT_HAPPY_EYEBALLS_DELAY,
) -> Socket:
    """Resolve ``host`` and ``service`` and connect to one of the results.

    Emilua's ``ip.tcp.dial`` (:func:`trio_emtcp.ip.tcp.dial` is this same
    function): a host given as an :class:`~trio_emtcp.ip.Address` and a
    service given as an ``int`` are not looked up.  Beyond Emilua: the
    results of :func:`~trio_emtcp.ip.tcp.get_address_info` (default flags)
    are reordered so that IPv6 and IPv4 take turns, starting with the
    resolver's first choice (RFC 8305 §4), then raced as RFC 8305 §5 says:
    the next attempt starts when the previous one fails or after
    ``happy_eyeballs_delay`` seconds, whichever is first; the first
    connection made wins and every other attempt is cancelled and closed.
    Nothing is left open on any failure or cancellation.

    The socket returned has ``tcp_no_delay`` on, as
    :func:`trio.open_tcp_stream` does (a socket built by hand keeps
    Emilua's default, off): a request/response protocol would otherwise
    wait about 40 ms per request for Nagle's algorithm and the peer's
    delayed acknowledgement.

    Args:
      host: a host name or numeric address (a ``str`` without NUL), or an
        :class:`~trio_emtcp.ip.Address`.
      service: a port or a service name, as for ``get_address_info``.
      local_address: ``None``, or the local address to connect from (an
        ``Address`` or a numeric literal, as for ``bind``), as in
        :func:`trio.open_tcp_stream`: each attempt binds it before
        connecting, with the port left to the kernel
        (``IP_BIND_ADDRESS_NO_PORT`` where the platform has it).  An
        attempt at an address of the other family fails (``EAFNOSUPPORT``)
        and the race goes on.
      happy_eyeballs_delay: seconds (an ``int`` or ``float`` >= 0) to give
        an attempt before starting the next one in parallel; ``None`` to
        try strictly one at a time (as Trio's documentation describes
        ``None``; Trio's own code starts the next attempt after 0.25 s even
        then).

    Returns:
      A new connected :class:`~trio_emtcp.ip.tcp.Socket`, owned by the
      caller.

    Raises:
      TypeError, ValueError: bad arguments (see ``get_address_info``), a
        negative or NaN ``happy_eyeballs_delay``, or a ``local_address``
        that is not a numeric address (resolve names first).
      socket.gaierror: the lookup failed.
      OSError: every attempt failed.  One ``OSError`` (not a group) with the
        errno (and builtin subclass) of the last failure, which is also its
        ``__cause__``; the message reads "cannot connect to HOST port
        SERVICE: " and lists each address with its error
        (``[Errno 111] cannot connect to localhost port 8080:
        [::1]:8080: Connection refused; 127.0.0.1:8080: Connection
        refused``), and the ``attempts`` attribute holds ``(address, port,
        error)`` triples in the order tried.  Also (without an errno) when
        the resolver answered no address at all.
    """
    try:
        delay = _delay_arg(happy_eyeballs_delay)
        local = (
            None
            if local_address is None
            else address_arg(local_address, "local_address")
        )
    except (TypeError, ValueError):
        await checkpoint()
        raise
    candidates = _interleave(await get_address_info(host, service))
    if not candidates:
        # getaddrinfo never answers an empty list; a custom resolver might.
        raise OSError(
            f"{_cannot_connect(host, service)}: the name resolved to no address"
        )
    race = _Race(local)
    try:
        async with trio.open_nursery() as nursery:
            last = len(candidates) - 1
            for index, entry in enumerate(candidates):
                failed = trio.Event()
                nursery.start_soon(race.attempt, index, entry, failed, nursery)
                if index < last:
                    with trio.move_on_after(delay):
                        await failed.wait()
    except BaseException as exc:
        if race.winner is not None:
            race.winner.close()
            race.winner = None
        if (
            isinstance(exc, _BaseExceptionGroup)
            and exc.split(trio.Cancelled)[1] is None
        ):
            # Strict exception groups wrap the Cancelled of our tasks in a
            # group; SPEC §4 promises a plain trio.Cancelled.  Cancellation
            # is level-triggered, so one more checkpoint raises it bare.
            await checkpoint()
        raise
    if race.winner is None:
        error, last_error = race.error(host, service)
        raise error from last_error
    return race.winner
