"""The benchmark of SPEC §8: trio_emtcp against its neighbours, on loopback.

``python -m trio_emtcp bench`` (or ``python -m trio_emtcp._bench``) runs
every workload for every contender and prints a Markdown table of medians
and ratios to ``trio.SocketStream``.  The workloads:

``bulk-4k``, ``bulk-64k``, ``bulk-1m``
    Bulk transfer with 4 KiB, 64 KiB and 1 MiB writes and reads, sender and
    receiver in one process (:mod:`._bulk`).  MiB/s.
``bulk-4k-2p``, ``bulk-64k-2p``, ``bulk-1m-2p``
    The same with the receiver in a second process.  MiB/s.
``pingpong-1``, ``pingpong-64``, ``pingpong-1-2p``
    Round trips of a 1-byte and a 64-byte message (:mod:`._pingpong`), and
    of a 1-byte message with the echo in a second process.  Round trips/s.
``relay-bulk``, ``relay-pingpong``
    Bytes through a relay process between a client (this process) and a
    server (a worker), three processes (:mod:`._relay`): 1 MiB writes one
    way, MiB/s; 64-byte messages echoed by the server, round trips/s.  Only
    the relay differs: ``stream.relay`` against two ``trio.SocketStream``
    copy loops; the ends are blocking stdlib sockets for both.
``percall-read``, ``request``
    1-byte reads with the data queued (:mod:`._percall`); small requests of
    two writes and a reply (:mod:`._request`).
``connect``
    Connect, accept, echo 16 bytes, close, one connection after the other
    (:mod:`._connect`).  Connections/s.
``concurrent``
    1,000 connections open at once, one echo on each, in a fresh process
    per contender that also reports its peak RSS (:mod:`._concurrent`).
    Connections/s, and MiB of memory.

The contenders (:mod:`._common`): ``trio_emtcp`` (``read_some`` into a
reused ``bytearray``, ``stream.write_all``, ``Acceptor``), the same relaxed
(``relaxed_schedule_points`` in every task) and through the Trio stream
methods, ``trio.SocketStream`` (``receive_some``/``send_all``,
``serve_tcp``/``open_tcp_stream``), raw ``trio.socket``
(``recv_into``/``send``), anyio on its trio backend (:mod:`._anyio_contender`),
asyncio streams (``reader.read``/``writer.write`` + ``drain``) on asyncio's
loop and on uvloop, a ``BufferedProtocol`` on uvloop (:mod:`._protocol`),
and the blocking stdlib socket with threads.  anyio and uvloop are
optional: without them their contenders are skipped.  They take turns
within each round, and the order rotates from round to round, so that
machine noise hits all alike.  The report ends with SPEC §8's targets,
judged on medians of paired per-round ratios.

The command line's ``bench`` command is :func:`add_arguments` and
:func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from ._common import (
    ANYIO,
    ASYNCIO,
    CONTENDERS,
    EMTCP,
    EMTCP_RELAXED,
    FULL,
    LABELS,
    QUICK,
    REFERENCE,
    SOCKET_STREAM,
    TINY,
    TRIO_SOCKET,
    UVLOOP_PROTOCOL,
    BenchError,
    Sample,
    missing,
)
from ._pool import WorkerPool
from ._progress import Progress
from ._report import (
    EN_DASH,
    TIE,
    Row,
    Target,
    at_least,
    comparison_table,
    geometric_mean,
    machine_description,
    machine_line,
    ratio_to,
    ratios,
    summarize,
    target_rows,
    targets_table,
    verdict,
)
from ._workloads import WORKLOAD_NAMES, Context, Workload, workloads

__all__ = [
    "WORKLOAD_NAMES",
    "Progress",
    "Workload",
    "add_arguments",
    "main",
    "run",
    "workloads",
]

DEFAULT_ROUNDS = 5
# Medians need at least three values to mean something; quick and tiny runs
# use that minimum.
MIN_ROUNDS = 3

#: The contenders the report's last column compares trio_emtcp with: what
#: it is built on, and what users on Trio would pick instead (SPEC §8).
RIVALS = (TRIO_SOCKET, ANYIO)

#: The goals of SPEC §8, judged on medians of paired per-round ratios.
TARGETS = (
    # The default mode: as fast as what it is built on, and as anyio.
    Target(EMTCP, TRIO_SOCKET, 0.95),
    Target(EMTCP, ANYIO, 1.0),
    # Relaxed schedule points: past asyncio and uvloop on small-write bulk,
    # and never slower than the default mode elsewhere.
    Target(EMTCP_RELAXED, ASYNCIO, 2.0, workloads=("bulk-4k",)),
    Target(EMTCP_RELAXED, UVLOOP_PROTOCOL, 1.0, workloads=("bulk-4k",)),
    Target(EMTCP_RELAXED, ASYNCIO, 1.3, workloads=("bulk-4k-2p",)),
    Target(EMTCP_RELAXED, EMTCP, 1.0, exclude=("bulk-4k", "bulk-4k-2p")),
    # A relay on stream.relay (zero-copy between Sockets) against the copy
    # loops trio.SocketStream users write (issue 18): well ahead on bulk,
    # not slower on small messages.
    Target(EMTCP, SOCKET_STREAM, 1.4, workloads=("relay-bulk",)),
    Target(EMTCP, SOCKET_STREAM, 1.0, workloads=("relay-pingpong",)),
)

PROG = "python -m trio_emtcp bench"


# The extra figures of a sample that make rows of the lower-is-better table:
# key -> (what it is, unit).
_EXTRA_FIGURES: Mapping[str, tuple[str, str]] = {
    "latency_us": ("median latency of one request", "µs"),
    "peak_rss_mib": ("peak RSS", "MiB"),
    "rss_growth_mib": ("RSS growth during the round", "MiB"),
}


# -- command line --------------------------------------------------------------


def _rounds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < MIN_ROUNDS:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_ROUNDS}, got {value}")
    return value


def _only(text: str) -> list[str]:
    chosen: list[str] = []
    for pattern in filter(None, (part.strip() for part in text.split(","))):
        matches = fnmatch.filter(WORKLOAD_NAMES, pattern)
        if not matches:
            raise argparse.ArgumentTypeError(
                f"unknown workload {pattern!r}; known: {', '.join(WORKLOAD_NAMES)}"
            )
        chosen.extend(name for name in matches if name not in chosen)
    if not chosen:
        raise argparse.ArgumentTypeError("expected at least one workload name")
    return chosen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser`` (the ``bench`` command's).

    The parsed namespace is what :func:`main` takes.
    """
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and 3 rounds: the whole run in under 2 minutes",
    )
    size.add_argument(
        "--tiny",
        action="store_true",
        help="sizes so small the run takes seconds; numbers mean nothing "
        "(for testing the benchmark itself)",
    )
    parser.add_argument(
        "--rounds",
        type=_rounds,
        default=None,
        metavar="N",
        help=f"rounds per workload and contender, at least {MIN_ROUNDS} "
        f"(default: {DEFAULT_ROUNDS}, or {MIN_ROUNDS} with --quick/--tiny)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        default=None,
        help="also write every round's numbers and the machine description "
        "to FILE as JSON",
    )
    parser.add_argument(
        "--only",
        type=_only,
        default=None,
        metavar="WORKLOAD[,...]",
        help="run only these workloads (shell-style patterns allowed); "
        f"known: {', '.join(WORKLOAD_NAMES)}",
    )


