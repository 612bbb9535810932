"""The progress display on standard error while the benchmark runs."""

from __future__ import annotations

import shutil
import time
from typing import IO, final

from ._common import Sample
from ._report import format_number
from ._workloads import Workload


@final
class Progress:
    """What the run is doing, on a terminal or in a log.

    On a terminal: one line rewritten in place (``\\r``) at the start of
    each measurement: workload, contender, round, elapsed time.  Otherwise
    one plain line per finished measurement, with its value.  Nothing is
    printed while a measurement runs (a ticking thread would compete with
    the contenders for the GIL).
    """

    def __init__(self, stream: IO[str], total: int) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._total = total
        self._done = 0
        self._start = time.perf_counter()
        self._shown = False

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self._start:.1f}s"

    def begin(self, workload: Workload, contender: str, k: int, rounds: int) -> None:
        """A measurement starts."""
        if not self._tty:
            return
        line = (
            f"[{self._done + 1}/{self._total}] {workload.name} | {contender} | "
            f"round {k}/{rounds} | {self._elapsed()}"
        )
        width = max(shutil.get_terminal_size().columns - 1, 20)
        self._stream.write("\r" + line[:width] + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def end(
        self, workload: Workload, contender: str, k: int, rounds: int, sample: Sample
    ) -> None:
        """A measurement finished with ``sample``."""
        self._done += 1
        if self._tty:
            return
        self._stream.write(
            f"[{self._done}/{self._total}] {self._elapsed()} {workload.name} "
            f"{contender} round {k}/{rounds}: {format_number(sample.value)} "
            f"{workload.unit}\n"
        )
        self._stream.flush()

    def close(self) -> None:
        """Clear the terminal line, so the report starts on a clean line."""
        if self._tty and self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False
