"""A line chat server: every line a client sends goes to every other client.

Run it, then chat from a few terminals::

    python examples/chat_server.py --port 7000
    nc 127.0.0.1 7000

Each line arrives at the others as ``HOST:PORT: line``, the sender's
address first; the sender does not get its own lines back.

What it shows: two tasks per client, one reading its lines with
:class:`stream.Scanner <trio_emtcp.stream.Scanner>` and one writing what
the others said, with a bounded queue (:func:`trio.open_memory_channel`)
between the room and each writer.  Broadcasting never waits: a line goes
into each queue with ``send_nowait``.  A client whose queue is full is not
reading; it is dropped (its socket closed, which ends both of its tasks
with :class:`~trio_emtcp.OperationAborted`), so it can neither slow the
others down nor make the server buffer without limit.  The socket option
``not_sent_low_watermark`` makes that happen after kilobytes, not
megabytes.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Sequence

import trio

from trio_emtcp import ip, stream
from trio_emtcp.ip.tcp import Socket

# Lines waiting for one client before it counts as not reading.  Enough to
# ride out a burst from the others; about MAX_QUEUE * MAX_LINE bytes held
# per client at most.
MAX_QUEUE = 64

# The longest line a client may send: it bounds what the Scanner buffers.
MAX_LINE = 4096

# TCP_NOTSENT_LOWAT: the kernel keeps at most this many unsent bytes for a
# socket, so a writer to a client that does not read blocks after a few
# lines, and the client's queue fills, instead of the kernel first
# swallowing megabytes for it (the send buffer grows to 4 MiB on Linux).
NOT_SENT_LOW_WATERMARK = 16 * 1024


class Room:
    """The clients in the chat: each one's name and its queue's sending end."""

    def __init__(self) -> None:
        self.members: dict[Socket, tuple[str, trio.MemorySendChannel[bytes]]] = {}

    def join(
        self, client: Socket, name: str, queue: trio.MemorySendChannel[bytes]
    ) -> None:
        self.members[client] = (name, queue)
        print(f"{name} joined", flush=True)

    def broadcast(self, sender: Socket, message: bytes) -> None:
        """Queue ``message`` for every client but ``sender``; never waits."""
        for client, (_, queue) in list(self.members.items()):
            if client is sender:
                continue
            try:
                queue.send_nowait(message)
            except trio.WouldBlock:
                self.leave(client, "dropped: it does not read")

    def leave(self, client: Socket, why: str) -> None:
        if client in self.members:
            name, queue = self.members.pop(client)
            print(f"{name} {why}", flush=True)
            queue.close()
            client.close()  # its tasks see OperationAborted and end


async def deliver(client: Socket, queue: trio.MemoryReceiveChannel[bytes]) -> None:
    """Write the others' lines to ``client``, in order, while it takes them."""
    with contextlib.suppress(OSError):  # a reset, or dropped: closed
        async for message in queue:
            # What else is queued goes in the same (vectored) write: one
            # write per line would fall behind a burst of lines.
            messages = [message]
            with contextlib.suppress(trio.WouldBlock, trio.EndOfChannel):
                while True:
                    messages.append(queue.receive_nowait())
            await stream.write_all(client, messages)
    client.close()  # the reader stops too


async def chat(room: Room, client: Socket) -> None:
    """Serve one client until it leaves or is dropped."""
    name = ip.tostring(client.remote_address, client.remote_port)
    # Only newer trio_emtcp versions know the option; without it a client
    # that does not read is still dropped, after the kernel's buffers fill.
    with contextlib.suppress(ValueError):
        client.set_option("not_sent_low_watermark", NOT_SENT_LOW_WATERMARK)
    queue, pending = trio.open_memory_channel[bytes](MAX_QUEUE)
    room.join(client, name, queue)
    async with client, trio.open_nursery() as nursery:
        nursery.start_soon(deliver, client, pending)
        # A reset, a drop (OperationAborted) or a line over MAX_LINE ends
        # the client as its end of stream does.
        with contextlib.suppress(OSError):
            async for line in stream.Scanner(client, max_record_size=MAX_LINE):
                room.broadcast(client, f"{name}: ".encode() + line + b"\n")
        nursery.cancel_scope.cancel()  # its writer too
        room.leave(client, "left")


async def serve(
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a chat room on ``host``:``port`` until cancelled."""
    room = Room()
    async with ip.tcp.listen(host, port) as acceptor, trio.open_nursery() as nursery:
        where = ip.tostring(acceptor.local_address, acceptor.local_port)
        print(f"chat on {where}", flush=True)
        task_status.started(acceptor.local_port)
        while True:
            client = await acceptor.accept()
            nursery.start_soon(chat, room, client)


async def serve_until_signal(host: str, port: int) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, host, port)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()  # the acceptor and every client
    print("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A line chat server.")
    parser.add_argument("--host", default="127.0.0.1", help="numeric IP address")
    parser.add_argument("--port", type=int, default=7000, help="0 picks one")
    args = parser.parse_args(argv)
    trio.run(serve_until_signal, args.host, args.port)


if __name__ == "__main__":
    main()
