"""What every workload shares: the contenders, the sizes, one sample."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import socket
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from .. import relaxed_schedule_points

T = TypeVar("T")

#: The contenders, in table order.  A workload runs all of them unless it
#: names fewer (``Workload.contenders``).
EMTCP = "trio_emtcp"
#: trio_emtcp with every task of the workload inside
#: ``relaxed_schedule_points()`` (SPEC §8).
EMTCP_RELAXED = "trio_emtcp-relaxed"
#: trio_emtcp through the Trio stream methods (``send_all``,
#: ``receive_some``), as code written for ``trio.SocketStream`` uses it.
EMTCP_TRIO = "trio_emtcp-trio"
SOCKET_STREAM = "trio.SocketStream"
TRIO_SOCKET = "trio.socket"
#: anyio's TCP streams on its trio backend.
ANYIO = "anyio"
ASYNCIO = "asyncio"
#: asyncio streams on uvloop's event loop.
UVLOOP = "uvloop"
#: uvloop with an ``asyncio.BufferedProtocol``: callbacks, no streams.
UVLOOP_PROTOCOL = "uvloop-protocol"
STDLIB = "stdlib"
CONTENDERS: tuple[str, ...] = (
    EMTCP,
    EMTCP_RELAXED,
    EMTCP_TRIO,
    SOCKET_STREAM,
    TRIO_SOCKET,
    ANYIO,
    ASYNCIO,
    UVLOOP,
    UVLOOP_PROTOCOL,
    STDLIB,
)

#: Every ratio in the report is relative to this contender.
REFERENCE = SOCKET_STREAM

#: Column headings: what each contender is, in a few words.
LABELS: Mapping[str, str] = MappingProxyType(
    {
        EMTCP: "trio_emtcp",
        EMTCP_RELAXED: "trio_emtcp (relaxed)",
        EMTCP_TRIO: "trio_emtcp (Trio methods)",
        SOCKET_STREAM: "trio.SocketStream",
        TRIO_SOCKET: "trio.socket",
        ANYIO: "anyio (trio backend)",
        ASYNCIO: "asyncio streams",
        UVLOOP: "uvloop streams",
        UVLOOP_PROTOCOL: "uvloop BufferedProtocol",
        STDLIB: "stdlib socket (threads)",
    }
)

# The contenders that need a package trio_emtcp does not depend on, and
# that package: where it is missing they are skipped, with the reason.
_NEEDS: Mapping[str, str] = MappingProxyType(
    {ANYIO: "anyio", UVLOOP: "uvloop", UVLOOP_PROTOCOL: "uvloop"}
)


def missing(contender: str) -> str | None:
    """Why ``contender`` cannot run here (a package is missing), or None."""
    package = _NEEDS.get(contender)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return f"{package} is not installed"


def relaxing(contender: str) -> AbstractContextManager[object]:
    """What a task of ``contender`` runs in: relaxed schedule points or not.

    Entered by every task of a trio_emtcp workload, since the mode is per
    task (a child does not inherit it).
    """
    if contender == EMTCP_RELAXED:
        return relaxed_schedule_points()
    return contextlib.nullcontext()


def run_asyncio(contender: str, main: Coroutine[Any, Any, T]) -> T:
    """Run an asyncio contender's coroutine on its event loop.

    ``uvloop.run`` for the uvloop contenders (imported only then: it is
    optional), ``asyncio.run`` otherwise.
    """
    if contender in (UVLOOP, UVLOOP_PROTOCOL):
        # Imported here: optional, and only these two need it.
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


HOST = "127.0.0.1"

# The same listen backlog for every contender.  asyncio's start_server
# defaults to 100, and 1,000 simultaneous connects overflowing a queue of
# 100 would make the kernel drop SYNs, which clients resend only after a
# second: the measurement would then be of the TCP retransmit timer.
BACKLOG = socket.SOMAXCONN

# The message each connection of the connection workloads echoes: small, so
# that those workloads measure connection handling, not data transfer.
ECHO_MESSAGE = b"trio_emtcp bench"


#: How a worker's receiving side tells the parent its port.
Announce = Callable[[int], None]


class BenchError(Exception):
    """The benchmark could not measure: a check failed or a peer died.

    Raised by the workloads when a byte count is wrong (so that a broken
    contender cannot look fast), and by the worker pool when a peer process
    misbehaves.
    """


@dataclasses.dataclass(frozen=True)
class Sample:
    """One measurement: one workload, one contender, one round.

    Attributes:
      value: the rate (MiB/s, round trips/s or connections/s); higher is
        better.
      seconds: the time measured.
      extra: other figures of the same round (e.g. peak RSS in MiB).
    """

    value: float
    seconds: float
    extra: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work one round does, per workload family.

    Attributes:
      bulk: chunk size -> bytes sent per round (a multiple of the chunk).
      round_trips: ping-pong round trips per round.
      connections: connections per round of the connection-rate workload.
      concurrent: simultaneous connections of the concurrency workload.
      requests: small requests per round of the request workload.
      relay_bulk: bytes sent per round through the relay (1 MiB writes).
      relay_round_trips: ping-pong round trips per round through the relay.
    """

    bulk: Mapping[int, int]
    round_trips: int
    connections: int
    concurrent: int
    requests: int
    relay_bulk: int
    relay_round_trips: int


