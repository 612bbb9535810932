"""An echo server: every byte a client sends comes back to it.

Run it with ``python examples/echo_server.py [PORT]`` (default 7000; 0
picks a free port), talk to it with ``nc 127.0.0.1 7000``, stop it with
Ctrl-C.
"""

from __future__ import annotations

import signal
import sys

import trio

from trio_emtcp import EndOfFile, ip, stream

HOST = "127.0.0.1"
PORT = 7000
BUFFER_SIZE = 64 * 1024  # one buffer per connection, reused for every read


async def echo(conn: ip.tcp.Socket) -> None:
    """Send back everything the client sends, until it stops sending."""
    async with conn:  # closes the connection however we leave
        buf = bytearray(BUFFER_SIZE)
        view = memoryview(buf)
        try:
            while True:
                n = await conn.read_some(buf)  # waits for at least 1 byte
                await stream.write_all(conn, view[:n])
        except EndOfFile:
            pass  # the client is done; closing our side tells it we are too
        except OSError as exc:
            print(f"connection lost: {exc}")  # e.g. reset by the client


async def accept_loop(acceptor: ip.tcp.Acceptor, nursery: trio.Nursery) -> None:
    """Give each new connection a task of its own."""
    while True:
        conn = await acceptor.accept()
        nursery.start_soon(echo, conn)


async def main(port: int = PORT) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with ip.tcp.Acceptor() as acceptor:
            address = ip.Address(HOST)
            acceptor.open(address)
            acceptor.set_option("reuse_address", True)
            acceptor.bind(address, port)
            acceptor.listen()
            where = ip.tostring(acceptor.local_address, acceptor.local_port)
            print(f"listening on {where}", flush=True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept_loop, acceptor, nursery)
                async for _ in signals:
                    break  # the first signal stops the server
                # Cancelling the nursery ends the accept loop and every
                # echo task; each one closes its connection on the way out.
                nursery.cancel_scope.cancel()
    print("stopped")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else PORT)