# -- running -------------------------------------------------------------------


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and len(inner) == 1:
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


def run(
    chosen: Sequence[Workload],
    contenders: Sequence[str],
    rounds: int,
    ctx: Context,
    progress: Progress,
) -> dict[str, dict[str, list[Sample]]]:
    """Run every workload, round by round, every contender in each round.

    Returns:
      workload name -> contender -> the samples of rounds 1..N.

    Raises:
      BenchError: a measurement failed; the message names workload,
        contender and round, and the cause is chained.
    """
    results: dict[str, dict[str, list[Sample]]] = {}
    for workload in chosen:
        taking_part = [c for c in contenders if c in workload.contenders]
        samples: dict[str, list[Sample]] = {c: [] for c in taking_part}
        for k in range(1, rounds + 1):
            # Rotate the order, so that no contender always runs right after
            # a worker's start-up, a garbage collection or the same rival.
            shift = (k - 1) % len(taking_part)
            for contender in [*taking_part[shift:], *taking_part[:shift]]:
                progress.begin(workload, contender, k, rounds)
                gc.collect()
                try:
                    sample = workload.measure(contender, ctx)
                except Exception as exc:
                    leaf = _leaf(exc)
                    raise BenchError(
                        f"{workload.name}, {contender}, round {k}: "
                        f"{type(leaf).__name__}: {leaf}"
                    ) from exc
                samples[contender].append(sample)
                progress.end(workload, contender, k, rounds, sample)
        results[workload.name] = samples
    return results