KIB = 1024
MIB = 1024 * KIB

#: The bulk chunk sizes, with the short names the workloads use.
CHUNKS: Mapping[str, int] = MappingProxyType(
    {"4k": 4 * KIB, "64k": 64 * KIB, "1m": MIB}
)

# Chosen so that one round takes about half a second for the fastest
# contender on a 2-core machine (a few times that for the slowest): long
# enough that timer resolution and event-loop start-up are noise, short
# enough that the whole run (5 contenders x 5 rounds x 10 workloads) stays
# within a few minutes.
FULL = Sizes(
    bulk=MappingProxyType({4 * KIB: 128 * MIB, 64 * KIB: 1024 * MIB, MIB: 1024 * MIB}),
    round_trips=20_000,
    connections=2_000,
    concurrent=1_000,
    # The median of 1,000 request latencies (issue: small-request latency).
    requests=1_000,
    relay_bulk=1024 * MIB,
    # Fewer than in-process ping-pong: each round trip crosses three
    # processes on two cores, a few times slower.
    relay_round_trips=5_000,
)
# --quick: about a fifth of a second per round; the run takes about a
# minute on a 2-core machine, under two on a loaded one.
QUICK = Sizes(
    bulk=MappingProxyType({4 * KIB: 48 * MIB, 64 * KIB: 384 * MIB, MIB: 512 * MIB}),
    round_trips=8_000,
    connections=1_000,
    concurrent=1_000,
    requests=1_000,
    relay_bulk=512 * MIB,
    relay_round_trips=2_000,
)
# --tiny: every code path once, in about a second; the numbers mean nothing.
TINY = Sizes(
    bulk=MappingProxyType({4 * KIB: 64 * KIB, 64 * KIB: 256 * KIB, MIB: 2 * MIB}),
    round_trips=20,
    connections=5,
    concurrent=10,
    requests=20,
    relay_bulk=2 * MIB,
    relay_round_trips=20,
)


def check_count(what: str, got: int, expected: int) -> None:
    """Refuse a transfer that moved the wrong number of bytes.

    Raises:
      BenchError: ``got`` differs from ``expected``.
    """
    if got != expected:
        raise BenchError(f"{what}: {got} bytes, expected {expected}")


class _HasSetSockOpt(Protocol):
    def setsockopt(self, level: int, optname: int, value: int, /) -> None: ...


def nodelay(sock: _HasSetSockOpt) -> None:
    """Turn Nagle's algorithm off (stdlib, trio or asyncio socket object)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
