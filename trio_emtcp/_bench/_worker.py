"""A worker process: the far end of the two-process and memory workloads.

``python -m trio_emtcp._bench._worker ROLE CONTENDER`` runs one contender
in its own process and takes commands on standard input, one per line,
answering on standard output:

* at start-up it writes ``ready``;
* command ``bulk CHUNK``: listen on the loopback, write
  ``port P``, receive one transfer with ``CHUNK``-sized reads, answer its
  byte count over the connection, then write ``ok COUNT``;
* command ``concurrent N``: run the many-connections
  round with ``N`` connections and write its figures as one JSON object;
* command ``echo SIZE``: listen on the loopback, write ``port P``, echo
  ``SIZE``-byte messages on one connection until its end of stream, then
  write ``ok COUNT`` (the bytes echoed);
* command ``relay PORT``: listen on the loopback, write ``port P``, relay
  one connection to the loopback's ``PORT`` both ways until both ends of
  stream, then write ``ok FORWARD BACK`` (the bytes moved each way);
* end of input: exit with status 0.

ROLE is the one command the worker takes, or ``any``.

A failure writes ``error MESSAGE`` (the traceback goes to standard error)
and exits with status 1.  The worker ignores SIGINT: on Ctrl-C the parent
closes its input, which ends it.

The package does not import this module (``runpy`` would warn about a
module imported before it runs as ``__main__``); the parent's side is
:mod:`._pool`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import traceback
from collections.abc import Sequence

from . import _bulk, _concurrent, _pingpong, _relay
from ._common import CONTENDERS
from ._pool import ANY, COMMANDS, MODULE, ROLES


def _answer(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _serve(role: str, contender: str) -> None:
    _answer("ready")
    while line := sys.stdin.readline():
        command, _, argument = line.strip().partition(" ")
        if command not in COMMANDS or (command != role and role != ANY):
            raise ValueError(f"command: unexpected for role {role}: {line.strip()!r}")
        if command == "bulk":
            received = _bulk.receive_one(
                contender, int(argument), lambda port: _answer(f"port {port}")
            )
            _answer(f"ok {received}")
        elif command == "echo":
            echoed = _pingpong.echo_one(
                contender, int(argument), lambda port: _answer(f"port {port}")
            )
            _answer(f"ok {echoed}")
        elif command == "relay":
            forward, back = _relay.relay_one(
                contender, int(argument), lambda port: _answer(f"port {port}")
            )
            _answer(f"ok {forward} {back}")
        else:
            _answer(json.dumps(_concurrent.measure(contender, int(argument))))


def worker_main(argv: Sequence[str]) -> int:
    """Run a worker process (``argv``: ROLE CONTENDER).

    Returns:
      0 at the end of input; 1 after a failure (reported on both outputs);
      2 for bad arguments.
    """
    if len(argv) != 2 or argv[0] not in ROLES or argv[1] not in CONTENDERS:
        print(
            f"usage: python -m {MODULE} {{{','.join(ROLES)}}} "
            f"{{{','.join(CONTENDERS)}}}",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve(argv[0], argv[1])
    except Exception as exc:
        traceback.print_exc()
        with contextlib.suppress(OSError):
            _answer(f"error {type(exc).__name__}: {exc}".replace("\n", " "))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
