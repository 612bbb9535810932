"""``demo``: the manual's first example, then an echo exchange, narrated."""

from __future__ import annotations

import argparse

import trio

from .. import EndOfFile, ip, socket_pair, stream
from ..ip.tcp import Acceptor, Socket
from ._common import endpoint

# The server's read buffer.
BUFFER_SIZE = 64 * 1024


async def demo_command(args: argparse.Namespace) -> int:
    """``demo``: the first example, then an echo exchange, narrated."""
    print("1. The first example: a connected pair and stream.write_all")
    a, b = await socket_pair()
    async with a, b, trio.open_nursery() as nursery:
        print(
            f"   socket_pair() connected a ({endpoint(a, 'local')}) "
            f"to b ({endpoint(b, 'local')})"
        )

        async def reader() -> None:
            buf = bytearray(1024)
            n = await b.read_some(buf)
            print(f"   b.read_some(buf) read {n} bytes: {bytes(buf[:n])!r}")

        nursery.start_soon(reader)
        n = await stream.write_all(a, b"Hello World")
        print(f"   stream.write_all(a, b'Hello World') returned {n}")

    print("2. An echo exchange over loopback")
    messages = [b"hello", b"echo, echo", b"goodbye"]
    async with Acceptor() as acceptor:
        loopback = ip.Address.loopback_v4()
        acceptor.open(loopback)
        acceptor.bind(loopback, 0)
        acceptor.listen()
        server_endpoint = ip.tostring(acceptor.local_address, acceptor.local_port)
        print(f"   server: listening on {server_endpoint} (port 0 picked a free port)")
        async with Socket() as client, trio.open_nursery() as nursery:
            await client.connect(acceptor.local_address, acceptor.local_port)
            print(
                f"   client: connected from {endpoint(client, 'local')} "
                f"to {endpoint(client, 'remote')}; it waits in the server's "
                "backlog until accept()"
            )
            await nursery.start(_demo_echo_once, acceptor)
            total = 0
            for message in messages:
                print(f"   client: sending {message!r}")
                written = await stream.write_all(client, message)
                back = bytearray(len(message))
                read = await stream.read_all(client, back)
                print(
                    f"   client: wrote {written} bytes, read {read} bytes back: "
                    f"{bytes(back)!r}"
                )
                total += written
            client.shutdown("send")
            print("   client: shutdown('send'): no more data from the client")
            try:
                await client.read_some(bytearray(1))
            except EndOfFile:
                print("   client: read_some raised EndOfFile: the server closed too")
    print(f"   server: acceptor closed; {total} bytes went there and back")
    return 0


async def _demo_echo_once(
    acceptor: Acceptor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    async with await acceptor.accept() as conn:
        peer = endpoint(conn, "remote")
        print(f"   server: accept() returned the connection from {peer}")
        task_status.started()
        buf = bytearray(BUFFER_SIZE)
        view = memoryview(buf)
        total = 0
        try:
            while True:
                n = await conn.read_some(buf)
                print(f"   server: read_some read {n} bytes, writing them back")
                total += await stream.write_all(conn, view[:n])
        except EndOfFile:
            print(
                f"   server: read_some raised EndOfFile after {total} bytes; "
                "closing the connection"
            )
