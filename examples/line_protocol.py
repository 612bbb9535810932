"""A tiny line protocol over a socket pair, read with ``stream.Scanner``.

The server keeps a key/value store.  The client sends one command per line
(``SET key=value``, ``GET key``, ``DEL key``, ``KEYS``, ``QUIT``) and the
server answers each with one line.  The server splits every record into a
command and its argument, accepts ``\\r\\n`` or a bare ``\\n`` (a regex
separator) and ignores blank lines and stray spaces (``trim_record``).
"""

from __future__ import annotations

import re

import trio

from trio_emtcp import socket_pair, stream
from trio_emtcp.ip.tcp import Socket

COMMANDS = [
    b"SET colour=blue\r\n",
    b"SET shape = round\n",  # a bare \n and spaces around "=": both fine
    b"GET colour\r\n",
    b"\r\n",  # a blank line: no fields, no reply
    b"KEYS\r\n",
    b"DEL colour\r\n",
    b"GET colour\r\n",
    b"FLY away\r\n",
    b"QUIT\r\n",
]


def command_and_argument(record: bytes) -> list[bytes]:
    """Split ``b"SET a=b c"`` into ``[b"SET", b"a=b c"]``."""
    return record.split(None, 1)


async def serve(sock: Socket) -> None:
    """Answer commands until ``QUIT`` or the end of the stream."""
    store: dict[bytes, bytes] = {}
    requests = stream.Scanner(
        sock,
        re.compile(rb"\r?\n"),
        trim_record=True,
        field_separator=command_and_argument,
    )
    async for fields in requests:
        if not fields:
            continue
        command, argument = fields[0].upper(), b"".join(fields[1:])
        if command == b"SET" and b"=" in argument:
            key, _, value = argument.partition(b"=")
            store[key.strip()] = value.strip()
            reply = b"OK"
        elif command == b"GET":
            value_or_none = store.get(argument)
            reply = b"NOT_FOUND" if value_or_none is None else b"VALUE " + value_or_none
        elif command == b"DEL":
            reply = b"OK" if store.pop(argument, None) is not None else b"NOT_FOUND"
        elif command == b"KEYS":
            reply = b"KEYS " + b",".join(sorted(store))
        elif command == b"QUIT":
            reply = b"BYE"
        else:
            reply = b"ERROR unknown command " + command
        print(f"server: line {requests.record_number} {fields!r} -> {reply!r}")
        await stream.write_all(sock, reply + b"\r\n")
        if reply == b"BYE":
            break
    sock.shutdown("send")


async def client(sock: Socket) -> list[bytes]:
    """Send every command and collect the replies."""
    # The server always ends its lines with \r\n, as HTTP and SMTP do; the
    # default separator is b"\n".
    replies = stream.Scanner(sock, record_separator=b"\r\n")
    received = []
    for command in COMMANDS:
        print(f"client: send {command!r}")
        await stream.write_all(sock, command)
        if command.strip():
            reply = await replies.get_line()
            print(f"client: got  {reply!r}")
            received.append(reply)
    return received


async def main() -> None:
    """Run the server and the client over a loopback pair."""
    a, b = await socket_pair()
    async with a, b, trio.open_nursery() as nursery:
        nursery.start_soon(serve, b)
        await client(a)


if __name__ == "__main__":
    trio.run(main)