def _rows(
    chosen: Sequence[Workload], results: Mapping[str, Mapping[str, Sequence[Sample]]]
) -> tuple[list[Row], list[Row]]:
    """The speed rows and the lower-is-better rows (latency, memory)."""
    speed = []
    lower = []
    for workload in chosen:
        per = results[workload.name]
        speed.append(
            Row(
                workload.name,
                workload.title,
                workload.unit,
                {c: [s.value for s in samples] for c, samples in per.items()},
            )
        )
        for key, (what, unit) in _EXTRA_FIGURES.items():
            if all(key in s.extra for samples in per.values() for s in samples):
                lower.append(
                    Row(
                        f"{workload.name}:{key}",
                        f"{workload.title}: {what}",
                        unit,
                        {
                            c: [s.extra[key] for s in samples]
                            for c, samples in per.items()
                        },
                    )
                )
    return speed, lower


def render(
    speed: Sequence[Row],
    memory: Sequence[Row],
    contenders: Sequence[str],
    *,
    rounds: int,
    mode: str,
    machine: Mapping[str, str | int],
    skipped: Mapping[str, str] | None = None,
) -> str:
    """The Markdown report: headline, tables, targets, skipped, verdict."""
    rivals = [r for r in RIVALS if r in contenders]
    parts = [
        f"Loopback TCP, {mode} run, {rounds} rounds. Figures from one run on "
        f"{machine_line(machine)}.",
        "",
        f"Each cell: median (min{EN_DASH}max) over the rounds, then the ratio to "
        f"{LABELS[REFERENCE]}'s median. Higher is better.",
        "",
        comparison_table(
            speed,
            contenders,
            LABELS,
            REFERENCE,
            heading="workload (unit) — higher is better",
            subject=EMTCP,
            rivals=rivals,
        ),
    ]
    if memory:
        parts += [
            "",
            comparison_table(
                memory,
                contenders,
                LABELS,
                REFERENCE,
                heading="latency and memory — lower is better",
            ),
        ]
    targets = targets_table(speed, TARGETS, LABELS)
    if targets:
        parts += [
            "",
            "Targets (SPEC §8): the median over the rounds of each round's "
            f"ratio; within {TIE:.0%} below the goal is a tie.",
            "",
            targets,
        ]
    if skipped:
        parts += [
            "",
            "Skipped: "
            + "; ".join(f"{LABELS[c]} ({why})" for c, why in skipped.items())
            + ".",
        ]
    parts += ["", verdict(speed, LABELS, EMTCP, REFERENCE, rivals)]
    return "\n".join(parts)


def _json_report(
    chosen: Sequence[Workload],
    results: Mapping[str, Mapping[str, Sequence[Sample]]],
    speed: Sequence[Row],
    *,
    rivals: Sequence[str],
    settings: Mapping[str, Any],
    machine: Mapping[str, str | int],
    started: float,
    seconds: float,
) -> dict[str, Any]:
    emtcp_ratios = ratios(speed, EMTCP, REFERENCE)
    out_workloads = []
    for workload in chosen:
        per = results[workload.name]
        contenders_out: dict[str, Any] = {}
        for contender, samples in per.items():
            values = [s.value for s in samples]
            summary = summarize(values)
            base = summarize([s.value for s in per[REFERENCE]]).median
            extra_keys = sorted({key for s in samples for key in s.extra})
            contenders_out[contender] = {
                "rounds": values,
                "seconds": [s.seconds for s in samples],
                "extra": {key: [s.extra[key] for s in samples] for key in extra_keys},
                "median": summary.median,
                "min": summary.low,
                "max": summary.high,
                "ratio": ratio_to(summary.median, base),
            }
        out_workloads.append(
            {
                "name": workload.name,
                "title": workload.title,
                "unit": workload.unit,
                "higher_is_better": True,
                "contenders": contenders_out,
            }
        )
    return {
        "machine": dict(machine),
        "settings": dict(settings),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_seconds": seconds,
        "workloads": out_workloads,
        "summary": {
            "subject": EMTCP,
            "reference": REFERENCE,
            "ratios": emtcp_ratios,
            "geometric_mean_ratio": geometric_mean(list(emtcp_ratios.values())),
            **{f"at_least_{rival}": at_least(speed, EMTCP, rival) for rival in rivals},
        },
        "targets": [
            dict(zip(("target", "workload", "ratio", "verdict"), line, strict=True))
            for line in target_rows(speed, TARGETS, LABELS)
        ],
    }


