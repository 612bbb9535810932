"""The command-line tools: ``python -m trio_emtcp COMMAND``.

Commands:

``demo``
    Runs the first example of the manual (a connected pair and
    ``stream.write_all``), then an echo exchange over loopback, printing
    each step: addresses, ports, bytes written and read.

``echo [--host H] [--port P] [--backlog N] [--workers N] [...]``
    (also ``--max-connections N``, ``--idle-timeout S``, ``--keep-alive
    IDLE,INTERVAL,COUNT`` or ``off``)
    A real echo server.  One task per connection, in a nursery; each waits
    for readability, then reads with ``read_some`` into a buffer taken from
    a shared pool (so an idle connection holds none) and writes back with
    ``stream.write_all``.  Keep-alive probes (60, 10, 6 by default) drop
    peers that vanished.  It logs one line to stderr per event (listening,
    connected, disconnected with byte counts, stopping), from a thread that
    drops lines rather than block when stderr is full.  SIGINT (Ctrl-C)
    and SIGTERM stop it cleanly: it stops accepting, closes every
    connection and exits with status 0.

``echo-client [--host H] [--port P]``
    Sends standard input to an echo server and writes what comes back to
    standard output; at the end of input it half-closes the connection and
    exits once the server has echoed everything and closed its side.

Exit status: 0 on success, 2 for a bad command line, 1 for a failure at run
time (address in use, connection refused, ...).  Both print one line on
stderr, no traceback.

The package: :mod:`._common` (errors, argument types, and resolve/listen/
connect on the public API), one module per command (:mod:`._demo`,
:mod:`._echo` with the ``--workers`` supervisor, :mod:`._client`), and
this module (the parser and :func:`main`).  Adding a command takes one
``async def name_command(args) -> int`` in a module of its own and one
``commands.add_parser("name", run=..., help=...)`` call in
:func:`build_parser` (followed by its ``add_argument`` calls).  A command
raises ``CommandError`` for a failure the user should read about, and
returns its exit status otherwise.  Only the public API is used (a test
checks it), so the tools double as examples of it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator, Sequence

import trio

from . import _client, _demo, _echo
from ._common import (
    PROG,
    Command,
    CommandError,
    Parser,
    add_endpoint_arguments,
    int_at_least,
    keep_alive_type,
    seconds_type,
)

__all__ = ["main"]


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Tools around trio_emtcp, Emilua's TCP API on Trio.",
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    commands.add_parser(
        "demo",
        run=_demo.demo_command,
        help="run the first example and an echo exchange, saying what happens",
        description="Run the manual's first example, then an echo exchange "
        "over loopback, and print each step.",
    )

    echo = commands.add_parser(
        "echo",
        run=_echo.echo_command,
        help="run an echo server (Ctrl-C or SIGTERM stops it)",
        description="An echo server: everything a client sends comes back. "
        "Logs to stderr; SIGINT and SIGTERM stop it cleanly.",
    )
    add_endpoint_arguments(echo, "listening")
    echo.add_argument(
        "--backlog",
        type=int_at_least(0),
        default=None,
        metavar="N",
        help="listen queue length (default: the system maximum)",
    )
    echo.add_argument(
        "--workers",
        type=int_at_least(1),
        default=1,
        metavar="N",
        help="processes sharing the port through SO_REUSEPORT (default: 1)",
    )
    echo.add_argument(
        "--max-connections",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="serve at most N connections at once; more wait in the backlog "
        "(default: no limit)",
    )
    echo.add_argument(
        "--idle-timeout",
        type=seconds_type,
        default=None,
        metavar="S",
        help="close a connection that made no progress for S seconds (default: never)",
    )
    echo.add_argument(
        "--keep-alive",
        type=keep_alive_type,
        default=_echo.KEEP_ALIVE,
        metavar="IDLE,INTERVAL,COUNT",
        help="keep-alive probes on every connection: the first after IDLE "
        "seconds of silence, then every INTERVAL seconds, COUNT unanswered "
        "ones drop it; 'off' to disable "
        f"(default: {','.join(map(str, _echo.KEEP_ALIVE))})",
    )
    # Internal: how the parent of --workers starts worker K (see _echo.echo_command).
    echo.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)

    client = commands.add_parser(
        "echo-client",
        run=_client.client_command,
        help="send stdin to an echo server, print the echo",
        description="Send standard input to an echo server and write the "
        "echo to standard output; exit when the server has echoed it all.",
    )
    add_endpoint_arguments(client, "server")

    # The benchmark runs its own event loops (one per measurement), so it is
    # a synchronous command: main() calls it outside trio.run.
    bench = commands.add_parser(
        "bench",
        help="compare trio_emtcp with trio.SocketStream, trio.socket, asyncio",
        description="Run the benchmark of SPEC §8 and print a Markdown table "
        "of medians and ratios to trio.SocketStream.",
    )
    bench.set_defaults(command_prog=bench.prog, sync_run=bench_main)
    from .. import _bench

    _bench.add_arguments(bench)
    return parser


def bench_main(args: argparse.Namespace) -> int:
    from .. import _bench

    return _bench.main(args)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside nested exception groups (or ``exc`` itself)."""
    # Duck-typed: BaseExceptionGroup is not a builtin before Python 3.11.
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, tuple):
        for sub in inner:
            yield from leaves(sub)
    else:
        yield exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command of the command line.

    Args:
      argv: the arguments after the program name; ``None`` for
        ``sys.argv[1:]``.

    Returns:
      The exit status: 0 on success, 1 when the command failed (the
      reason is on stderr), 130 after Ctrl-C outside the echo server (which
      handles it and returns 0).

    Raises:
      SystemExit: status 2 for a bad command line (one line on stderr), 0
        after ``--help``.
    """
    args = build_parser().parse_args(argv)
    sync_run = getattr(args, "sync_run", None)
    if sync_run is not None:
        status: int = sync_run(args)
        return status
    run: Command = args.run
    try:
        return trio.run(run, args)
    except BaseException as exc:
        found = list(leaves(exc))
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in found):
            return 128 + signal.SIGINT
        errors = [leaf for leaf in found if isinstance(leaf, CommandError)]
        if errors and all(
            isinstance(leaf, (CommandError, KeyboardInterrupt)) for leaf in found
        ):
            print(f"{args.command_prog}: error: {errors[0]}", file=sys.stderr)
            return errors[0].status
        raise
