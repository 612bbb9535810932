"""``echo-client``: standard input to an echo server, its echo to stdout."""

from __future__ import annotations

import argparse
import os
import sys

import trio

from .. import EndOfFile, stream
from ._common import CommandError, connect, describe, endpoint, resolve

# How much of standard input goes out per write, and the read buffer.
BUFFER_SIZE = 64 * 1024


async def client_command(args: argparse.Namespace) -> int:
    """``echo-client``: stdin to the server, the echo to stdout.

    Standard input is read in a worker thread (a terminal's descriptor is
    shared with the shell, so it is not switched to non-blocking mode):
    each read returns what is available, a line at a time from a terminal,
    and is sent at once.  At the end of input the client half-closes
    (``shutdown("send")``) and keeps printing until the server closes its
    side, so every echo is in before it exits.
    """
    port: int = args.port
    sock = await connect(await resolve(args.host, port, passive=False), port)
    async with sock:
        server = endpoint(sock, "remote")

        def broken(exc: OSError) -> CommandError:
            return CommandError(f"connection to {server}: {describe(exc)}")

        input_done = trio.Event()

        async def send_input() -> None:
            # No stdin at all (Python sets it to None when fd 0 is closed)
            # is an empty input.
            fd = sys.stdin.fileno() if sys.stdin is not None else -1
            while fd >= 0:
                try:
                    chunk = await trio.to_thread.run_sync(
                        os.read, fd, BUFFER_SIZE, abandon_on_cancel=True
                    )
                except OSError as exc:
                    raise CommandError(f"stdin: {describe(exc)}") from None
                if not chunk:
                    break
                try:
                    await stream.write_all(sock, chunk)
                except OSError as exc:
                    raise broken(exc) from None
            try:
                sock.shutdown("send")
            except OSError as exc:
                raise broken(exc) from None
            input_done.set()

        out = sys.stdout.buffer
        buf = bytearray(BUFFER_SIZE)
        view = memoryview(buf)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_input)
            while True:
                try:
                    n = await sock.read_some(buf)
                except EndOfFile:
                    break
                except OSError as exc:
                    raise broken(exc) from None
                out.write(view[:n])
                out.flush()
            if not input_done.is_set():
                raise CommandError(
                    f"{server} closed the connection before the end of input"
                )
    return 0
