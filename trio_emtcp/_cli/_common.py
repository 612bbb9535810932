"""What the commands share: errors, the parser, argument types, network helpers.

Everything here uses the library's public API only (SPEC §11), so the
command line doubles as an example of it.
"""

from __future__ import annotations

import argparse
import math
import re
import socket as _stdlib_socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, final

import trio

from .. import ip
from ..ip import Address
from ..ip.tcp import Acceptor, Socket

PROG = "python -m trio_emtcp"


DEFAULT_HOST = "127.0.0.1"


# The port SPEC §9 names in its example; any free port would do.
DEFAULT_PORT = 7000


Command = Callable[[argparse.Namespace], Awaitable[int]]


@final
class CommandError(Exception):
    """A failure to report on one line of stderr, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def describe(exc: OSError) -> str:
    """The OS's words for an error, lowercase-led: 'connection refused'."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


@final
class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that knows which coroutine runs its command.

    ``add_parser(name, run=coroutine_function, ...)`` records the command,
    so that adding one is a single call; errors fit on one line.
    """

    def __init__(self, *args: Any, run: Command | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if run is not None:
            self.set_defaults(run=run, command_prog=self.prog)

    def error(self, message: str) -> NoReturn:
        """Print ``PROG COMMAND: error: MESSAGE`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def port_type(text: str) -> int:
    # Plain ASCII digits only: int() would also take " 7", "7_0" and
    # non-ASCII digits.
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(
            f"expected an integer in 0..65535, got {text!r}"
        )
    value = int(text)
    if value > 0xFFFF:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {value}")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def seconds_type(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def keep_alive_type(text: str) -> tuple[int, int, int] | None:
    if text == "off":
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected IDLE,INTERVAL,COUNT (whole numbers) or 'off', got {text!r}"
        )
    idle, interval, count = (int(part) for part in parts)
    for what, value, high in (
        ("IDLE", idle, 32767),
        ("INTERVAL", interval, 32767),
        ("COUNT", count, 127),
    ):
        if not 1 <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{what} must be in 1..{high}, got {value}"
            )
    return idle, interval, count


def add_endpoint_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"{what} address: a numeric IP or a host name (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=port_type,
        default=DEFAULT_PORT,
        help=f"{what} port (default: %(default)s)",
    )


async def resolve(host: str, port: int, *, passive: bool) -> list[Address]:
    """The addresses ``host`` names, in the resolver's order.

    A numeric address is taken as it is; a name goes through
    :func:`ip.tcp.get_address_info <trio_emtcp.ip.tcp.get_address_info>`
    with explicit flags (``passive`` for a server), so that every address
    family the resolver knows comes back, configured or not.

    Raises:
      CommandError: the name does not resolve.
    """
    try:
        return [ip.Address(host)]
    except ValueError:
        pass
    flags = ip.AddressInfoFlag.passive if passive else 0
    try:
        infos = await ip.tcp.get_address_info(host, port, flags)
    except _stdlib_socket.gaierror as exc:
        raise CommandError(
            f"cannot resolve {host!r}: {_resolver_reason(exc)}"
        ) from None
    found: list[Address] = []
    for info in infos:
        if info.address not in found:
            found.append(info.address)
    if not found:
        raise CommandError(f"cannot resolve {host!r}: no IPv4 or IPv6 address")
    return found


def _resolver_reason(exc: _stdlib_socket.gaierror) -> str:
    """The resolver's own words in a ``get_address_info`` error, lowercase-led.

    The library's message is ``host: cannot resolve 'NAME' (REASON)``; the
    command line names the host itself.
    """
    text = exc.strerror or str(exc)
    match = re.search(r"\((.*)\)$", text)
    reason = match[1] if match else text
    return reason[:1].lower() + reason[1:]


def listen(
    address: Address,
    port: int,
    backlog: int | None,
    *,
    reuse_port: bool,
    keep_alive: tuple[int, int, int] | None = None,
) -> Acceptor:
    """A listening acceptor (``ip.tcp.listen``), or a one-line error.

    ``ip.tcp.listen`` sets ``reuse_address`` (a restarted server must bind
    while connections of the previous run linger in TIME_WAIT; it does not
    let two servers listen on one port, which Linux refuses without
    SO_REUSEPORT) and ``tcp_no_delay``.

    Args:
      reuse_port: several processes share the port (``--workers``).
      keep_alive: ``(idle, interval, count)`` for every accepted connection
        (set once on the acceptor; the kernel copies it), or ``None``.

    Raises:
      CommandError: the system refused (address in use, permission, ...).
    """
    try:
        acceptor = ip.tcp.listen(address, port, backlog, reuse_port=reuse_port)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {ip.tostring(address, port)}: {describe(exc)}"
        ) from None
    try:
        if keep_alive is not None:
            idle, interval, count = keep_alive
            acceptor.set_option("keep_alive", True)
            acceptor.set_option("keep_alive_idle", idle)
            acceptor.set_option("keep_alive_interval", interval)
            acceptor.set_option("keep_alive_count", count)
    except OSError as exc:
        acceptor.close()
        raise CommandError(
            f"cannot listen on {ip.tostring(address, port)}: {describe(exc)}"
        ) from None
    except BaseException:
        acceptor.close()
        raise
    return acceptor


async def connect(addresses: Sequence[Address], port: int) -> Socket:
    """A socket connected to the first address that answers (``ip.connect``).

    Raises:
      CommandError: no address accepted the connection (the last error).
    """
    sock = Socket()
    try:
        await ip.connect(sock, [(address, port) for address in addresses])
    except OSError as exc:
        sock.close()
        # ip.connect tried every address in turn: the last one failed last.
        last = ip.tostring(addresses[-1], port)
        raise CommandError(f"cannot connect to {last}: {describe(exc)}") from None
    except BaseException:
        sock.close()
        raise
    return sock


async def first_of(*waits: Callable[[], Awaitable[str]]) -> str:
    """Run ``waits`` concurrently; return the first result, cancel the rest."""
    results: list[str] = []
    async with trio.open_nursery() as nursery:

        async def run(wait: Callable[[], Awaitable[str]]) -> None:
            results.append(await wait())
            nursery.cancel_scope.cancel()

        for wait in waits:
            nursery.start_soon(run, wait)
    return results[0]


def endpoint(sock: Socket, side: str) -> str:
    if side == "local":
        return ip.tostring(sock.local_address, sock.local_port)
    return ip.tostring(sock.remote_address, sock.remote_port)
