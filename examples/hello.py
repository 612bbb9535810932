"""The first example: a connected pair, a reader task, ``write_all``."""

from __future__ import annotations

import trio

from trio_emtcp import socket_pair, stream


async def main() -> None:
    a, b = await socket_pair()  # connected loopback TCP pair
    async with a, b, trio.open_nursery() as nursery:

        async def reader() -> None:
            buf = bytearray(1024)
            n = await b.read_some(buf)
            print(bytes(buf[:n]))

        nursery.start_soon(reader)
        print(await stream.write_all(a, b"Hello World"))  # 11


if __name__ == "__main__":
    trio.run(main)
