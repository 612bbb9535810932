"""What every workload shares: the contenders, the sizes, one sample."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

#: The contenders, in table order.  A workload runs all of them unless it
#: names fewer (``Workload.contenders``).
EMTCP = "trio_emtcp"
#: trio_emtcp through the Trio stream methods (``send_all``,
#: ``receive_some``), as code written for ``trio.SocketStream`` uses it.
EMTCP_TRIO = "trio_emtcp-trio"
SOCKET_STREAM = "trio.SocketStream"
TRIO_SOCKET = "trio.socket"
ASYNCIO = "asyncio"
STDLIB = "stdlib"
CONTENDERS: tuple[str, ...] = (
    EMTCP,
    EMTCP_TRIO,
    SOCKET_STREAM,
    TRIO_SOCKET,
    ASYNCIO,
    STDLIB,
)

#: Every ratio in the report is relative to this contender.
REFERENCE = SOCKET_STREAM

#: Column headings: what each contender is, in a few words.
LABELS: Mapping[str, str] = MappingProxyType(
    {
        EMTCP: "trio_emtcp",
        EMTCP_TRIO: "trio_emtcp (Trio methods)",
        SOCKET_STREAM: "trio.SocketStream",
        TRIO_SOCKET: "trio.socket",
        ASYNCIO: "asyncio streams",
        STDLIB: "stdlib socket (threads)",
    }
)

HOST = "127.0.0.1"

# The same listen backlog for every contender.  asyncio's start_server
# defaults to 100, and 1,000 simultaneous connects overflowing a queue of
# 100 would make the kernel drop SYNs, which clients resend only after a
# second: the measurement would then be of the TCP retransmit timer.
BACKLOG = socket.SOMAXCONN

# The message each connection of the connection workloads echoes: small, so
# that those workloads measure connection handling, not data transfer.
ECHO_MESSAGE = b"trio_emtcp bench"


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
    """

    bulk: Mapping[int, int]
    round_trips: int
    connections: int
    concurrent: int
    requests: int


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
)
# --quick: about a fifth of a second per round; the run takes about a
# minute on a 2-core machine, under two on a loaded one.
QUICK = Sizes(
    bulk=MappingProxyType({4 * KIB: 48 * MIB, 64 * KIB: 384 * MIB, MIB: 512 * MIB}),
    round_trips=8_000,
    connections=1_000,
    concurrent=1_000,
    requests=1_000,
)
# --tiny: every code path once, in about a second; the numbers mean nothing.
TINY = Sizes(
    bulk=MappingProxyType({4 * KIB: 64 * KIB, 64 * KIB: 256 * KIB, MIB: 2 * MIB}),
    round_trips=20,
    connections=5,
    concurrent=10,
    requests=20,
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
