"""An HTTP/1.0 static file server: ``Scanner`` reads requests, ``send_file`` answers.

Run it and fetch a file::

    python examples/static_file_server.py ROOT --port 8000
    curl http://127.0.0.1:8000/notes.txt

``GET`` and ``HEAD`` of a regular file under ROOT answer 200 (a directory
stands for its ``index.html``); a path that is missing, or that leads out
of ROOT (``..``, a symbolic link), 404; a request that is not HTTP 400;
other methods 405.  One request per connection, as in HTTP/1.0.

What it shows: :func:`ip.tcp.listen <trio_emtcp.ip.tcp.listen>` and a task
per client in a nursery; :class:`stream.Scanner <trio_emtcp.stream.Scanner>`
reading the request's CRLF lines; :meth:`Socket.send_file
<trio_emtcp.ip.tcp.Socket.send_file>` sending the file without it passing
through Python; a client that stops reading dropped after a stall timeout,
while one that reads slowly is served to the end (each step resumes from
``bytes_transferred``); and :func:`stream.graceful_close
<trio_emtcp.stream.graceful_close>`, so that the answer is not lost to a
reset when the client sent more than the server read.
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import signal
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

import trio

from trio_emtcp import OperationAborted, RecordTooLong, ip, stream
from trio_emtcp.ip.tcp import Socket

# The longest request line or header: curl and browsers send well under
# this, and it bounds what one client can make the server buffer (nginx's
# large_client_header_buffers is 8 KiB too).
MAX_LINE = 8 * 1024

# How long a client may make no progress at all: to send its whole request,
# or to take any of the answer.  A slow but steady reader is served to the
# end however long the file takes; a stalled one stops holding a task, a
# descriptor and the kernel's buffers.
STALL_TIMEOUT = 10.0


async def read_request(lines: stream.Scanner[bytes]) -> tuple[bytes, bytes] | None:
    """The request's method and target; ``None`` if it is not HTTP."""
    parts = (await lines.get_line()).split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return None
    # The headers, up to the blank line: read, checked, not needed.
    while header := await lines.get_line():
        if b":" not in header:
            return None
    return parts[0], parts[1]


def find_file(root: Path, target: bytes) -> Path | None:
    """The regular file under ``root`` that ``target`` names, or ``None``."""
    path = unquote(target.decode("latin-1").partition("?")[0])
    if not path.startswith("/"):
        return None
    candidate = root / path.lstrip("/")
    if candidate.is_dir():
        candidate /= "index.html"
    try:
        file = candidate.resolve()  # "..", and symbolic links, resolved
    except (OSError, ValueError, RuntimeError):  # NUL, a link loop
        return None
    return file if file.is_relative_to(root) and file.is_file() else None


def response_head(
    status: HTTPStatus, length: int, content_type: str, extra: str = ""
) -> bytes:
    return (
        f"HTTP/1.0 {status.value} {status.phrase}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n{extra}Connection: close\r\n\r\n"
    ).encode()


async def send_response(
    sock: Socket, file: int, size: int, header: bytes, stall: float
) -> None:
    """Send ``header``, then ``size`` bytes of ``file``; each step within ``stall``.

    Raises:
      trio.TooSlowError: a whole ``stall`` passed without a byte taken.
    """
    offset = 0
    while True:
        moved = 0
        with trio.move_on_after(stall):
            try:
                await sock.send_file(file, offset, size - offset, header)
                return
            except trio.Cancelled as exc:  # our deadline, or the server's end
                moved = getattr(exc, "bytes_transferred", 0)
                raise  # a Cancelled always propagates; move_on_after stops it
        if not moved:
            raise trio.TooSlowError
        # Progress, then the deadline: go on from there, header bytes first.
        offset += max(0, moved - len(header))
        header = header[moved:]


async def send_error(
    sock: Socket, status: HTTPStatus, stall: float, extra: str = ""
) -> None:
    body = f"{status.phrase}\n".encode()
    text = "text/plain; charset=utf-8"
    message = response_head(status, len(body), text, extra) + body
    with trio.fail_after(stall):
        await stream.write_all(sock, message)


async def answer(sock: Socket, root: Path, stall: float) -> None:
    """Read one request and send its answer."""
    lines = stream.Scanner(sock, b"\r\n", max_record_size=MAX_LINE)
    try:
        with trio.fail_after(stall):
            request = await read_request(lines)
    except RecordTooLong:
        request = None  # a line over MAX_LINE
    if request is None:
        return await send_error(sock, HTTPStatus.BAD_REQUEST, stall)
    method, target = request
    if method not in (b"GET", b"HEAD"):
        allow = "Allow: GET, HEAD\r\n"
        return await send_error(sock, HTTPStatus.METHOD_NOT_ALLOWED, stall, allow)
    # Looking up and opening a file may wait for the disk: not in the event
    # loop's thread.
    path = await trio.to_thread.run_sync(find_file, root, target)
    if path is None:
        return await send_error(sock, HTTPStatus.NOT_FOUND, stall)
    try:
        f = await trio.open_file(path, "rb")
    except PermissionError:
        return await send_error(sock, HTTPStatus.FORBIDDEN, stall)
    except OSError:  # gone since find_file, or not a regular file
        return await send_error(sock, HTTPStatus.NOT_FOUND, stall)
    async with f:
        size = os.fstat(f.fileno()).st_size  # of what was opened, not the name
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        header = response_head(HTTPStatus.OK, size, kind)
        body_size = 0 if method == b"HEAD" else size
        await send_response(sock, f.fileno(), body_size, header, stall)


async def handle(sock: Socket, root: Path, stall: float) -> None:
    """Serve one connection; a failure ends only this connection."""
    async with sock:
        try:
            await answer(sock, root, stall)
        except trio.TooSlowError:
            # Linger 0: close() resets the connection and drops what is
            # queued for it, instead of the kernel retrying for minutes.
            sock.set_option("linger", True, 0)
        except (EOFError, ConnectionError, TimeoutError, OperationAborted):
            # The client left (end of stream, reset, dead peer): nobody to
            # answer.  Not every OSError: the server's own errors are bugs
            # to see, not clients to forget (see the "Which errors to
            # catch" page).
            pass
        else:
            # Shut down our side, then read until the client closes its
            # own: closing with unread request bytes would reset the
            # connection, and the client could lose the answer.
            await stream.graceful_close(sock)


async def serve(
    root: str | os.PathLike[str],
    host: str,
    port: int,
    *,
    stall_timeout: float = STALL_TIMEOUT,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the files under ``root`` on ``host``:``port`` until cancelled."""
    top = Path(await trio.Path(root).resolve(strict=True))
    async with ip.tcp.listen(host, port) as acceptor, trio.open_nursery() as nursery:
        url = f"http://{ip.tostring(acceptor.local_address, acceptor.local_port)}/"
        print(f"serving {top} on {url}", flush=True)
        task_status.started(url)
        while True:
            sock = await acceptor.accept()
            nursery.start_soon(handle, sock, top, stall_timeout)


async def serve_until_signal(root: str, host: str, port: int) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, root, host, port)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()  # the acceptor and every client
    print("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An HTTP/1.0 static file server.")
    parser.add_argument("root", help="the directory to serve")
    parser.add_argument("--host", default="127.0.0.1", help="numeric IP address")
    parser.add_argument("--port", type=int, default=8000, help="0 picks one")
    args = parser.parse_args(argv)
    trio.run(serve_until_signal, args.root, args.host, args.port)


if __name__ == "__main__":
    main()
