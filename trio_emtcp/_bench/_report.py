"""Turning per-round numbers into the report: statistics, tables, machine.

Everything here is pure (no I/O but reading ``/proc/cpuinfo`` in
:func:`machine_description`), so the tests check it with exact values.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import statistics
from collections.abc import Mapping, Sequence

import trio

from .. import __version__

# Written as escapes: the source stays plain ASCII-looking (ruff's RUF001),
# the report gets the proper typography.
EN_DASH = "\u2013"
TIMES = "\u00d7"

#: The table cell of a contender that a workload does not run.
NOT_RUN = "not run"


@dataclasses.dataclass(frozen=True)
class Summary:
    """The median and the range of one contender's rounds."""

    median: float
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Row:
    """One workload's (or one memory figure's) rounds, per contender.

    Attributes:
      name: the short name (``--only``, JSON).
      title: what the row measured, for the table.
      unit: e.g. ``MiB/s``.
      values: contender -> the value of each round.
    """

    name: str
    title: str
    unit: str
    values: Mapping[str, Sequence[float]]


def summarize(values: Sequence[float]) -> Summary:
    """Median, minimum and maximum of ``values``.

    Raises:
      ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("values: must not be empty")
    return Summary(statistics.median(values), min(values), max(values))


def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean, the right average for ratios.

    Raises:
      ValueError: ``values`` is empty or holds a value that is not > 0.
    """
    if not values:
        raise ValueError("values: must not be empty")
    if any(not value > 0 for value in values):
        raise ValueError(f"values: must all be > 0, got {list(values)}")
    return math.exp(math.fsum(math.log(value) for value in values) / len(values))


def format_number(value: float) -> str:
    """Three significant figures or more, never in exponent form.

    ``1234.5`` -> ``"1234"`` (whole numbers from 100 on, rounded half to
    even), ``12.345`` -> ``"12.3"``, ``1.2345`` -> ``"1.23"``.
    """
    magnitude = abs(value)
    # The thresholds are where rounding would carry into the next decade
    # (99.96 -> "100", not "100.0"), so the figures stay three.
    if magnitude >= 99.95:
        return f"{value:.0f}"
    if magnitude >= 9.995:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_ratio(ratio: float) -> str:
    """A ratio with two decimals and a multiplication sign: ``1.25`` + TIMES."""
    return f"{ratio:.2f}{TIMES}"


def format_cell(summary: Summary, ratio: float | None) -> str:
    """``median (min-max), ratio`` for one table cell (en dash, times sign).

    A ``None`` ratio (the reference's median is 0) shows as ``n/a``.
    """
    shown = "n/a" if ratio is None else format_ratio(ratio)
    return (
        f"{format_number(summary.median)} "
        f"({format_number(summary.low)}{EN_DASH}{format_number(summary.high)}), "
        f"{shown}"
    )


