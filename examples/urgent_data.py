"""Urgent (out-of-band) data, after Emilua's ``example/tcp oob``.

Two servers, each with its client, over loopback:

* ``inline_server`` ports ``server_inline.lua``: with ``out_of_band_inline``
  on, the urgent byte stays in the normal stream.  A read never crosses the
  urgent mark, so after each ``wait("read")`` the server asks ``at_mark``
  whether the next byte is the urgent one.
* ``out_of_line_server`` ports ``server.lua``, with ``wait("error")``: the
  urgent byte is taken out of the stream; ``wait("error")`` says it is
  pending and ``receive(..., ["out_of_band"])`` fetches it.

Each client sends ``b"hello "``, then the urgent byte ``b"!"`` with
``send(..., ["out_of_band"])``, then ``b"world"``, and closes.

Run it: ``python examples/urgent_data.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from trio_emtcp import EndOfFile, stream
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket


async def client(port: int) -> None:
    """Send normal data, one urgent byte, more normal data; then close."""
    async with Socket() as sock:
        await sock.connect(Address.loopback_v4(), port)
        await stream.write_all(sock, b"hello ")
        print("client: sent b'hello '")
        # TCP has room for one urgent byte at a time (the urgent pointer).
        await sock.send(b"!", ["out_of_band"])
        print("client: sent urgent byte b'!'")
        await stream.write_all(sock, b"world")
        print("client: sent b'world'")


async def inline_server(acceptor: Acceptor) -> None:
    """Find the urgent byte in the normal stream with ``at_mark``."""
    async with await acceptor.accept() as sock:
        sock.set_option("out_of_band_inline", True)
        buf = bytearray(1024)
        while True:
            # Wait first, then look: at_mark is only meaningful once the
            # data (and the urgent pointer with it) has arrived.
            await sock.wait("read")
            if sock.at_mark:
                # The next byte is the urgent one: read exactly that byte.
                n = await sock.read_some(memoryview(buf)[:1])
                print(f"server: urgent byte {bytes(buf[:n])!r} (inline)")
                continue
            try:
                # Stops before the urgent mark, if there is one ahead.
                n = await sock.read_some(buf)
            except EndOfFile:
                print("server: end of stream")
                return
            print(f"server: data {bytes(buf[:n])!r}")


async def out_of_line_server(acceptor: Acceptor) -> None:
    """Wait for the urgent byte with ``wait("error")``, then receive it."""
    async with await acceptor.accept() as sock:
        # An exceptional condition: here, urgent data (it would also end on
        # a pending error such as a reset).
        await sock.wait("error")
        print("server: wait('error') returned: urgent data is pending")
        urgent = bytearray(1)
        await sock.receive(urgent, ["out_of_band"])
        print(f"server: urgent byte {bytes(urgent)!r} (out of band)")
        data = bytearray()
        buf = bytearray(1024)
        while True:
            try:
                n = await sock.read_some(buf)
            except EndOfFile:
                break
            data += buf[:n]
        # The urgent byte is not in the normal stream.
        print(f"server: data {bytes(data)!r}, then end of stream")


async def demo(server: Callable[[Acceptor], Awaitable[None]]) -> None:
    """Run ``server`` against :func:`client` on a loopback port."""
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        acceptor.bind(Address.loopback_v4(), 0)
        acceptor.listen()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server, acceptor)
            nursery.start_soon(client, acceptor.local_port)


async def main() -> None:
    print("-- out_of_band_inline on: at_mark finds the urgent byte")
    await demo(inline_server)
    print("-- out_of_band_inline off: wait('error') and receive out_of_band")
    await demo(out_of_line_server)


if __name__ == "__main__":
    trio.run(main)