def _check_writable(path: str) -> str | None:
    """Why ``path`` cannot be written, or None."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"--json: no such directory: {folder}"
    if os.path.isdir(path):
        return f"--json: is a directory: {path}"
    if not os.access(folder, os.W_OK):
        return f"--json: cannot write in {folder}"
    return None


def _inside_event_loop() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        pass
    else:
        return True
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def main(args: argparse.Namespace) -> int:
    """Run the benchmark as ``args`` (from :func:`add_arguments`) say.

    The report goes to standard output, progress and errors to standard
    error.  Not to be called inside ``trio.run``: every round starts its own
    event loop.

    Returns:
      0 on success; 1 if a measurement failed (a byte count was wrong, a
      socket operation or a worker process failed) or ``--json`` cannot be
      written.

    Raises:
      RuntimeError: called from inside a Trio or asyncio event loop.
      KeyboardInterrupt: Ctrl-C; the worker processes are stopped first.
    """
    if _inside_event_loop():
        raise RuntimeError(
            "main: called inside an event loop; every round starts its own, "
            "so call it from synchronous code"
        )
    tiny = bool(getattr(args, "tiny", False))
    quick = bool(getattr(args, "quick", False))
    sizes = TINY if tiny else QUICK if quick else FULL
    mode = "tiny" if tiny else "quick" if quick else "full"
    rounds: int = args.rounds or (MIN_ROUNDS if tiny or quick else DEFAULT_ROUNDS)
    names: Sequence[str] = args.only or WORKLOAD_NAMES
    chosen = [w for w in workloads(sizes) if w.name in names]
    json_path: str | None = args.json
    if json_path is not None and (why := _check_writable(json_path)) is not None:
        print(f"{PROG}: error: {why}", file=sys.stderr)
        return 1

    machine = machine_description()
    skipped = {c: why for c in CONTENDERS if (why := missing(c)) is not None}
    contenders = [c for c in CONTENDERS if c not in skipped]
    progress = Progress(
        sys.stderr,
        rounds * sum(len(set(w.contenders) & set(contenders)) for w in chosen),
    )
    started = time.time()
    clock = time.perf_counter()
    # Every round starts with a full collection, so that no contender pays
    # for the garbage of the one before.  Freezing what exists now (the
    # imported modules, and a test runner's heap) keeps those collections
    # to the objects the rounds make: a few ms each instead of tens.
    gc.collect()
    gc.freeze()
    try:
        with WorkerPool(contenders, shared=tiny) as pool:
            if tiny:
                # Start the workers now: their start-up (a third of a second
                # of imports each) overlaps the first workloads.  In a real
                # run that would disturb those workloads' first rounds.
                for workload in chosen:
                    if workload.role is not None:
                        pool.start(workload.role)
            results = run(chosen, contenders, rounds, Context(sizes, pool), progress)
    except BenchError as exc:
        progress.close()
        cause = exc.__cause__
        if cause is not None and not isinstance(_leaf(cause), BenchError):
            traceback.print_exception(cause, file=sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        gc.unfreeze()
        progress.close()
    seconds = time.perf_counter() - clock

    speed, memory = _rows(chosen, results)
    # A column for every contender that ran something (``--only relay-*``
    # runs two).
    shown = [c for c in contenders if any(c in per for per in results.values())]
    print(
        render(
            speed,
            memory,
            shown,
            rounds=rounds,
            mode=mode,
            machine=machine,
            skipped=skipped,
        )
    )
    if json_path is not None:
        settings = {
            "mode": mode,
            "rounds": rounds,
            "contenders": contenders,
            "skipped": skipped,
            "reference": REFERENCE,
            "workloads": [w.name for w in chosen],
            "sizes": {
                "bulk_bytes": {
                    str(chunk): total for chunk, total in sizes.bulk.items()
                },
                "round_trips": sizes.round_trips,
                "connections": sizes.connections,
                "concurrent": sizes.concurrent,
                "relay_bytes": sizes.relay_bulk,
                "relay_round_trips": sizes.relay_round_trips,
            },
        }
        report = _json_report(
            chosen,
            results,
            speed,
            rivals=[r for r in RIVALS if r in contenders],
            settings=settings,
            machine=machine,
            started=started,
            seconds=seconds,
        )
        try:
            with open(json_path, "w", encoding="utf-8") as out:
                json.dump(report, out, indent=2)
                out.write("\n")
        except OSError as exc:
            print(f"{PROG}: error: --json: {exc}", file=sys.stderr)
            return 1
    return 0
