"""The parent's side of the worker processes (see :mod:`._worker`).

:class:`WorkerPool` starts one worker process per contender and role on
first use, speaks to each line by line, and stops them all at the end.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import IO, final

from ._common import CONTENDERS, BenchError

#: The commands a worker takes; a worker started for one of them (its role)
#: takes only that one, a worker of role ``any`` takes all.
COMMANDS = ("bulk", "concurrent", "echo", "relay")
ANY = "any"
ROLES = (*COMMANDS, ANY)
MODULE = "trio_emtcp._bench._worker"

# How long a worker may take to exit once its input is closed before it is
# killed: it is then idle, so a second is plenty; 10 covers a loaded box.
_EXIT_TIMEOUT = 10.0


def _package_root() -> str:
    """The directory holding the ``trio_emtcp`` package."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@final
class Worker:
    """One worker process, spoken to line by line."""

    def __init__(self, role: str, contender: str) -> None:
        self.name = f"{contender} {role} worker"
        env = dict(os.environ)
        # The worker imports this package by name: make that work from a
        # source tree that is not installed, too.
        root = _package_root()
        env["PYTHONPATH"] = os.pathsep.join(
            [root, *filter(None, [env.get("PYTHONPATH")])]
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, role, contender],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
        )
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._stdin: IO[str] = self._proc.stdin
        self._stdout: IO[str] = self._proc.stdout
        self._ready = False

    def wait_ready(self) -> None:
        """Wait for its ``ready`` line (once).

        Raises:
          BenchError: it exited or said something else.
        """
        if not self._ready:
            self.expect("ready")
            self._ready = True

    def send(self, line: str) -> None:
        """Write one command line.

        Raises:
          BenchError: the worker has exited.
        """
        try:
            self._stdin.write(line + "\n")
            self._stdin.flush()
        except (BrokenPipeError, ValueError):
            raise self._gone() from None

    def read_line(self) -> str:
        """The next answer line, without its newline.

        Raises:
          BenchError: the worker reported an error or exited.
        """
        line = self._stdout.readline()
        if not line:
            raise self._gone()
        line = line.rstrip("\n")
        if line.startswith("error "):
            raise BenchError(f"{self.name}: {line[len('error ') :]}")
        return line

    def command(self, line: str) -> str:
        """Send a command and return the first answer line.

        Raises:
          BenchError: the worker reported an error or exited.
        """
        self.send(line)
        return self.read_line()

    def expect(self, word: str) -> str:
        """Read a line ``WORD rest`` and return ``rest``.

        Raises:
          BenchError: another answer, an error, or the worker exited.
        """
        line = self.read_line()
        head, _, rest = line.partition(" ")
        if head != word:
            raise BenchError(f"{self.name}: expected {word!r}, got {line!r}")
        return rest

    def _gone(self) -> BenchError:
        try:
            status = self._proc.wait(timeout=_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            return BenchError(f"{self.name}: stopped answering")
        return BenchError(f"{self.name}: exited with status {status}")

    def close_input(self) -> None:
        """Close its input: the worker exits when it is next idle."""
        with contextlib.suppress(OSError):
            self._stdin.close()

    def close(self) -> None:
        """Close its input, wait for it to exit (kill it if it does not)."""
        self.close_input()
        try:
            self._proc.wait(timeout=_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stdout.close()

    def kill(self) -> None:
        """Stop it at once (after a failure left it in an unknown state)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self.close()


@final
class WorkerPool:
    """The worker processes of one run, started on first use, per role.

    The first request for a role starts that role's worker for every
    contender at once, so that their start-ups (importing trio, asyncio)
    overlap; idle workers wait on their input and take no CPU time.

    Args:
      contenders: whose workers to start.
      shared: one worker per contender serves every role (role ``any``).
        Halves the start-ups, but then one process's peak RSS covers both
        roles: for ``--tiny`` runs, whose numbers mean nothing anyway.
    """

    def __init__(
        self, contenders: Sequence[str] = CONTENDERS, *, shared: bool = False
    ) -> None:
        self._contenders = tuple(contenders)
        self._shared = shared
        self._workers: dict[tuple[str, str], Worker] = {}

    def _role(self, role: str) -> str:
        return ANY if self._shared else role

    def start(self, role: str, among: Sequence[str] | None = None) -> None:
        """Start the role's missing workers, without waiting for them.

        Args:
          among: the contenders to start it for (default: the pool's).
        """
        role = self._role(role)
        for contender in self._contenders if among is None else among:
            if (role, contender) not in self._workers:
                self._workers[(role, contender)] = Worker(role, contender)

    def worker(
        self, role: str, contender: str, *, among: Sequence[str] | None = None
    ) -> Worker:
        """The worker of ``role`` for ``contender``, ready for a command.

        The first request for a role starts the role's workers for every
        contender (or for those of ``among``, where only some take part:
        the relay workers, the far end that is the same for all) and waits
        until they are all ready, so that none is still starting while
        another measures.  A worker that was retired since, or that the
        first request did not start, is started alone.

        Raises:
          BenchError: a worker failed to start.
        """
        key = (self._role(role), contender)
        if not any(have == key[0] for have, _ in self._workers):
            self.start(role, among)
            for (have, _), worker in self._workers.items():
                if have == key[0]:
                    worker.wait_ready()
        if key not in self._workers:
            self._workers[key] = Worker(*key)
        worker = self._workers[key]
        worker.wait_ready()
        return worker

    def retire(self, role: str, contender: str) -> None:
        """Stop a worker after use (a fresh one is started if needed again).

        Does nothing for a shared pool, whose workers serve other roles.
        """
        if self._shared:
            return
        worker = self._workers.pop((role, contender), None)
        if worker is not None:
            worker.close()

    def discard(self, role: str, contender: str) -> None:
        """Kill a worker a failure left in an unknown state."""
        worker = self._workers.pop((self._role(role), contender), None)
        if worker is not None:
            worker.kill()

    def close(self, *, force: bool = False) -> None:
        """Stop every worker.

        Args:
          force: kill them rather than wait until they are idle (after a
            failure or Ctrl-C, one may be blocked on a connection that will
            never come).
        """
        workers, self._workers = self._workers, {}
        for worker in workers.values():
            if force:
                worker.kill()
            else:
                worker.close_input()
        for worker in workers.values():
            worker.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(force=exc_type is not None)
