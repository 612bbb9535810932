"""A TCP relay: every client's connection is passed on to one server.

Run it in front of any TCP server, then talk to the relay instead::

    python examples/relay.py --port 8000 --to 127.0.0.1:8080
    curl http://127.0.0.1:8000/

What it shows: :func:`stream.relay <trio_emtcp.stream.relay>` does the
whole job of a relay.  It copies both ways at once (between two Sockets on
Linux the bytes never enter Python: the kernel moves them through a pipe),
passes each side's end of stream on as a half-close, and returns when
both directions have ended.  An error in one direction (a reset) stops the
other and comes out as that one exception, with the byte counts of both
directions in ``bytes_transferred``.  Each client has its own task in a
nursery, and a client whose server cannot be reached is closed alone.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence

import trio

from trio_emtcp import ip, stream
from trio_emtcp.ip.tcp import Socket


async def pass_on(client: Socket, host: str, port: int) -> None:
    """Relay one client to ``host``:``port``; log the outcome."""
    name = ip.tostring(client.remote_address, client.remote_port)
    async with client:
        try:
            server = await ip.tcp.dial(host, port)
        except OSError as exc:
            print(f"{name}: {exc}", flush=True)
            return
        async with server:
            try:
                up, down = await stream.relay(client, server)
            except OSError as exc:
                # A reset on either side, or a close from elsewhere: the
                # counts say how far each direction got.
                up, down = exc.bytes_transferred  # type: ignore[attr-defined]
                print(f"{name}: {exc} after {up} up, {down} down", flush=True)
                return
    print(f"{name}: {up} bytes up, {down} down", flush=True)


async def serve(
    host: str,
    port: int,
    target_host: str,
    target_port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Relay every connection to ``host``:``port`` until cancelled."""
    async with ip.tcp.listen(host, port) as acceptor, trio.open_nursery() as nursery:
        where = ip.tostring(acceptor.local_address, acceptor.local_port)
        print(f"relay on {where} to {target_host}:{target_port}", flush=True)
        task_status.started(acceptor.local_port)
        while True:
            client = await acceptor.accept()
            nursery.start_soon(pass_on, client, target_host, target_port)


async def serve_until_signal(host: str, port: int, to_host: str, to_port: int) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, host, port, to_host, to_port)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    print("stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A TCP relay.")
    parser.add_argument("--host", default="127.0.0.1", help="numeric IP address")
    parser.add_argument("--port", type=int, default=8000, help="0 picks one")
    parser.add_argument("--to", required=True, help="HOST:PORT of the server")
    args = parser.parse_args(argv)
    to_host, _, to_port = args.to.rpartition(":")
    trio.run(
        serve_until_signal, args.host, args.port, to_host.strip("[]"), int(to_port)
    )


if __name__ == "__main__":
    main()
