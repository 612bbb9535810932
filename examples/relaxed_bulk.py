"""Relaxed schedule points: a bulk transfer of many small writes.

The sender and the receiver each enter ``relaxed_schedule_points()``, so
their operations skip Trio's schedule point while the kernel keeps up and
the last one was less than a millisecond ago.  A third task, the ticker,
still gets to run: at least once a millisecond while the transfer is busy.
Run it to see the count of bytes and how often the ticker ran.
"""

from __future__ import annotations

import trio

from trio_emtcp import EndOfFile, relaxed_schedule_points, socket_pair, stream

CHUNK = 4096


async def transfer(total: int) -> tuple[int, int]:
    """Send ``total`` bytes in 4 KiB writes; return (bytes received, ticks)."""
    a, b = await socket_pair()
    received = 0
    ticks = 0

    async def receiver() -> None:
        nonlocal received
        buf = bytearray(CHUNK)
        with relaxed_schedule_points():  # this task only
            try:
                while True:
                    received += await b.read_some(buf)
            except EndOfFile:
                pass

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with a, b, trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        async with trio.open_nursery() as transfers:
            transfers.start_soon(receiver)
            data = bytes(CHUNK)
            with relaxed_schedule_points():  # the sender's own block
                for _ in range(total // CHUNK):
                    await stream.write_all(a, data)
            a.shutdown("send")
        nursery.cancel_scope.cancel()
    return received, ticks


async def main() -> None:
    received, ticks = await transfer(64 * 1024 * 1024)
    print(f"{received} bytes received; the ticker ran {ticks} times meanwhile")


if __name__ == "__main__":
    trio.run(main)