def ratio_to(value: float, base: float) -> float | None:
    """``value / base``, or None when ``base`` is not > 0."""
    return value / base if base > 0 else None


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table, columns padded to line up in a terminal.

    Raises:
      ValueError: a row has another number of cells than ``header``.
    """
    for row in rows:
        if len(row) != len(header):
            raise ValueError(
                f"rows: every row needs {len(header)} cells, got {len(row)}"
            )
    widths = [
        max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)
    ]
    widths = [max(width, 3) for width in widths]

    def line(cells: Sequence[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def ratios(rows: Sequence[Row], contender: str, reference: str) -> dict[str, float]:
    """Per row: median of ``contender`` / median of ``reference``."""
    return {
        row.name: summarize(row.values[contender]).median
        / summarize(row.values[reference]).median
        for row in rows
    }


def at_least(rows: Sequence[Row], contender: str, rival: str) -> dict[str, bool]:
    """Per row that both ran: whether ``contender``'s median is >= ``rival``'s."""
    return {
        row.name: summarize(row.values[contender]).median
        >= summarize(row.values[rival]).median
        for row in rows
        if contender in row.values and rival in row.values
    }


def paired_ratios(row: Row, contender: str, reference: str) -> list[float]:
    """Round by round: ``contender``'s value / ``reference``'s.

    Every contender runs in every round, one after the other, so a round's
    ratio compares two measurements made under the same machine load.
    """
    return [
        mine / theirs
        for mine, theirs in zip(
            row.values[contender], row.values[reference], strict=True
        )
        if theirs > 0
    ]


#: Within this fraction of the goal a ratio is a tie: the machines are
#: shared and noisy, so a ratio within 10 % of 1.00 says "as fast".
TIE = 0.10


@dataclasses.dataclass(frozen=True)
class Target:
    """A goal: ``subject`` at least ``factor`` times ``rival`` on workloads.

    Attributes:
      subject, rival: contenders.
      factor: the least median of paired per-round ratios that meets it.
      workloads: the rows it applies to; empty for every row both run.
      exclude: rows left out of "every row".
    """

    subject: str
    rival: str
    factor: float
    workloads: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


def judge(ratio: float, factor: float) -> str:
    """``met``, ``tie`` (within :data:`TIE` below the goal) or ``missed``."""
    if ratio >= factor:
        return "met"
    if ratio >= factor * (1 - TIE):
        return "tie"
    return "missed"


def target_rows(
    rows: Sequence[Row], targets: Sequence[Target], labels: Mapping[str, str]
) -> list[list[str]]:
    """One table line per target and workload it applies to (and can judge)."""
    lines = []
    for target in targets:
        for row in rows:
            if target.workloads and row.name not in target.workloads:
                continue
            if row.name in target.exclude:
                continue
            if target.subject not in row.values or target.rival not in row.values:
                continue
            paired = paired_ratios(row, target.subject, target.rival)
            if not paired:
                continue
            summary = summarize(paired)
            subject = labels.get(target.subject, target.subject)
            rival = labels.get(target.rival, target.rival)
            lines.append(
                [
                    f"{subject} ≥ {target.factor:g}{TIMES} {rival}",
                    row.name,
                    f"{format_ratio(summary.median)} ({format_ratio(summary.low)}"
                    f"{EN_DASH}{format_ratio(summary.high)})",
                    judge(summary.median, target.factor),
                ]
            )
    return lines


def targets_table(
    rows: Sequence[Row], targets: Sequence[Target], labels: Mapping[str, str]
) -> str:
    """The targets as a Markdown table, or ``""`` if none applies."""
    lines = target_rows(rows, targets, labels)
    if not lines:
        return ""
    header = ["target", "workload", "median paired ratio (range)", "verdict"]
    return markdown_table(header, lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def comparison_table(
    rows: Sequence[Row],
    contenders: Sequence[str],
    labels: Mapping[str, str],
    reference: str,
    *,
    heading: str,
    subject: str | None = None,
    rivals: Sequence[str] = (),
) -> str:
    """One line per row, one column per contender: ``format_cell``.

    The ratio in each cell is to ``reference``'s median; a contender with
    no values in a row (the workload does not run it) shows
    :data:`NOT_RUN`.  With a ``subject`` and ``rivals``, a last column says
    for each rival whether the subject's median is at least the rival's
    (``n/a`` in a row the rival did not run).
    """
    header = [heading, *(labels.get(c, c) for c in contenders)]
    if subject is not None and rivals:
        header.append(
            f"{labels.get(subject, subject)} ≥ "
            + ", ".join(labels.get(r, r) for r in rivals)
        )
    lines = []
    for row in rows:
        base = summarize(row.values[reference]).median
        cells = [f"{row.title} ({row.unit})"]
        for contender in contenders:
            if contender not in row.values:
                cells.append(NOT_RUN)
                continue
            summary = summarize(row.values[contender])
            cells.append(format_cell(summary, ratio_to(summary.median, base)))
        if subject is not None and rivals:
            flags = (at_least([row], subject, rival).get(row.name) for rival in rivals)
            cells.append(", ".join("n/a" if f is None else _yes(f) for f in flags))
        lines.append(cells)
    return markdown_table(header, lines)


def verdict(
    rows: Sequence[Row],
    labels: Mapping[str, str],
    subject: str,
    reference: str,
    rivals: Sequence[str],
) -> str:
    """The closing line: the subject's geometric-mean ratio, and its wins.

    Raises:
      ValueError: ``rows`` is empty.
    """
    mean = geometric_mean(list(ratios(rows, subject, reference).values()))
    name = labels.get(subject, subject)
    parts = [
        f"{name} / {labels.get(reference, reference)}, geometric mean of the "
        f"ratios over {len(rows)} workload{'s' if len(rows) != 1 else ''}: "
        f"{format_ratio(mean)}"
    ]
    for rival in rivals:
        # Out of the rows the rival ran.
        flags = at_least(rows, subject, rival)
        if not flags:
            continue
        losses = [row for row, ok in flags.items() if not ok]
        wins = len(flags) - len(losses)
        text = f"{name} ≥ {labels.get(rival, rival)} on {wins} of {len(flags)}"
        if losses:
            text += f" (not on: {', '.join(losses)})"
        parts.append(text)
    return "; ".join(parts) + "."


def machine_description() -> dict[str, str | int]:
    """What the numbers were measured on.

    Returns:
      ``cpu`` (the model name from ``/proc/cpuinfo``), ``cores`` (online),
      ``cores_usable`` (this process's affinity), ``machine``, ``kernel``,
      ``python``, ``trio``, ``trio_emtcp``.
    """
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    cpu = value.strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    affinity = getattr(os, "sched_getaffinity", None)
    usable = len(affinity(0)) if affinity is not None else cores
    return {
        "cpu": cpu,
        "cores": cores,
        "cores_usable": usable,
        "machine": platform.machine(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "trio": trio.__version__,
        "trio_emtcp": __version__,
    }


def machine_line(machine: Mapping[str, str | int]) -> str:
    """The machine description in one line, for the report."""
    return (
        f"{machine['cpu']}, {machine['cores']} cores ({machine['cores_usable']} "
        f"usable), {machine['kernel']}, {machine['python']}, trio "
        f"{machine['trio']}, trio_emtcp {machine['trio_emtcp']}"
    )
