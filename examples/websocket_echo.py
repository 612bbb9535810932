"""A WebSocket echo server: trio-websocket on a trio_emtcp acceptor.

trio-websocket's :class:`~trio_websocket.WebSocketServer` takes a list of
Trio listeners.  ``ip.tcp.listen`` gives an
:class:`~trio_emtcp.ip.tcp.Acceptor`, which is one, and every connection it
accepts is a :class:`~trio_emtcp.ip.tcp.Socket`, a Trio stream, with
TCP_NODELAY already on (as ``trio.serve_tcp`` would leave it): the
WebSocket library needs no glue.

Run it: ``python examples/websocket_echo.py [PORT]`` (default 8765; 0 picks
a free port); any WebSocket client can then talk to
``ws://127.0.0.1:8765/``.  Ctrl-C stops it.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, cast

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, WebSocketServer

from trio_emtcp import ip

HOST = "127.0.0.1"
PORT = 8765
# trio-websocket refuses messages over 1 MiB by default; echo up to 16 MiB.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024


async def echo(request: WebSocketRequest) -> None:
    """Accept the connection and send every message back, as it came."""
    ws = await request.accept()
    while True:
        try:
            message = await ws.get_message()
        except ConnectionClosed:
            return
        await ws.send_message(message)


async def serve(
    port: int = PORT, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve WebSocket echo on ``HOST:port`` until cancelled.

    Reports the port through ``task_status`` (``nursery.start``).
    """
    acceptor = ip.tcp.listen(HOST, port)
    # trio-websocket annotates its listeners as trio.SocketListener, but only
    # uses the trio.abc.Listener interface (accept, aclose).
    listeners = cast("Any", [acceptor])
    server = WebSocketServer(echo, listeners, max_message_size=MAX_MESSAGE_SIZE)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        task_status.started(acceptor.local_port)


async def main(port: int = PORT) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve, port)
            print(f"listening on ws://{HOST}:{port}/", flush=True)
            async for _ in signals:
                break  # the first signal stops the server
            nursery.cancel_scope.cancel()
    print("stopped")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else PORT)
