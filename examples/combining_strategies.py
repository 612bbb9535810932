"""Combining strategies: lines with a Scanner, a body with ``read_all``, lines again.

A message is header lines ending in CRLF, an empty line, then a body whose
length a ``Content-Length`` header gives (HTTP's framing).  The header is
read line by line with the Scanner; the body is read with
``stream.read_all``, starting with what the Scanner already read ahead
(``buffer()``); what it read past the body goes back into it
(``set_buffer()``), and the next message is read line by line again.  Not
a byte is lost, however the messages arrive.
"""

from __future__ import annotations

import trio

from trio_emtcp import socket_pair, stream
from trio_emtcp.ip.tcp import Socket

Message = tuple[list[bytes], bytes]


def new_scanner(sock: Socket) -> stream.Scanner[bytes]:
    """Lines that end in CRLF, as HTTP's do."""
    return stream.Scanner(sock, record_separator=b"\r\n")


async def read_message(scanner: stream.Scanner[bytes], sock: Socket) -> Message:
    """The next message: its header lines and its body."""
    headers = []
    length = 0
    while line := await scanner.get_line():  # b"" ends the header
        headers.append(line)
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    # The body: first what the scanner read ahead, then the socket.
    body = bytearray(length)
    ahead = scanner.buffer()
    n = min(len(ahead), length)
    body[:n] = ahead[:n]
    if n < length:
        await stream.read_all(sock, memoryview(body)[n:])
    # What came after the body starts the next message: back to lines.
    scanner.set_buffer(ahead[n:])
    return headers, bytes(body)


def message(body: bytes) -> bytes:
    """A message with a ``Content-Length`` header."""
    return b"POST /notes HTTP/1.1\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


async def main() -> None:
    a, b = await socket_pair()
    async with a, b:
        # Two messages in one write: the first body ends mid-buffer.
        await stream.write_all(a, message(b"first\r\nbody") + message(b"second"))
        scanner = new_scanner(b)
        for _ in range(2):
            headers, body = await read_message(scanner, b)
            print(headers[0].decode(), "->", body)


if __name__ == "__main__":
    trio.run(main)
