"""The composed operations and the Scanner (the ``stream`` reference).

Run it: ``python examples/ref_stream.py``.  Lines go one way and are read
back with a Scanner; then a fixed-size body is read with ``read_all``
from what the Scanner had buffered and what follows.
"""

from __future__ import annotations

import trio

from trio_emtcp import socket_pair, stream


async def main() -> list[str]:
    said = []
    a, b = await socket_pair()
    async with a, b:
        await stream.write_all(a, [b"HEAD one\r\n", b"HEAD two\r\n", b"\r\n12345"])
        scanner = stream.Scanner(b, record_separator=b"\r\n")
        while line := await scanner.get_line():
            said.append(f"line {scanner.record_number}: {line!r}")
        # The body: what the scanner read ahead, then the rest from b.
        body = bytearray(10)
        ahead = scanner.buffer()
        body[: len(ahead)] = ahead
        await stream.write_all(a, b"67890")
        await stream.read_all(b, memoryview(body)[len(ahead) :])
        said.append(f"body: {bytes(body)!r}")
    return said


if __name__ == "__main__":
    for line in trio.run(main):
        print(line)
