"""``python -m trio_emtcp._bench``: the benchmark without the CLI around it."""

from __future__ import annotations

import argparse
import signal
import sys

from . import add_arguments, main


def _entry() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trio_emtcp._bench",
        description="Benchmark trio_emtcp against trio.SocketStream, raw "
        "trio.socket, asyncio streams and blocking stdlib sockets on loopback.",
    )
    add_arguments(parser)
    args = parser.parse_args()
    try:
        return main(args)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(_entry())
