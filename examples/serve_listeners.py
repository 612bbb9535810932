"""An echo server run by Trio's own ``trio.serve_listeners``.

A trio_emtcp :class:`~trio_emtcp.ip.tcp.Acceptor` is a
:class:`trio.abc.Listener`, and the sockets it accepts are Trio streams, so
Trio's server loop can drive them: it accepts connections, runs the handler
for each in its own task, and closes the connection when the handler
returns.  Cancelling its scope stops it cleanly; it closes the acceptor and
every connection.

Run it: ``python examples/serve_listeners.py [PORT]`` (default 7000; 0
picks a free port), then ``nc 127.0.0.1 7000``; Ctrl-C stops it.
"""

from __future__ import annotations

import signal
import sys

import trio

from trio_emtcp import ip

HOST = "127.0.0.1"
PORT = 7000


async def echo(sock: ip.tcp.Socket) -> None:
    """Send back everything the client sends, until it closes its side."""
    while data := await sock.receive_some():
        await sock.send_all(data)


async def serve(
    port: int = PORT, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``echo`` on ``HOST:port`` until cancelled.

    Reports the port through ``task_status`` (``nursery.start``), which
    tells the real one when ``port`` is 0.
    """
    acceptor = ip.tcp.listen(HOST, port)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, echo, [acceptor])
        task_status.started(acceptor.local_port)
        # Runs until the caller cancels it; serve_listeners then closes
        # the acceptor and every connection.  Closing the acceptor under it
        # instead would make its accept raise OperationAborted.


async def main(port: int = PORT) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve, port)
            print(f"listening on {HOST}:{port}", flush=True)
            async for _ in signals:
                break  # the first signal stops the server
            nursery.cancel_scope.cancel()
    print("stopped")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else PORT)
