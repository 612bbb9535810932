"""How a waiting operation ends: the table of ``docs/cancellation.rst``, row by row.

A reader task waits in ``read_some`` on a loopback pair until something
stops it: the end of the stream, another task's ``cancel()``, ``close()`` or
``release()`` on the socket, the reader's own deadline, or a cancel scope and
``cancel()`` at once.  Last, a ``write_all`` that ``cancel()`` interrupts
midway says how much it wrote, and the rest follows.

Run it: ``python examples/cancellation.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import trio
import trio.testing

from trio_emtcp import EndOfFile, OperationAborted, socket_pair, stream
from trio_emtcp.ip.tcp import Socket

T = TypeVar("T")

# How long the reader of the "own deadline" row waits, in seconds.
DEADLINE = 0.5


async def read_once(sock: Socket, deadline: float = math.inf) -> str:
    """Read once, for at most ``deadline`` seconds; say how the read ended."""
    buf = bytearray(1024)
    with trio.move_on_after(deadline):
        try:
            n = await sock.read_some(buf)
        except OperationAborted:
            # Another task called cancel(), close() or release() on sock.
            return "OperationAborted"
        except EndOfFile:
            # The peer shut down its sending side; later reads say so too.
            return "EndOfFile"
        return f"data {bytes(buf[:n])!r}"
    # Only the task's own cancellation gets here: the deadline raised
    # trio.Cancelled inside the block, and move_on_after caught it.
    return "its deadline pass"


def state(sock: Socket) -> str:
    """``"open"`` or ``"closed"``."""
    return "open" if sock.is_open else "closed"


async def stop_a_reader(name: str, sock: Socket, stop: Callable[[Socket], T]) -> T:
    """Block a reader task in ``read_some`` on ``sock``, then call ``stop(sock)``.

    Returns what ``stop`` returned, once the reader has reported.
    """
    async with trio.open_nursery() as nursery:

        async def reader() -> None:
            print(f"{name}: the reader sees {await read_once(sock)}")

        nursery.start_soon(reader)
        # A test helper that fits here: it returns once every task waits, so
        # the reader is sure to be blocked in read_some.
        await trio.testing.wait_all_tasks_blocked()
        result = stop(sock)
    return result


async def end_of_stream() -> None:
    """The peer shuts down its sending side: EndOfFile, on every read."""
    a, b = await socket_pair()
    async with a, b:
        a.shutdown("send")
        first, second = await read_once(b), await read_once(b)
        print(f"end of stream: the reader sees {first}, and again {second}")


async def cancel_keeps_the_socket() -> None:
    """cancel(): OperationAborted; the socket stays open and loses no byte."""
    a, b = await socket_pair()
    async with a, b:
        await stop_a_reader("cancel()", b, Socket.cancel)
        await stream.write_all(a, b"still here")
        print(f"  the socket is {state(b)}; the next read gets {await read_once(b)}")


async def close_closes_it() -> None:
    """close(): OperationAborted, and the socket is closed."""
    a, b = await socket_pair()
    async with a, b:
        await stop_a_reader("close()", b, Socket.close)
        print(f"  the socket is {state(b)}")


async def release_hands_the_descriptor_over() -> None:
    """release(): OperationAborted; the descriptor is returned, not closed."""
    a, b = await socket_pair()
    async with a, b:
        fd = await stop_a_reader("release()", b, Socket.release)
        async with Socket() as adopted:
            adopted.assign("v4", fd)  # the new socket owns the descriptor now
            await stream.write_all(a, b"still here")
            data = await read_once(adopted)
            print(f"  the socket is {state(b)}; a new one adopts the fd, reads {data}")


async def own_deadline() -> None:
    """The task's own deadline: trio.Cancelled, and the socket is untouched."""
    a, b = await socket_pair()
    async with a, b:
        print(f"own deadline: the reader sees {await read_once(b, DEADLINE)}")
        print(f"  the socket is {state(b)}")


async def both_at_once() -> None:
    """A cancel scope and cancel() in the same tick: trio.Cancelled wins."""
    a, b = await socket_pair()
    async with a, b, trio.open_nursery() as nursery:

        async def reader() -> None:
            try:
                await read_once(b)
            except trio.Cancelled:
                print("scope and cancel() at once: the reader sees trio.Cancelled")
                raise  # a Cancelled must always propagate

        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # the reader's own scope...
        b.cancel()  # ...and the socket's cancel(), before the reader runs


async def resume_a_write() -> None:
    """cancel() interrupts write_all; bytes_transferred says where to resume."""
    a, b = await socket_pair()
    async with a, b, trio.open_nursery() as nursery:
        # Small kernel buffers, so that write_all has to wait for the reader.
        a.set_option("send_buffer_size", 64 * 1024)
        b.set_option("receive_buffer_size", 64 * 1024)
        payload = bytes(1024 * 1024)

        async def writer() -> None:
            try:
                await stream.write_all(a, payload)
            except OperationAborted as exc:
                sent = exc.bytes_transferred
                print(f"write_all: cancel() aborts it after {sent} bytes")
                await stream.write_all(a, memoryview(payload)[sent:])
            a.shutdown("send")

        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()  # the writer waits
        a.cancel()
        buf = bytearray(64 * 1024)
        received = 0
        try:
            while True:
                received += await b.read_some(buf)
        except EndOfFile:
            pass
        print(f"  it resumes from there: the reader gets all {received} bytes")


async def main() -> None:
    """Every row of the table, in turn."""
    await end_of_stream()
    await cancel_keeps_the_socket()
    await close_closes_it()
    await release_hands_the_descriptor_over()
    await own_deadline()
    await both_at_once()
    await resume_a_write()


if __name__ == "__main__":
    trio.run(main)
