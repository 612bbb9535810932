"""A socket's and an acceptor's life cycle (the ``ip.tcp`` reference).

Run it: ``python examples/ref_ip_tcp.py``.  An acceptor is opened, bound
and listens; a socket connects to it; they exchange a message, one side
shuts its sending direction down, and both close.
"""

from __future__ import annotations

import trio

from trio_emtcp import EndOfFile, ip, stream


async def main() -> list[str]:
    said = []
    async with ip.tcp.Acceptor() as acceptor:
        acceptor.open("v4")
        acceptor.set_option("reuse_address", True)
        acceptor.bind(ip.Address.loopback_v4(), 0)
        acceptor.listen()
        async with ip.tcp.Socket() as client:  # closed until connect opens it
            await client.connect(acceptor.local_address, acceptor.local_port)
            async with await acceptor.accept() as server:
                await stream.write_all(client, b"hello")
                client.shutdown("send")  # no more data from the client
                buf = bytearray(16)
                n = await server.read_some(buf)
                said.append(f"server read {bytes(buf[:n])!r}")
                try:
                    await server.read_some(buf)
                except EndOfFile:
                    said.append("server: end of stream")
    said.append(f"closed: {client.is_open=} {acceptor.is_open=}")
    return said


if __name__ == "__main__":
    for line in trio.run(main):
        print(line)
