"""The benchmark (``trio_emtcp._bench``): a tiny run, the options, the helpers.

No test here asserts anything about speed: the tiny run only proves that
every workload runs for every contender and that the report and the JSON
file hold what they should.  The pure helpers are checked with exact
values.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import io
import json
import os
import platform
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import trio_emtcp._bench as bench
from trio_emtcp._bench import (
    _bulk,
    _common,
    _pingpong,
    _pool,
    _relay,
    _report,
    _request,
    _worker,
    _workloads,
)
from trio_emtcp._bench._common import (
    CONTENDERS,
    LABELS,
    REFERENCE,
    TINY,
    BenchError,
    Sample,
    check_count,
)
from trio_emtcp._bench._report import Row, Summary

ROOT = Path(__file__).resolve().parent.parent
EN_DASH = "\u2013"
TIMES = "\u00d7"


def _ran_by(contender: str) -> set[str]:
    """The workloads ``contender`` runs."""
    return {w.name for w in bench.workloads(TINY) if contender in w.contenders}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench-test")
    bench.add_arguments(parser)
    return parser


@dataclasses.dataclass(frozen=True)
class _Run:
    status: int
    out: str
    err: str
    report: dict[str, Any]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> _Run:
    """One ``--tiny`` run of every workload, in this process, shared."""
    path = tmp_path_factory.mktemp("bench") / "out.json"
    args = _parser().parse_args(["--tiny", "--json", str(path)])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = bench.main(args)
    report = json.loads(path.read_text()) if path.exists() else {}
    return _Run(status, out.getvalue(), err.getvalue(), report)


# -- the tiny run ----------------------------------------------------------


def test_bench_tiny_run_succeeds(tiny_run: _Run) -> None:
    assert tiny_run.status == 0, tiny_run.err


def test_bench_table_has_every_workload_and_contender(tiny_run: _Run) -> None:
    lines = tiny_run.out.splitlines()
    header = next(line for line in lines if line.startswith("| workload"))
    for contender in CONTENDERS:
        assert f" {LABELS[contender]} " in header
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("|")}
    for workload in bench.workloads(TINY):
        row = rows[f"{workload.title} ({workload.unit})"]
        # A cell per contender, each "median (min-max), ratio" (en dash,
        # multiplication sign), or "not run" for a contender the workload
        # leaves out; then the yes/no column against trio.socket and anyio
        # ("n/a" where they do not run: the relay workloads).
        cells = [cell.strip() for cell in row.split("|")[2:-1]]
        assert len(cells) == len(CONTENDERS) + 1
        for contender, cell in zip(CONTENDERS, cells[:-1], strict=True):
            if contender not in workload.contenders:
                assert cell == "not run"
                continue
            assert re.fullmatch(
                rf"[\d.]+ \([\d.]+{EN_DASH}[\d.]+\), [\d.]+{TIMES}", cell
            ), cell
        if _common.TRIO_SOCKET in workload.contenders:
            assert re.fullmatch(r"(yes|no), (yes|no)", cells[-1])
        else:
            assert cells[-1] == "n/a, n/a"
    reference_column = 1 + CONTENDERS.index(REFERENCE)
    for workload in bench.workloads(TINY):
        cells = rows[f"{workload.title} ({workload.unit})"].split("|")
        assert cells[reference_column + 1].strip().endswith(f", 1.00{TIMES}")


def test_bench_report_says_what_is_better_and_ends_with_the_verdict(
    tiny_run: _Run,
) -> None:
    assert "higher is better" in tiny_run.out
    assert "lower is better" in tiny_run.out
    assert "peak RSS" in tiny_run.out
    assert "median latency of one request (µs)" in tiny_run.out
    last = tiny_run.out.rstrip("\n").splitlines()[-1]
    n = len(bench.WORKLOAD_NAMES)
    # The wins against trio.socket and anyio count the workloads they run.
    rivals = _ran_by(_common.TRIO_SOCKET)
    assert rivals == _ran_by(_common.ANYIO)
    assert len(rivals) == n - 2  # not the relay workloads
    m = len(rivals)
    assert re.fullmatch(
        r"trio_emtcp / trio\.SocketStream, geometric mean of the ratios over "
        rf"{n} workloads: [\d.]+{TIMES}; trio_emtcp ≥ trio\.socket on \d+ of {m}"
        rf"( \(not on: [\w, -]+\))?; trio_emtcp ≥ anyio \(trio backend\) on \d+ "
        rf"of {m}( \(not on: [\w, -]+\))?\.",
        last,
    ), last
    # The targets of SPEC §8, each judged on paired per-round ratios.
    targets = tiny_run.out.split("Targets (SPEC §8)")[1].split("\n\n")[1]
    lines = targets.splitlines()[2:]
    assert len(lines) == len(tiny_run.report["targets"]) > 20
    for line in lines:
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        assert cells[1] in bench.WORKLOAD_NAMES
        assert re.fullmatch(
            rf"[\d.]+{TIMES} \([\d.]+{TIMES}{EN_DASH}[\d.]+{TIMES}\)", cells[2]
        ), cells[2]
        assert cells[3] in ("met", "tie", "missed")
    # The relay's targets against trio.SocketStream, one row each.
    relay = [
        cells[:2]
        for cells in ([c.strip() for c in line.split("|")[1:-1]] for line in lines)
        if cells[1].startswith("relay-")
    ]
    assert relay == [
        [f"trio_emtcp ≥ 1.4{TIMES} trio.SocketStream", "relay-bulk"],
        [f"trio_emtcp ≥ 1{TIMES} trio.SocketStream", "relay-pingpong"],
    ]
    assert "Skipped" not in tiny_run.out  # every contender is installed here


def test_bench_progress_goes_to_stderr_one_line_per_measurement(
    tiny_run: _Run,
) -> None:
    # Not a terminal here: plain lines, one per workload x contender x round.
    lines = [line for line in tiny_run.err.splitlines() if line.startswith("[")]
    measured = sum(len(w.contenders) for w in bench.workloads(TINY))
    assert len(lines) == measured * 3
    assert re.fullmatch(
        rf"\[1/{len(lines)}\] [\d.]+s bulk-4k \S+ round 1/3: [\d.]+ MiB/s", lines[0]
    )
    assert lines[-1].startswith(f"[{len(lines)}/{len(lines)}] ")
    assert "\r" not in tiny_run.err


def test_bench_json_has_raw_rounds_and_machine(tiny_run: _Run) -> None:
    report = tiny_run.report
    machine = report["machine"]
    assert set(machine) == {
        "cpu",
        "cores",
        "cores_usable",
        "machine",
        "kernel",
        "python",
        "trio",
        "trio_emtcp",
    }
    assert machine["cores"] >= 1
    assert report["settings"]["mode"] == "tiny"
    assert report["settings"]["rounds"] == 3
    assert report["settings"]["contenders"] == list(CONTENDERS)
    names = [w["name"] for w in report["workloads"]]
    assert names == list(bench.WORKLOAD_NAMES)
    runs = {w.name: w.contenders for w in bench.workloads(TINY)}
    for workload in report["workloads"]:
        assert set(workload["contenders"]) == set(runs[workload["name"]])
        for figures in workload["contenders"].values():
            rounds = figures["rounds"]
            assert len(rounds) == 3
            assert all(value > 0 for value in rounds)
            assert len(figures["seconds"]) == 3
            assert figures["min"] <= figures["median"] <= figures["max"]
            assert figures["median"] == sorted(rounds)[1]
        reference = workload["contenders"][REFERENCE]
        assert reference["ratio"] == 1.0
    concurrent = report["workloads"][-1]["contenders"]
    for figures in concurrent.values():
        assert len(figures["extra"]["peak_rss_mib"]) == 3
        assert len(figures["extra"]["rss_growth_mib"]) == 3
    summary = report["summary"]
    assert summary["geometric_mean_ratio"] == pytest.approx(
        _report.geometric_mean(list(summary["ratios"].values()))
    )
    assert set(summary["at_least_trio.socket"]) == _ran_by(_common.TRIO_SOCKET)
    assert set(summary["at_least_anyio"]) == _ran_by(_common.ANYIO)
    assert set(summary["ratios"]) == set(bench.WORKLOAD_NAMES)
    sizes = report["settings"]["sizes"]
    assert (sizes["relay_bytes"], sizes["relay_round_trips"]) == (
        TINY.relay_bulk,
        TINY.relay_round_trips,
    )
    assert report["settings"]["skipped"] == {}
    for target in report["targets"]:
        assert set(target) == {"target", "workload", "ratio", "verdict"}


def test_bench_module_runs_as_a_script() -> None:
    # ``python -m trio_emtcp._bench`` with one cheap workload.
    done = subprocess.run(
        [sys.executable, "-m", "trio_emtcp._bench", "--tiny", "--only", "connect"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| connect + accept + echo + close (connections/s) |" in done.stdout
    assert "over 1 workload:" in done.stdout


# -- options -------------------------------------------------------------------


def test_add_arguments_defaults() -> None:
    args = _parser().parse_args([])
    assert (args.quick, args.tiny, args.rounds, args.json, args.only) == (
        False,
        False,
        None,
        None,
        None,
    )


def test_add_arguments_only_takes_names_and_patterns() -> None:
    args = _parser().parse_args(["--only", "pingpong-*, connect,pingpong-1"])
    assert args.only == ["pingpong-1", "pingpong-64", "pingpong-1-2p", "connect"]
    args = _parser().parse_args(["--only", "bulk-*-2p"])
    assert args.only == ["bulk-4k-2p", "bulk-64k-2p", "bulk-1m-2p"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rounds", "2"], r"argument --rounds: must be at least 3, got 2"),
        (["--rounds", "x"], r"argument --rounds: expected an integer, got 'x'"),
        (
            ["--only", "bulk,connect"],
            r"argument --only: unknown workload 'bulk'; known: bulk-4k, .*, concurrent",
        ),
        (["--only", ","], r"argument --only: expected at least one workload name"),
        (
            ["--quick", "--tiny"],
            r"argument --tiny: not allowed with argument --quick",
        ),
    ],
)
def test_add_arguments_rejects(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert re.fullmatch(rf"bench-test: error: {message}", last), last


def test_main_refuses_json_in_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nowhere" / "out.json"
    args = _parser().parse_args(["--tiny", "--json", str(path)])
    assert bench.main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(
        r"python -m trio_emtcp bench: error: --json: no such directory: \S+nowhere\n",
        captured.err,
    )


def test_main_reports_a_failed_measurement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(contender: str, ctx: object) -> Sample:
        if contender == "asyncio":
            raise BenchError("connect asyncio: 15 bytes, expected 16")
        return Sample(1.0, 1.0)

    fake = bench.Workload("connect", "fake", "connections/s", broken)
    monkeypatch.setattr(bench, "workloads", lambda sizes: [fake])
    args = _parser().parse_args(["--tiny", "--only", "connect"])
    assert bench.main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == (
        "python -m trio_emtcp bench: error: connect, asyncio, round 1: "
        "BenchError: connect asyncio: 15 bytes, expected 16"
    )


def test_main_shows_the_traceback_of_an_unexpected_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(contender: str, ctx: object) -> Sample:
        raise ConnectionResetError(104, "Connection reset by peer")

    fake = bench.Workload("connect", "fake", "connections/s", broken)
    monkeypatch.setattr(bench, "workloads", lambda sizes: [fake])
    args = _parser().parse_args(["--tiny", "--only", "connect"])
    assert bench.main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err
    assert err.splitlines()[-1] == (
        "python -m trio_emtcp bench: error: connect, trio_emtcp, round 1: "
        "ConnectionResetError: [Errno 104] Connection reset by peer"
    )


async def test_main_refuses_to_run_inside_trio() -> None:
    args = _parser().parse_args(["--tiny"])
    with pytest.raises(RuntimeError, match=r"^main: called inside an event loop; "):
        bench.main(args)


def test_main_refuses_to_run_inside_asyncio() -> None:
    args = _parser().parse_args(["--tiny"])

    async def inside() -> int:
        return bench.main(args)

    with pytest.raises(RuntimeError, match=r"^main: called inside an event loop; "):
        asyncio.run(inside())


# -- the checks inside the workloads ------------------------------------------


def test_check_count_refuses_a_wrong_count() -> None:
    check_count("x", 16, 16)
    with pytest.raises(BenchError, match=r"^bulk trio_emtcp: 15 bytes, expected 16$"):
        check_count("bulk trio_emtcp", 15, 16)


def test_bulk_a_receiver_that_loses_bytes_fails_the_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = _bulk._emtcp_drain

    async def lossy(sock: Any, chunk: int) -> int:
        return await real(sock, chunk) - 1

    monkeypatch.setattr(_bulk, "_emtcp_drain", lossy)
    with pytest.raises(
        BenchError, match=r"^bulk trio_emtcp: 8191 bytes, expected 8192$"
    ):
        _bulk.run_local("trio_emtcp", 4096, 8192)


@pytest.mark.parametrize("contender", CONTENDERS)
def test_bulk_run_local_moves_every_byte(contender: str) -> None:
    sample = _bulk.run_local(contender, 4096, 3 * 4096)
    assert sample.value > 0
    assert sample.seconds > 0


# -- worker processes ----------------------------------------------------------


def test_worker_main_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert _worker.worker_main(["bulk"]) == 2
    assert _worker.worker_main(["sideways", "stdlib"]) == 2
    assert _worker.worker_main(["bulk", "twisted"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "usage: python -m trio_emtcp._bench._worker "
        "{bulk,concurrent,echo,relay,any} "
        "{" + ",".join(CONTENDERS) + "}"
    )


def test_WorkerPool_reports_a_worker_error_and_stops_it() -> None:
    with _pool.WorkerPool(["stdlib"]) as pool:
        worker = pool.worker("bulk", "stdlib")
        with pytest.raises(
            BenchError,
            match=r"^stdlib bulk worker: ValueError: command: unexpected for role "
            r"bulk: 'concurrent 1'$",
        ):
            worker.command("concurrent 1")
        with pytest.raises(
            BenchError, match=r"^stdlib bulk worker: exited with status 1$"
        ):
            worker.read_line()


def test_WorkerPool_kills_its_workers_after_a_failure() -> None:
    # The worker is blocked in accept(), waiting for a sender that will not
    # come: closing its input would not end it, so the pool kills it.
    pool = _pool.WorkerPool(["stdlib"])
    worker = pool.worker("bulk", "stdlib")
    assert worker.command("bulk 4096").startswith("port ")
    pool.__exit__(KeyError, KeyError("failure"), None)
    assert worker._proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    "contender",
    next(w for w in bench.workloads(TINY) if w.name == "pingpong-1-2p").contenders,
)
def test_WorkerPool_echo_worker_answers_every_round_trip(contender: str) -> None:
    with _pool.WorkerPool([contender]) as pool:
        worker = pool.worker("echo", contender)
        port = int(worker.command("echo 1").removeprefix("port "))
        sample = _pingpong.run_remote(contender, 1, 7, port)
        assert worker.expect("ok") == "7"
        assert sample.value > 0


def test_WorkerPool_bulk_worker_receives_and_counts() -> None:
    with _pool.WorkerPool(["stdlib"]) as pool:
        worker = pool.worker("bulk", "stdlib")
        port = int(worker.command("bulk 4096").removeprefix("port "))
        seconds, answered = _bulk.run_remote("stdlib", 4096, 5 * 4096, port)
        assert answered == 5 * 4096
        assert worker.expect("ok") == str(5 * 4096)
        assert seconds > 0


# -- progress --------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def fake_workload() -> bench.Workload:
    return bench.Workload("bulk-4k", "bulk", "MiB/s", lambda c, ctx: Sample(1.0, 1.0))


def test_Progress_on_a_terminal_rewrites_one_line(
    fake_workload: bench.Workload,
) -> None:
    screen = _Terminal()
    progress = bench.Progress(screen, total=2)
    progress.begin(fake_workload, "trio_emtcp", 1, 3)
    progress.end(fake_workload, "trio_emtcp", 1, 3, Sample(123.456, 0.5))
    progress.begin(fake_workload, "asyncio", 1, 3)
    progress.close()
    text = screen.getvalue()
    parts = text.split("\r")
    assert parts[0] == ""
    assert re.fullmatch(
        r"\[1/2\] bulk-4k \| trio_emtcp \| round 1/3 \| [\d.]+s\x1b\[K", parts[1]
    )
    assert re.fullmatch(
        r"\[2/2\] bulk-4k \| asyncio \| round 1/3 \| [\d.]+s\x1b\[K", parts[2]
    )
    assert parts[3] == "\x1b[K"
    assert "\n" not in text


def test_Progress_elsewhere_prints_a_line_per_result(
    fake_workload: bench.Workload,
) -> None:
    log = io.StringIO()
    progress = bench.Progress(log, total=2)
    progress.begin(fake_workload, "trio_emtcp", 2, 3)
    assert log.getvalue() == ""
    progress.end(fake_workload, "trio_emtcp", 2, 3, Sample(123.456, 0.5))
    progress.close()
    assert re.fullmatch(
        r"\[1/2\] [\d.]+s bulk-4k trio_emtcp round 2/3: 123 MiB/s\n", log.getvalue()
    )


# -- pure helpers ------------------------------------------------------------------


def test_summarize_median_min_max() -> None:
    assert _report.summarize([3.0, 1.0, 2.0]) == Summary(2.0, 1.0, 3.0)
    assert _report.summarize([4.0, 1.0, 2.0, 3.0]) == Summary(2.5, 1.0, 4.0)
    assert _report.summarize([7.0]) == Summary(7.0, 7.0, 7.0)
    with pytest.raises(ValueError, match=r"^values: must not be empty$"):
        _report.summarize([])


def test_geometric_mean_exact_values() -> None:
    assert _report.geometric_mean([1.0, 4.0]) == 2.0
    assert _report.geometric_mean([2.0, 8.0]) == 4.0
    assert _report.geometric_mean([0.5, 2.0]) == 1.0


@pytest.mark.parametrize("values", [[], [1.0, 0.0], [-1.0]])
def test_geometric_mean_refuses(values: list[float]) -> None:
    with pytest.raises(ValueError, match=r"^values: must "):
        _report.geometric_mean(values)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1234.5, "1234"),
        (999.6, "1000"),
        (99.96, "100"),
        (100.0, "100"),
        (12.345, "12.3"),
        (9.996, "10.0"),
        (1.2345, "1.23"),
        (0.004, "0.00"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert _report.format_number(value) == text


def test_format_cell() -> None:
    cell = _report.format_cell(Summary(812.0, 790.2, 830.4), 1.5234)
    assert cell == f"812 (790{EN_DASH}830), 1.52{TIMES}"
    cell = _report.format_cell(Summary(0.0, 0.0, 0.0), None)
    assert cell == f"0.00 (0.00{EN_DASH}0.00), n/a"


def test_markdown_table_pads_columns() -> None:
    table = _report.markdown_table(["a", "bb"], [["1", "2"], ["long", "x"]])
    assert table == ("| a    | bb  |\n|------|-----|\n| 1    | 2   |\n| long | x   |")


def test_markdown_table_refuses_a_short_row() -> None:
    with pytest.raises(ValueError, match=r"^rows: every row needs 2 cells, got 1$"):
        _report.markdown_table(["a", "b"], [["1"]])


_ROWS = [
    Row("fast", "fast thing", "MiB/s", {"me": [4.0, 2.0, 3.0], "ref": [1.0, 2.0, 1.5]}),
    Row("slow", "slow thing", "ops/s", {"me": [1.0, 1.0, 1.0], "ref": [2.0, 2.0, 2.0]}),
]


def test_comparison_table_exact() -> None:
    table = _report.comparison_table(
        _ROWS,
        ["me", "ref"],
        {"me": "Me", "ref": "Ref"},
        "ref",
        heading="workload",
        subject="me",
        rivals=["ref"],
    )
    d, x = EN_DASH, TIMES
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1  # padded to line up
    assert [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines] == [
        ["workload", "Me", "Ref", "Me ≥ Ref"],
        ["-" * 20, "-" * 25, "-" * 25, "-" * 10],
        [
            "fast thing (MiB/s)",
            f"3.00 (2.00{d}4.00), 2.00{x}",
            f"1.50 (1.00{d}2.00), 1.00{x}",
            "yes",
        ],
        [
            "slow thing (ops/s)",
            f"1.00 (1.00{d}1.00), 0.50{x}",
            f"2.00 (2.00{d}2.00), 1.00{x}",
            "no",
        ],
    ]


def test_comparison_table_without_a_reference_value_says_na() -> None:
    rows = [Row("m", "memory", "MiB", {"me": [1.0], "ref": [0.0]})]
    table = _report.comparison_table(rows, ["me", "ref"], {}, "ref", heading="h")
    assert table.splitlines()[-1] == (
        f"| memory (MiB) | 1.00 (1.00{EN_DASH}1.00), n/a | "
        f"0.00 (0.00{EN_DASH}0.00), n/a |"
    )


def test_ratios_and_at_least() -> None:
    assert _report.ratios(_ROWS, "me", "ref") == {"fast": 2.0, "slow": 0.5}
    assert _report.at_least(_ROWS, "me", "ref") == {"fast": True, "slow": False}
    assert _report.at_least(_ROWS, "me", "me") == {"fast": True, "slow": True}


def test_verdict_exact() -> None:
    text = _report.verdict(_ROWS, {"me": "Me"}, "me", "ref", ["ref", "me"])
    assert text == (
        f"Me / ref, geometric mean of the ratios over 2 workloads: 1.00{TIMES}; "
        "Me ≥ ref on 1 of 2 (not on: slow); Me ≥ Me on 2 of 2."
    )


def test_machine_description_and_line() -> None:
    machine = _report.machine_description()
    assert isinstance(machine["cpu"], str)
    assert machine["cpu"]
    assert isinstance(machine["cores"], int)
    assert machine["python"] == (
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    assert machine["kernel"] == f"{os.uname().sysname} {os.uname().release}"
    line = _report.machine_line(
        {
            "cpu": "Example CPU",
            "cores": 4,
            "cores_usable": 2,
            "kernel": "Linux 6.1",
            "python": "CPython 3.11.7",
            "trio": "0.35.0",
            "trio_emtcp": "0.1.0",
        }
    )
    assert line == (
        "Example CPU, 4 cores (2 usable), Linux 6.1, CPython 3.11.7, "
        "trio 0.35.0, trio_emtcp 0.1.0"
    )


# -- the request workload -------------------------------------------------------


@pytest.mark.parametrize("contender", CONTENDERS)
def test_request_run_answers_every_request(contender: str) -> None:
    sample = _request.run(contender, 5)
    assert sample.value > 0
    assert sample.extra["latency_us"] > 0


def test_request_emtcp_gets_tcp_no_delay_from_dial_and_listen() -> None:
    # The workload sets nothing on trio_emtcp's sockets: the helpers do.
    # Without TCP_NODELAY each request would wait ~40 ms (Nagle, delayed
    # ACK); 20 of them stay far below that.  A guard against losing the
    # rule, not a speed test: the bound is two orders of magnitude away.
    sample = _request.run(_common.EMTCP, 20)
    assert sample.extra["latency_us"] < 20_000


def test_workloads_name_only_known_contenders() -> None:
    for workload in bench.workloads(TINY):
        assert set(workload.contenders) <= set(CONTENDERS)
        assert _common.EMTCP in workload.contenders
        assert REFERENCE in workload.contenders
    names = {
        w.name for w in bench.workloads(TINY) if _common.EMTCP_TRIO in w.contenders
    }
    assert names == {
        "bulk-4k",
        "bulk-64k",
        "bulk-1m",
        "bulk-4k-2p",
        "bulk-64k-2p",
        "bulk-1m-2p",
        "request",
    }


def test_comparison_table_shows_a_contender_not_run() -> None:
    rows = [Row("r", "thing", "ops/s", {"ref": [1.0]})]
    table = _report.comparison_table(rows, ["me", "ref"], {}, "ref", heading="h")
    assert table.splitlines()[-1] == (
        f"| thing (ops/s) | not run | 1.00 (1.00{EN_DASH}1.00), 1.00{TIMES} |"
    )


# -- the echo server's memory script -----------------------------------------------


def test_echo_memory_script_runs_and_reports_both_servers() -> None:
    # A smoke run (a few clients, short waits): the figures mean nothing,
    # the script must not rot.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trio_emtcp._bench._echo_memory",
            "--quick",
            "--connections",
            "20",
            "--slowloris",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| trio")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "trio_emtcp echo",
        "trio.serve_tcp",
    ]
    for row in rows:
        assert re.fullmatch(
            r"\| .+ \| -?[\d.]+ KiB \| [\d.]+ / [\d.]+ / [\d.]+ MiB \|", row
        ), row


# -- contenders that need an optional package ---------------------------------------


def test_missing_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _common.missing(_common.EMTCP) is None
    assert _common.missing(_common.UVLOOP) is None  # installed for the tests
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "uvloop" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert _common.missing(_common.UVLOOP) == "uvloop is not installed"
    assert _common.missing(_common.UVLOOP_PROTOCOL) == "uvloop is not installed"
    assert _common.missing(_common.ANYIO) is None


def test_a_missing_contender_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        bench,
        "missing",
        lambda c: "uvloop is not installed" if c.startswith("uvloop") else None,
    )
    args = _parser().parse_args(["--tiny", "--only", "request"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert bench.main(args) == 0, err.getvalue()
    header = next(line for line in out.getvalue().splitlines() if "| workload" in line)
    assert "uvloop" not in header
    assert (
        "Skipped: uvloop streams (uvloop is not installed); uvloop BufferedProtocol "
        "(uvloop is not installed)."
    ) in out.getvalue()


@pytest.mark.parametrize(
    "call",
    [
        lambda: _bulk.run_local("bogus", 4096, 4096),
        lambda: _bulk.run_remote("bogus", 4096, 4096, 1),
        lambda: _bulk.receive_one("bogus", 4096, print),
        lambda: _pingpong.run("bogus", 1, 1),
        lambda: _pingpong.run_remote("bogus", 1, 1, 1),
        lambda: _pingpong.echo_one("bogus", 1, print),
        lambda: _request.run("bogus", 1),
        lambda: _relay.relay_one("bogus", 1, print),
    ],
)
def test_an_unknown_contender_is_refused(call: Any) -> None:
    with pytest.raises(ValueError, match=r"^contender: unknown, got 'bogus'$"):
        call()


# -- targets (pure) ------------------------------------------------------------------


def test_paired_ratios_compare_round_by_round() -> None:
    row = Row("w", "w", "u", {"me": [2.0, 9.0, 3.0], "ref": [1.0, 10.0, 0.0]})
    # A round whose reference is 0 says nothing.
    assert _report.paired_ratios(row, "me", "ref") == [2.0, 0.9]


@pytest.mark.parametrize(
    ("ratio", "factor", "verdict"),
    [(2.0, 2.0, "met"), (1.81, 2.0, "tie"), (1.79, 2.0, "missed"), (0.9, 1.0, "tie")],
)
def test_judge(ratio: float, factor: float, verdict: str) -> None:
    assert _report.judge(ratio, factor) == verdict


def test_target_rows_pick_their_workloads() -> None:
    rows = [
        Row("a", "a", "u", {"me": [2.0, 4.0, 3.0], "you": [1.0, 1.0, 1.0]}),
        Row("b", "b", "u", {"me": [1.0, 1.0, 1.0], "you": [2.0, 2.0, 2.0]}),
        Row("c", "c", "u", {"me": [1.0, 1.0, 1.0]}),  # you did not run
    ]
    targets = [
        _report.Target("me", "you", 2.0, workloads=("a",)),
        _report.Target("me", "you", 1.0, exclude=("a",)),
    ]
    assert _report.target_rows(rows, targets, {"me": "Me"}) == [
        [
            f"Me ≥ 2{TIMES} you",
            "a",
            f"3.00{TIMES} (2.00{TIMES}{EN_DASH}4.00{TIMES})",
            "met",
        ],
        [
            f"Me ≥ 1{TIMES} you",
            "b",
            f"0.50{TIMES} (0.50{TIMES}{EN_DASH}0.50{TIMES})",
            "missed",
        ],
    ]
    assert _report.targets_table(rows[2:], targets, {}) == ""


# -- the relay workload ------------------------------------------------------------


def _relay_workloads() -> list[bench.Workload]:
    return [w for w in bench.workloads(TINY) if w.name.startswith("relay-")]


def test_relay_workloads_are_listed_and_selectable() -> None:
    assert [w.name for w in _relay_workloads()] == ["relay-bulk", "relay-pingpong"]
    for workload in _relay_workloads():
        assert workload.contenders == (_common.EMTCP, _common.SOCKET_STREAM)
        assert workload.role == "relay"
    assert _parser().parse_args(["--only", "relay-*"]).only == [
        "relay-bulk",
        "relay-pingpong",
    ]


def test_relay_both_contenders_move_every_byte_through_three_processes() -> None:
    # Not the shared pool of --tiny: a worker per role, started only for
    # the contenders that take part (two relays, one stdlib far end per
    # shape).  Every count (client, server, relay both ways) is checked
    # inside measure(): a lost byte fails with BenchError.
    with _pool.WorkerPool(CONTENDERS) as pool:
        ctx = _workloads.Context(TINY, pool)
        for workload in _relay_workloads():
            for contender in workload.contenders:
                sample = workload.measure(contender, ctx)
                assert sample.value > 0
                assert sample.seconds > 0
        assert set(pool._workers) == {
            ("relay", _common.EMTCP),
            ("relay", _common.SOCKET_STREAM),
            ("bulk", _common.STDLIB),
            ("echo", _common.STDLIB),
        }


def test_relay_only_run_reports_the_two_relays_and_their_targets() -> None:
    args = _parser().parse_args(["--tiny", "--only", "relay-*"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert bench.main(args) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if line.startswith("| workload"))
    # Only the columns of the contenders that ran, no yes/no column.
    assert [cell.strip() for cell in header.split("|")[1:-1]] == [
        "workload (unit) — higher is better",
        "trio_emtcp",
        "trio.SocketStream",
    ]
    rows = [line for line in lines if line.startswith("| relay")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "relay, 1 MiB writes, 3 processes (MiB/s)",
        "relay, ping-pong, 64 B messages, 3 processes (round trips/s)",
    ]
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[2:-1]]
        assert re.fullmatch(
            rf"[\d.]+ \([\d.]+{EN_DASH}[\d.]+\), [\d.]+{TIMES}", cells[0]
        )
        assert cells[1].endswith(f", 1.00{TIMES}")
    targets = [line for line in lines if line.startswith("| trio_emtcp ≥")]
    assert [[c.strip() for c in t.split("|")[1:-1]][:2] for t in targets] == [
        [f"trio_emtcp ≥ 1.4{TIMES} trio.SocketStream", "relay-bulk"],
        [f"trio_emtcp ≥ 1{TIMES} trio.SocketStream", "relay-pingpong"],
    ]
    assert re.fullmatch(
        r"trio_emtcp / trio\.SocketStream, geometric mean of the ratios over 2 "
        rf"workloads: [\d.]+{TIMES}\.",
        lines[-1],
    ), lines[-1]


@pytest.mark.parametrize(("index", "client"), [(0, "run_bulk"), (1, "run_pingpong")])
def test_relay_a_failed_round_discards_both_workers(
    monkeypatch: pytest.MonkeyPatch, index: int, client: str
) -> None:
    real = getattr(_relay, client)

    def broken(*args: Any) -> Any:
        raise BenchError("relay client: bytes after the last answer")

    monkeypatch.setattr(_relay, client, broken)
    workload = _relay_workloads()[index]
    end = workload.name.removeprefix("relay-").replace("pingpong", "echo")
    with _pool.WorkerPool(CONTENDERS) as pool:
        ctx = _workloads.Context(TINY, pool)
        with pytest.raises(BenchError, match=r"^relay client: bytes after"):
            workload.measure(_common.EMTCP, ctx)
        # Both were waiting on a connection: killed, not left behind.
        assert set(pool._workers) == {("relay", _common.SOCKET_STREAM)}
        # The next round starts them again.
        monkeypatch.setattr(_relay, client, real)
        assert workload.measure(_common.EMTCP, ctx).value > 0
        assert set(pool._workers) == {
            ("relay", _common.SOCKET_STREAM),
            ("relay", _common.EMTCP),
            (end, _common.STDLIB),
        }


def test_relay_samples_refuse_wrong_counts() -> None:
    total = 4 * 1024
    ok = _relay.bulk_sample("x", total, (0.5, total), total, (total, 8))
    assert ok.value == total / 2**20 / 0.5
    with pytest.raises(BenchError, match=r"^relay bulk x: 4095 bytes, expected 4096$"):
        _relay.bulk_sample("x", total, (0.5, total - 1), total, (total, 8))
    with pytest.raises(BenchError, match=r"^relay bulk x \(server\): 0 bytes, "):
        _relay.bulk_sample("x", total, (0.5, total), 0, (total, 8))
    with pytest.raises(
        BenchError,
        match=r"^relay bulk x: the relay moved 4096 bytes to the server and 0 back, "
        r"expected 4096 and 8$",
    ):
        _relay.bulk_sample("x", total, (0.5, total), total, (total, 0))
    message = _relay._message(64)
    assert len(message) == 64
    sample = _relay.pingpong_sample("y", 64, 10, (0.5, 640, message), 640, (640, 640))
    assert sample.value == 20.0
    with pytest.raises(BenchError, match=r"^relay ping-pong y: the relay moved 640 "):
        _relay.pingpong_sample("y", 64, 10, (0.5, 640, message), 640, (640, 576))
    with pytest.raises(BenchError, match=r"^relay ping-pong y: the echo differs"):
        _relay.pingpong_sample("y", 64, 10, (0.5, 640, bytes(64)), 640, (640, 640))


@pytest.mark.parametrize("text", ["", "1", "1 2 3", "1 x", "-1 2"])
def test_relay_parse_counts_refuses(text: str) -> None:
    assert _relay.parse_counts("12 8") == (12, 8)
    with pytest.raises(BenchError, match=r"^relay: expected two byte counts, got "):
        _relay.parse_counts(text)
