"""The workloads: one row of the report each, and how to run a round.

Each :class:`Workload` wraps one function of a workload family module
(:mod:`._bulk`, :mod:`._pingpong`, :mod:`._relay`, :mod:`._connect`,
:mod:`._concurrent`) with the sizes of the run and, where it needs them,
the worker processes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import final

from . import _bulk, _concurrent, _connect, _percall, _pingpong, _relay, _request
from ._common import (
    CHUNKS,
    CONTENDERS,
    EMTCP_TRIO,
    FULL,
    STDLIB,
    UVLOOP_PROTOCOL,
    BenchError,
    Sample,
    Sizes,
)
from ._pool import WorkerPool


@final
@dataclasses.dataclass
class Context:
    """What a measurement needs besides its contender.

    Attributes:
      sizes: how much work one round does.
      pool: the worker processes of the run.
    """

    sizes: Sizes
    pool: WorkerPool


@final
@dataclasses.dataclass(frozen=True)
class Workload:
    """One row of the table.

    Attributes:
      name: the short name, for ``--only`` and the JSON file.
      title: what it measures, for the table.
      unit: of its values (all of them: higher is better).
      measure: runs one round for one contender.
      role: the worker processes it needs (see ``_pool``), if any.
      contenders: the contenders it runs, in table order; the others are
        shown as not run.
    """

    name: str
    title: str
    unit: str
    measure: Callable[[str, Context], Sample]
    role: str | None = None
    contenders: tuple[str, ...] = CONTENDERS


def _bulk_local(chunk: int) -> Callable[[str, Context], Sample]:
    def measure(contender: str, ctx: Context) -> Sample:
        return _bulk.run_local(contender, chunk, ctx.sizes.bulk[chunk])

    return measure


def _bulk_remote(chunk: int) -> Callable[[str, Context], Sample]:
    def measure(contender: str, ctx: Context) -> Sample:
        total = ctx.sizes.bulk[chunk]
        worker = ctx.pool.worker("bulk", contender)
        port = int(worker.command(f"bulk {chunk}").removeprefix("port "))
        try:
            seconds, answered = _bulk.run_remote(contender, chunk, total, port)
            received = int(worker.expect("ok"))
        except BaseException:
            # The worker may still be waiting for a connection or for data.
            ctx.pool.discard("bulk", contender)
            raise
        if received != answered:
            raise BenchError(
                f"bulk {contender}: the receiver said {received} bytes, "
                f"answered {answered}"
            )
        return _bulk.sample_remote(contender, seconds, answered, total)

    return measure


def _round_trips(size: int) -> Callable[[str, Context], Sample]:
    def measure(contender: str, ctx: Context) -> Sample:
        return _pingpong.run(contender, size, ctx.sizes.round_trips)

    return measure


def _round_trips_remote(size: int) -> Callable[[str, Context], Sample]:
    def measure(contender: str, ctx: Context) -> Sample:
        worker = ctx.pool.worker("echo", contender)
        port = int(worker.command(f"echo {size}").removeprefix("port "))
        try:
            sample = _pingpong.run_remote(contender, size, ctx.sizes.round_trips, port)
            echoed = int(worker.expect("ok"))
        except BaseException:
            ctx.pool.discard("echo", contender)
            raise
        if echoed != size * ctx.sizes.round_trips:
            raise BenchError(
                f"ping-pong {contender}: the echo worker echoed {echoed} bytes"
            )
        return sample

    return measure


def _port(answer: str) -> int:
    return int(answer.removeprefix("port "))


# The relay workloads' far end: the stdlib receiver or echo, the same
# process for both relays (a worker of the stdlib contender, which is
# always there).
_END = (STDLIB,)


def _relay_bulk(contender: str, ctx: Context) -> Sample:
    total = ctx.sizes.relay_bulk
    chunk = _relay.CHUNK
    end = ctx.pool.worker("bulk", STDLIB, among=_END)
    relay = ctx.pool.worker("relay", contender, among=_relay.CONTENDERS)
    try:
        end_port = _port(end.command(f"bulk {chunk}"))
        relay_port = _port(relay.command(f"relay {end_port}"))
        outcome = _relay.run_bulk(chunk, total, relay_port)
        received = int(end.expect("ok"))
        moved = _relay.parse_counts(relay.expect("ok"))
    except BaseException:
        # Either may still be waiting for a connection or for data.
        ctx.pool.discard("bulk", STDLIB)
        ctx.pool.discard("relay", contender)
        raise
    return _relay.bulk_sample(contender, total, outcome, received, moved)


def _relay_pingpong(contender: str, ctx: Context) -> Sample:
    size = _relay.MESSAGE_SIZE
    count = ctx.sizes.relay_round_trips
    end = ctx.pool.worker("echo", STDLIB, among=_END)
    relay = ctx.pool.worker("relay", contender, among=_relay.CONTENDERS)
    try:
        end_port = _port(end.command(f"echo {size}"))
        relay_port = _port(relay.command(f"relay {end_port}"))
        outcome = _relay.run_pingpong(size, count, relay_port)
        echoed = int(end.expect("ok"))
        moved = _relay.parse_counts(relay.expect("ok"))
    except BaseException:
        ctx.pool.discard("echo", STDLIB)
        ctx.pool.discard("relay", contender)
        raise
    return _relay.pingpong_sample(contender, size, count, outcome, echoed, moved)


def _per_call(contender: str, ctx: Context) -> Sample:
    # Four reads per ping-pong round trip of the same size class: about as
    # long a round, and the bytes fit in the socket buffers.
    return _percall.run(contender, 4 * ctx.sizes.round_trips)


def _connections(contender: str, ctx: Context) -> Sample:
    return _connect.run(contender, ctx.sizes.connections)


def _concurrent_connections(contender: str, ctx: Context) -> Sample:
    count = ctx.sizes.concurrent
    worker = ctx.pool.worker("concurrent", contender)
    try:
        figures = json.loads(worker.command(f"concurrent {count}"))
    except json.JSONDecodeError as exc:
        ctx.pool.discard("concurrent", contender)
        raise BenchError(f"{worker.name}: not JSON: {exc}") from None
    # A fresh process for every round: its peak RSS and its growth are
    # then those of a cold start each time, not of a process that keeps
    # the previous round's freed memory for reuse.
    ctx.pool.retire("concurrent", contender)
    return _concurrent.sample(contender, count, figures)


def _requests(contender: str, ctx: Context) -> Sample:
    return _request.run(contender, ctx.sizes.requests)


# The workloads the Trio-methods contender runs: those where code written
# for trio.SocketStream meets trio_emtcp (bulk: TCP_NOTSENT_LOWAT is set
# by send_all; requests: the TCP_NODELAY rule).  Elsewhere it would only
# repeat the trio_emtcp column.  The BufferedProtocol contender runs the
# workloads a protocol serves (bulk, ping-pong, requests): a per-call read
# and a connection rate have no protocol form that says more than the
# uvloop streams column.
_WITHOUT_TRIO_METHODS = tuple(c for c in CONTENDERS if c != EMTCP_TRIO)
_STREAMS_ONLY = tuple(c for c in _WITHOUT_TRIO_METHODS if c != UVLOOP_PROTOCOL)


def _chunk_title(short: str) -> str:
    return {"4k": "4 KiB", "64k": "64 KiB", "1m": "1 MiB"}[short]


def workloads(sizes: Sizes) -> list[Workload]:
    """Every workload, in report order, for the given sizes."""
    found = []
    for short, chunk in CHUNKS.items():
        found.append(
            Workload(
                f"bulk-{short}",
                f"bulk, {_chunk_title(short)} chunks, 1 process",
                "MiB/s",
                _bulk_local(chunk),
            )
        )
    for short, chunk in CHUNKS.items():
        found.append(
            Workload(
                f"bulk-{short}-2p",
                f"bulk, {_chunk_title(short)} chunks, 2 processes",
                "MiB/s",
                _bulk_remote(chunk),
                role="bulk",
            )
        )
    found.append(
        Workload(
            "percall-read",
            "per call: 1 B read, data ready (fast path)",
            "calls/s",
            _per_call,
            contenders=_STREAMS_ONLY,
        )
    )
    for size in (1, 64):
        found.append(
            Workload(
                f"pingpong-{size}",
                f"ping-pong, {size} B messages",
                "round trips/s",
                _round_trips(size),
                contenders=_WITHOUT_TRIO_METHODS,
            )
        )
    found.append(
        Workload(
            "pingpong-1-2p",
            "ping-pong, 1 B messages, 2 processes",
            "round trips/s",
            _round_trips_remote(1),
            role="echo",
            contenders=_WITHOUT_TRIO_METHODS,
        )
    )
    found.append(
        Workload(
            "relay-bulk",
            "relay, 1 MiB writes, 3 processes",
            "MiB/s",
            _relay_bulk,
            role="relay",
            contenders=_relay.CONTENDERS,
        )
    )
    found.append(
        Workload(
            "relay-pingpong",
            f"relay, ping-pong, {_relay.MESSAGE_SIZE} B messages, 3 processes",
            "round trips/s",
            _relay_pingpong,
            role="relay",
            contenders=_relay.CONTENDERS,
        )
    )
    found.append(
        Workload(
            "request",
            "small request (two writes) + reply, from the dial/listen helpers",
            "requests/s",
            _requests,
        )
    )
    found.append(
        Workload(
            "connect",
            "connect + accept + echo + close",
            "connections/s",
            _connections,
            contenders=_STREAMS_ONLY,
        )
    )
    found.append(
        Workload(
            "concurrent",
            f"{sizes.concurrent:,} concurrent connections, open + echo",
            "connections/s",
            _concurrent_connections,
            role="concurrent",
            contenders=_STREAMS_ONLY,
        )
    )
    return found


#: The ``--only`` names, in report order.
WORKLOAD_NAMES: tuple[str, ...] = tuple(w.name for w in workloads(FULL))
