"""Which errors to catch: a line server that tells a lost client from its own failure.

The server appends every line a client sends to a journal file and answers
``OK``.  A client that goes away (a reset, a dead peer's timeout, a line over
the limit, the server aborting it) is logged and dropped; a failure of the
server itself (the journal cannot be opened) propagates.  Catching
``OSError`` instead would log a misconfigured journal as "client dropped",
once per client, for ever.

Run it: ``python examples/errors.py``.
"""

from __future__ import annotations

import errno
import logging
import tempfile
from pathlib import Path

import trio

from trio_emtcp import EndOfFile, OperationAborted, RecordTooLong, socket_pair, stream
from trio_emtcp.ip.tcp import Socket

log = logging.getLogger("errors_example")

# The longest line the server buffers, terminator included.
MAX_LINE = 1024

# Errors of a lost connection that Python gives no ConnectionError subclass
# (the same ones a socket remembers, with ECONNRESET, ECONNABORTED and
# ETIMEDOUT: see "Resets stay resets" in docs/dead-peers.rst).
NETWORK_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH})


def is_connection_loss(exc: BaseException) -> bool:
    """Whether ``exc`` ends one connection, and not the program.

    True for what the peer or the network did (a reset, a broken pipe, a
    dead peer's ``ETIMEDOUT``, an unreachable host), for the end of the
    stream, for a record over the scanner's limit, and for an operation
    that another task of ours aborted (``close()``/``cancel()``).  False for
    everything else: the program's own errors (a file it cannot open, a
    bad argument) and the task's own cancellation, ``trio.Cancelled``.
    """
    if isinstance(
        exc,
        (ConnectionError, TimeoutError, EndOfFile, RecordTooLong, OperationAborted),
    ):
        return True
    return isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS


async def handle(client: Socket, journal: Path) -> None:
    """Serve one client: append each of its lines to ``journal``, answer OK.

    Returns when the client ends its stream or is lost (logged); raises
    what is the server's own failure.  Closes ``client`` either way.
    """
    lines = stream.Scanner(client, max_record_size=MAX_LINE)
    try:
        async for line in lines:
            async with await trio.open_file(journal, "ab") as f:
                await f.write(line + b"\n")
            await stream.write_all(client, b"OK\n")
    except Exception as exc:
        if not is_connection_loss(exc):
            raise  # the server's own failure: not this client's doing
        log.info("client dropped: %r", exc)
    finally:
        client.close()


async def main() -> None:
    """One client over a loopback pair: a line, then a line over the limit."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal.txt"
        client, server = await socket_pair()
        async with client, trio.open_nursery() as nursery:
            nursery.start_soon(handle, server, journal)
            replies = stream.Scanner(client)
            await stream.write_all(client, b"hello\n")
            print(f"client: sent b'hello', got {await replies.get_line()!r}")
            await stream.write_all(client, b"x" * 2 * MAX_LINE + b"\n")
            try:
                await replies.get_line()
            except Exception as exc:
                if not is_connection_loss(exc):
                    raise
                print(f"client: sent {2 * MAX_LINE} bytes, the server dropped it")
        print(f"journal: {journal.read_bytes()!r}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="server: %(message)s")
    trio.run(main)
