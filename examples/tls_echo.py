"""A TLS echo server and its client, over trio_emtcp sockets.

The server accepts TCP connections with an :class:`~trio_emtcp.ip.tcp.Acceptor`
and wraps each one in a :class:`trio.SSLStream`; the client connects with
:func:`trio_emtcp.ip.dial` and wraps its socket the same way.  Both then talk
through the ``SSLStream``, which encrypts on the way out and decrypts on the
way in, over the socket's Trio stream methods.

TLS needs a certificate.  Run directly, the example makes throwaway ones in
memory with ``trustme`` (a test dependency of trio_emtcp:
``python3 -m pip install trustme``).

Run it: ``python examples/tls_echo.py``.
"""

from __future__ import annotations

import ssl

import trio

from trio_emtcp import ip
from trio_emtcp.ip.tcp import Socket

HOST = "127.0.0.1"
# The name the client expects in the server's certificate.  It is checked
# against the certificate, never looked up: the client connects to HOST.
SERVER_NAME = "echo.example"
MESSAGES = [b"hello over TLS", b"a second message", b"goodbye"]


def make_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Throwaway certificates for the demo: ``(server_context, client_context)``.

    trustme makes a certificate authority that lives only in memory, and a
    certificate for ``SERVER_NAME`` signed by it.  A real server loads its
    own certificate instead (``context.load_cert_chain(cert_file, key_file)``)
    and a real client trusts the system's authorities
    (``ssl.create_default_context()`` as it comes).
    """
    import trustme  # a test dependency, so only imported when needed

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SERVER_NAME).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def echo(conn: Socket, context: ssl.SSLContext) -> None:
    """Handshake, then send back everything the client sends."""
    async with conn:  # closes the connection however we leave
        tls = trio.SSLStream(conn, context, server_side=True)
        try:
            # The first receive_some runs the handshake.  b"" means the client
            # closed its TLS session cleanly (it sent close_notify).
            while data := await tls.receive_some():
                await tls.send_all(data)
            await tls.aclose()  # our close_notify, then the socket is closed
        except trio.BrokenResourceError as exc:
            # A handshake that failed (the client refused our certificate)
            # or a connection that broke; __cause__ says which.
            print(f"server: a connection failed: {exc.__cause__!r}")


async def serve(
    context: ssl.SSLContext,
    port: int = 0,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``HOST``:``port`` and serve TLS echo until cancelled."""
    async with ip.tcp.listen(HOST, port) as acceptor:
        port = acceptor.local_port  # the one the kernel picked, if port was 0
        print(f"server: listening on {ip.tostring(acceptor.local_address, port)}")
        task_status.started(port)
        async with trio.open_nursery() as nursery:
            while True:
                conn = await acceptor.accept()
                nursery.start_soon(echo, conn, context)


async def receive_exactly(tls: trio.SSLStream[Socket], size: int) -> bytes:
    """Receive ``size`` bytes: TLS, like TCP, may cut a message in pieces."""
    data = bytearray()
    while len(data) < size:
        chunk = await tls.receive_some(size - len(data))
        if not chunk:
            raise EOFError("the server closed the connection early")
        data += chunk
    return bytes(data)


async def client(port: int, context: ssl.SSLContext) -> list[bytes]:
    """Connect, send each message and read back its echo; return the echoes."""
    async with await ip.dial(HOST, port) as sock:
        tls = trio.SSLStream(sock, context, server_hostname=SERVER_NAME)
        # Optional (the first send would do it), but a certificate the
        # client does not trust is then reported here.
        await tls.do_handshake()
        echoes = []
        for message in MESSAGES:
            await tls.send_all(message)
            echoed = await receive_exactly(tls, len(message))
            print(f"client: sent {message!r}, got back {echoed!r}")
            echoes.append(echoed)
        await tls.aclose()  # close_notify: the server's receive_some says b""
    return echoes


async def main() -> None:
    """Start the server, run the client against it, stop the server."""
    server_context, client_context = make_contexts()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve, server_context)
        await client(port, client_context)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
