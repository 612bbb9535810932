"""A small HTTP/1.1 server: h11 over trio_emtcp, served by trio.serve_listeners.

Run it and fetch a page::

    python examples/http_server.py --port 8080
    curl http://127.0.0.1:8080/

``GET`` (and ``HEAD``) of ``/`` and ``/hello.txt`` answer 200, other paths
404, other methods 405.  Connections are kept alive between requests, as
HTTP/1.1 wants.  Ctrl-C (or SIGTERM) stops the server cleanly.

The point of the example: an :class:`~trio_emtcp.ip.tcp.Acceptor` is a
:class:`trio.abc.Listener` and each accepted
:class:`~trio_emtcp.ip.tcp.Socket` a :class:`trio.abc.HalfCloseableStream`,
so :func:`trio.serve_listeners` and a sans-I/O protocol library work on them
unchanged, with Trio's ``receive_some``/``send_all``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Sequence
from email.utils import formatdate
from http import HTTPStatus

import h11
import trio

from trio_emtcp import ip
from trio_emtcp.ip.tcp import Socket

PAGES: dict[str, tuple[str, bytes]] = {
    "/": (
        "text/html; charset=utf-8",
        b"<!doctype html>\n<title>trio_emtcp</title>\n<h1>Hello from trio_emtcp</h1>\n",
    ),
    "/hello.txt": ("text/plain; charset=utf-8", b"Hello World\n"),
}

SERVER_HEADER = "trio_emtcp-example"

# How long a kept-alive connection may sit idle between requests before the
# server closes it.  Long enough for a browser's or curl's next request on
# the same connection, short enough that idle clients do not pin
# descriptors forever (Apache's KeepAliveTimeout is 5 s, nginx's 75 s).
KEEP_ALIVE_TIMEOUT = 20.0


async def _next_event(conn: h11.Connection, stream: Socket) -> object:
    """The next h11 event, reading from ``stream`` as h11 needs bytes."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        # b"" at end of stream: h11 turns it into ConnectionClosed, or into
        # a RemoteProtocolError in the middle of a request.
        conn.receive_data(await stream.receive_some())


async def _send(conn: h11.Connection, stream: Socket, event: h11.Event) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def _send_response(
    conn: h11.Connection,
    stream: Socket,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    head: bool = False,
) -> None:
    """Send a whole response; ``head``: headers only (a ``HEAD`` request)."""
    headers = [
        ("Date", formatdate(usegmt=True)),
        ("Server", SERVER_HEADER),
        *headers,
        ("Content-Length", str(len(body))),
    ]
    reason = HTTPStatus(status).phrase.encode()
    response = h11.Response(status_code=status, reason=reason, headers=headers)
    await _send(conn, stream, response)
    if not head:
        await _send(conn, stream, h11.Data(data=body))
    await _send(conn, stream, h11.EndOfMessage())


async def _respond(conn: h11.Connection, stream: Socket, request: h11.Request) -> None:
    """Read the rest of ``request`` (its body is ignored) and answer it."""
    while not isinstance(await _next_event(conn, stream), h11.EndOfMessage):
        pass
    path = request.target.decode("ascii", "replace").partition("?")[0]
    text = "text/plain; charset=utf-8"
    if request.method not in (b"GET", b"HEAD"):
        headers = [("Allow", "GET, HEAD"), ("Content-Type", text)]
        await _send_response(conn, stream, 405, headers, b"GET only\n")
        return
    if path in PAGES:
        status = 200
        content_type, body = PAGES[path]
    else:
        status = 404
        content_type, body = text, f"not found: {path}\n".encode()
    await _send_response(
        conn,
        stream,
        status,
        [("Content-Type", content_type)],
        body,
        head=request.method == b"HEAD",
    )


async def handle(stream: Socket) -> None:
    """Serve HTTP requests on one connection until either side ends it.

    ``trio.serve_listeners`` closes ``stream`` when this returns.  A handler
    that raised would stop the whole server, so a client that vanishes is
    not an error here.
    """
    # The client may go away mid-request.
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await _serve_connection(stream)


async def _serve_connection(stream: Socket) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            with trio.move_on_after(KEEP_ALIVE_TIMEOUT) as idle:
                event = await _next_event(conn, stream)
            if idle.cancelled_caught:
                return  # no (complete) request for too long: close
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed: the client is done
            await _respond(conn, stream, event)
            if conn.our_state is h11.MUST_CLOSE:
                # The client asked for "Connection: close" (or spoke
                # HTTP/1.0): end our side cleanly; the response is complete.
                await stream.send_eof()
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Connection", "close"),
            ]
            status = exc.error_status_hint
            await _send_response(conn, stream, status, headers, b"bad request\n")
            await stream.send_eof()


async def serve(
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host``:``port``, print the URL, serve until cancelled."""
    acceptor = ip.tcp.listen(host, port)
    url = f"http://{ip.tostring(acceptor.local_address, acceptor.local_port)}/"
    print(f"listening on {url}", flush=True)
    task_status.started(url)
    # serve_listeners owns the acceptor from here on and closes it.
    await trio.serve_listeners(handle, [acceptor])


async def main(host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, host, port)
            async for signum in signals:
                print(f"stopping ({signal.Signals(signum).name})", flush=True)
                nursery.cancel_scope.cancel()
                break


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="A small HTTP/1.1 server: h11 over trio_emtcp."
    )
    parser.add_argument("--host", default="127.0.0.1", help="numeric IP address")
    parser.add_argument("--port", type=int, default=8080, help="0 picks one")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    trio.run(main, args.host, args.port)
