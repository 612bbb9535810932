"""Tests for the runnable files under examples/.

``http_server.py`` is served in-process (port 0, ``nursery.start``) and
fetched with the real ``curl``; one test also runs it as a script and stops
it with SIGINT.  ``tls_echo.py`` runs in-process, with an untrusted client,
and as a script; ``cancellation.py`` runs in-process on the autojump clock;
``serve_listeners.py`` serves two clients in-process and is stopped by
cancellation; ``relaxed_bulk.py`` moves 4 MiB in-process.
``static_file_server.py`` is served in-process to ``curl`` and
``http.client`` (and to a client that stalls), and runs as a script;
``chat_server.py`` chats with blocking ``socket`` clients, in-process and
as a script.
(``line_protocol.py`` is tested in test_scanner.py, ``echo_server.py`` in
test_cli.py.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import http.client
import importlib.util
import random
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
import trio
import trio.testing

import trio_emtcp
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Socket

from .helpers import no_fd_leak, require_tool

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"examples_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


http_server = load_example("http_server")


@pytest.fixture
async def server_url(capsys: pytest.CaptureFixture[str]) -> AsyncIterator[str]:
    """The example server, in-process on an ephemeral port; its URL."""
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(http_server.serve, "127.0.0.1", 0)
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*/", url)
        assert capsys.readouterr().out == f"listening on {url}\n"
        yield url
        nursery.cancel_scope.cancel()


async def curl(*args: str) -> str:
    """Run curl (no proxy, errors shown, non-zero exit fails); its stdout."""
    tool = require_tool("curl")
    result = await trio.run_process(
        [tool, "--silent", "--show-error", "--noproxy", "*", *args],
        capture_stdout=True,
        capture_stderr=True,
    )
    return result.stdout.decode()


def parse_response(raw: str) -> tuple[str, dict[str, str], str]:
    """``curl --include`` output: (status line, headers, body)."""
    head, _, body = raw.partition("\r\n\r\n")
    status, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return status, headers, body


@dataclasses.dataclass
class ServerScript:
    """An example server running as a script (see :func:`server_script`)."""

    proc: trio.Process
    first_line: str

    async def interrupt(self) -> tuple[int, str]:
        """Send SIGINT; its exit status, and what it printed after the first line."""
        assert self.proc.stdout is not None
        self.proc.send_signal(signal.SIGINT)
        rest = bytearray()
        while data := await self.proc.stdout.receive_some():
            rest += data
        return await self.proc.wait(), rest.decode()


@contextlib.asynccontextmanager
async def server_script(*args: str) -> AsyncIterator[ServerScript]:
    """Run ``examples/<args[0]>`` as a script, once it printed a line.

    It is killed on the way out if it is still running (a failed test).
    """
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(EXAMPLES / args[0]), *args[1:]],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        out = bytearray()
        while b"\n" not in out:
            data = await proc.stdout.receive_some()
            assert data, f"the server exited early: {out!r}"
            out += data
        yield ServerScript(proc, out.decode())
    finally:
        if proc.returncode is None:  # pragma: no cover - only when failing
            proc.kill()
            await proc.wait()
        await proc.stdout.aclose()


async def test_http_server_get_page(server_url: str) -> None:
    status, headers, body = parse_response(await curl("--include", server_url))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-length"] == str(len(body.encode()))
    assert headers["server"] == "trio_emtcp-example"
    assert re.fullmatch(
        r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [\d:]{8} GMT", headers["date"]
    )
    assert body == http_server.PAGES["/"][1].decode()


async def test_http_server_unknown_path_is_404(server_url: str) -> None:
    status, headers, body = parse_response(
        await curl("--include", server_url + "missing?x=1")
    )
    assert status == "HTTP/1.1 404 Not Found"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body == "not found: /missing\n"


async def test_http_server_keeps_the_connection_alive(server_url: str) -> None:
    # Two URLs in one curl run: the second reuses the connection (curl
    # reports 0 new connects) only if the server kept it open and framed
    # the first response correctly.
    out = await curl(
        "--output",
        "/dev/null",
        "--output",
        "-",
        "--write-out",
        " %{http_code} %{num_connects}\n",
        server_url,
        server_url + "hello.txt",
    )
    assert out == " 200 1\nHello World\n 200 0\n"


async def test_http_server_head_and_other_methods(server_url: str) -> None:
    status, headers, body = parse_response(await curl("--head", server_url))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-length"] == str(len(http_server.PAGES["/"][1]))
    assert body == ""
    status, headers, body = parse_response(
        await curl("--include", "--request", "POST", server_url)
    )
    assert status == "HTTP/1.1 405 Method Not Allowed"
    assert headers["allow"] == "GET, HEAD"
    assert body == "GET only\n"


async def _raw_exchange(url: str, request: bytes) -> bytes:
    """Send ``request`` over a trio_emtcp Socket; everything until EOF."""
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    async with Socket() as sock:
        await sock.connect(Address.loopback_v4(), port)
        await sock.send_all(request)
        got = bytearray()
        while data := await sock.receive_some():
            got += data
    return bytes(got)


async def test_http_server_bad_request_is_400_and_closes(server_url: str) -> None:
    reply = await _raw_exchange(server_url, b"NOT HTTP\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nconnection: close\r\n" in reply.lower()
    assert reply.endswith(b"\r\n\r\nbad request\n")


async def test_http_server_connection_close_ends_the_connection(
    server_url: str,
) -> None:
    reply = await _raw_exchange(
        server_url,
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nHello World\n")


async def test_http_server_closes_idle_connections(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(http_server.serve, "127.0.0.1", 0)
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        async with Socket() as sock:
            await sock.connect(Address.loopback_v4(), port)
            start = trio.current_time()
            assert await sock.receive_some() == b""
            assert trio.current_time() - start == pytest.approx(
                http_server.KEEP_ALIVE_TIMEOUT
            )
        nursery.cancel_scope.cancel()
    assert capsys.readouterr().out == f"listening on {url}\n"


async def test_http_server_script_prints_url_and_stops_on_sigint() -> None:
    require_tool("curl")
    async with server_script("http_server.py", "--port", "0") as script:
        line = script.first_line
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, line
        assert (await curl(match.group(1) + "hello.txt")) == "Hello World\n"
        assert await script.interrupt() == (0, "stopping (SIGINT)\n")


async def test_hello_example_prints_the_spec_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    hello = load_example("hello")
    await hello.main()
    # The two prints come from two tasks that Trio may schedule either way.
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == ["11", "b'Hello World'"]


# -- tls_echo.py --------------------------------------------------------------

tls_echo = load_example("tls_echo")

_TLS_CLIENT_LINES = [
    f"client: sent {message!r}, got back {message!r}" for message in tls_echo.MESSAGES
]


async def test_tls_echo_example_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    await tls_echo.main()
    listening, *rest = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"server: listening on 127\.0\.0\.1:[1-9][0-9]*", listening)
    assert rest == _TLS_CLIENT_LINES


async def test_tls_echo_client_returns_the_echoes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server_context, client_context = tls_echo.make_contexts()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(tls_echo.serve, server_context)
        assert await tls_echo.client(port, client_context) == tls_echo.MESSAGES
        nursery.cancel_scope.cancel()
    assert capsys.readouterr().out.splitlines()[1:] == _TLS_CLIENT_LINES


async def test_tls_echo_server_survives_an_untrusted_client(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server_context, client_context = tls_echo.make_contexts()
    _, stranger_context = tls_echo.make_contexts()  # trusts another CA
    async with trio.open_nursery() as nursery:
        port = await nursery.start(tls_echo.serve, server_context)
        capsys.readouterr()
        with pytest.raises(trio.BrokenResourceError) as excinfo:
            await tls_echo.client(port, stranger_context)
        assert isinstance(excinfo.value.__cause__, ssl.SSLCertVerificationError)
        # The client's alert reaches the server's handshake.
        await trio.testing.wait_all_tasks_blocked()
        out = capsys.readouterr().out
        assert re.fullmatch(r"server: a connection failed: SSL\w*Error\(.*\)\n", out)
        # The failure ended one connection; the server serves the next one.
        assert await tls_echo.client(port, client_context) == tls_echo.MESSAGES
        nursery.cancel_scope.cancel()


async def test_tls_echo_receive_exactly_reports_an_early_close(
    pair: tuple[Socket, Socket],
) -> None:
    server_context, client_context = tls_echo.make_contexts()
    a, b = pair
    async with trio.open_nursery() as nursery:
        server = trio.SSLStream(b, server_context, server_side=True)
        client = trio.SSLStream(a, client_context, server_hostname=tls_echo.SERVER_NAME)

        async def close_after_two_bytes() -> None:
            await server.send_all(b"he")
            await server.aclose()

        nursery.start_soon(close_after_two_bytes)
        with pytest.raises(EOFError, match=r"^the server closed the connection early$"):
            await tls_echo.receive_exactly(client, 5)


async def test_tls_echo_script_runs_with_throwaway_certificates() -> None:
    result = await trio.run_process(
        [sys.executable, str(EXAMPLES / "tls_echo.py")],
        capture_stdout=True,
        capture_stderr=True,
    )
    listening, *rest = result.stdout.decode().splitlines()
    assert re.fullmatch(r"server: listening on 127\.0\.0\.1:[1-9][0-9]*", listening)
    assert rest == _TLS_CLIENT_LINES
    assert result.stderr == b""


# -- cancellation.py ----------------------------------------------------------

cancellation = load_example("cancellation")


async def test_cancellation_example_prints_each_row(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    await cancellation.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-2] == [
        "end of stream: the reader sees EndOfFile, and again EndOfFile",
        "cancel(): the reader sees OperationAborted",
        "  the socket is open; the next read gets data b'still here'",
        "close(): the reader sees OperationAborted",
        "  the socket is closed",
        "release(): the reader sees OperationAborted",
        "  the socket is closed; a new one adopts the fd, reads data b'still here'",
        "own deadline: the reader sees its deadline pass",
        "  the socket is open",
        "scope and cancel() at once: the reader sees trio.Cancelled",
    ]
    aborted = re.fullmatch(
        r"write_all: cancel\(\) aborts it after (\d+) bytes", lines[-2]
    )
    assert aborted is not None, lines[-2]
    assert 0 < int(aborted.group(1)) < 1024 * 1024
    assert lines[-1] == "  it resumes from there: the reader gets all 1048576 bytes"


async def test_cancellation_example_waits_out_its_deadline(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    start = trio.current_time()
    await cancellation.own_deadline()
    assert trio.current_time() - start == pytest.approx(cancellation.DEADLINE)
    assert capsys.readouterr().out == (
        "own deadline: the reader sees its deadline pass\n  the socket is open\n"
    )


async def test_cancellation_example_read_once_returns_data(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    await a.write_some(b"ready")
    with trio.testing.assert_checkpoints():
        assert await cancellation.read_once(b) == "data b'ready'"


# -- serve_listeners.py -------------------------------------------------------

serve_listeners = load_example("serve_listeners")


async def test_serve_listeners_example_echoes_and_stops_cleanly() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_listeners.serve, 0)
        # Two clients at once: serve_listeners gives each its own task.
        first = await trio.open_tcp_stream("127.0.0.1", port)
        second = await trio.open_tcp_stream("127.0.0.1", port)
        async with first, second:
            await first.send_all(b"one")
            await second.send_all(b"two")
            assert await second.receive_some() == b"two"
            assert await first.receive_some() == b"one"
            # The handler returns at end of stream, and serve_listeners
            # closes the connection: the client reads b"".
            await first.send_eof()
            assert await first.receive_some() == b""
            nursery.cancel_scope.cancel()
    # Cancelled, it closed the acceptor: nobody listens on the port.
    async with Socket() as probe:
        with pytest.raises(ConnectionRefusedError):
            await probe.connect(Address.loopback_v4(), port)


async def test_serve_listeners_script_stops_on_sigint() -> None:
    async with server_script("serve_listeners.py", "0") as script:
        line = script.first_line
        match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        async with await trio.open_tcp_stream("127.0.0.1", int(match.group(1))) as c:
            await c.send_all(b"ping")
            assert await c.receive_some() == b"ping"
        assert await script.interrupt() == (0, "stopped\n")


# -- websocket_echo.py: trio-websocket on an Acceptor (SPEC §7) --------------------

websocket_echo = load_example("websocket_echo")


def _websocket_client(port: int, messages: Sequence[bytes | str]) -> list[bytes | str]:
    """Send each message and read its echo, with the ``websockets`` package.

    A different WebSocket implementation from the server's (its own
    framing, masking and handshake code), over a blocking socket.
    """
    from websockets.sync.client import connect

    echoes: list[bytes | str] = []
    with connect(
        f"ws://127.0.0.1:{port}/", max_size=None, open_timeout=10, close_timeout=10
    ) as ws:
        for message in messages:
            ws.send(message)
            echoes.append(ws.recv(timeout=10))
    return echoes


async def test_websocket_echo_large_and_many_small_messages() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    small: list[bytes | str] = [f"message {n}" for n in range(300)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(websocket_echo.serve, 0)
            echoes = await trio.to_thread.run_sync(
                _websocket_client, port, [big, *small]
            )
            nursery.cancel_scope.cancel()
    assert echoes[0] == big
    assert echoes[1:] == small
    # Cancelled, the server closed its acceptor.
    async with Socket() as probe:
        with pytest.raises(ConnectionRefusedError):
            await probe.connect(Address.loopback_v4(), port)


async def test_websocket_server_sees_the_peer_in_the_Socket_repr() -> None:
    # trio-websocket names a peer by its SocketStream's socket, else by
    # repr(stream): the repr carries both endpoints.
    remotes: list[object] = []

    async def handler(request: Any) -> None:
        ws = await request.accept()
        remotes.append(ws.remote)
        await ws.send_message(await ws.get_message())

    listener = trio_emtcp.ip.tcp.listen("127.0.0.1", 0)
    port = listener.local_port
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = websocket_echo.WebSocketServer(handler, [listener])
            await nursery.start(server.run)
            assert await trio.to_thread.run_sync(_websocket_client, port, ["x"]) == [
                "x"
            ]
            nursery.cancel_scope.cancel()
    assert len(remotes) == 1
    assert re.fullmatch(
        rf"<trio_emtcp\.ip\.tcp\.Socket v4 127\.0\.0\.1:{port} -> "
        r"127\.0\.0\.1:\d+>",
        str(remotes[0]),
    ), remotes


async def test_websocket_echo_script_stops_on_sigint() -> None:
    async with server_script("websocket_echo.py", "0") as script:
        line = script.first_line
        match = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)/\n", line)
        assert match, line
        echoes = await trio.to_thread.run_sync(
            _websocket_client, int(match.group(1)), [b"ping"]
        )
        assert echoes == [b"ping"]
        assert await script.interrupt() == (0, "stopped\n")


# -- the reference pages' snippets ---------------------------------------------


async def test_reference_snippet_ip() -> None:
    said = await load_example("ref_ip").main()
    assert re.fullmatch(r"listening on 127\.0\.0\.1:\d+", said[0])
    assert said[1:] == [
        "connect: to 127.0.0.1, loopback True",
        f"ip.connect: {said[0].removeprefix('listening on ')}",
        "ip.dial: tcp_no_delay=True",
    ]


async def test_reference_snippet_ip_tcp() -> None:
    assert await load_example("ref_ip_tcp").main() == [
        "server read b'hello'",
        "server: end of stream",
        "closed: client.is_open=False acceptor.is_open=False",
    ]


async def test_reference_snippet_stream() -> None:
    assert await load_example("ref_stream").main() == [
        "line 1: b'HEAD one'",
        "line 2: b'HEAD two'",
        "body: b'1234567890'",
    ]


@pytest.mark.parametrize("name", ["ref_ip", "ref_ip_tcp", "ref_stream"])
async def test_reference_snippets_run_as_scripts(name: str) -> None:
    done = await trio.run_process(
        [sys.executable, str(EXAMPLES / f"{name}.py")], capture_stdout=True
    )
    assert done.returncode == 0
    assert done.stdout.decode().count("\n") >= 3


# -- relaxed_bulk.py ---------------------------------------------------------------

relaxed_bulk = load_example("relaxed_bulk")


async def test_relaxed_bulk_example_moves_every_byte_and_lets_others_run() -> None:
    with trio.fail_after(30):
        received, ticks = await relaxed_bulk.transfer(4 * 1024 * 1024)
    assert received == 4 * 1024 * 1024
    assert ticks >= 1
    assert not trio_emtcp._relaxed.RELAXED  # both blocks were left


# -- static_file_server.py: Scanner, send_file, a stall timeout (SPEC §12) --------

static_file_server = load_example("static_file_server")

#: The stall timeout the tests give the file server, in seconds of the real
#: clock (its clients are threads): the stalled-client test waits it out two
#: or three times.
STALL = 0.2

#: More than loopback's buffers take from a client that does not read.
BIG = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory to serve, with a secret beside it (read only: shared)."""
    tmp_path = tmp_path_factory.mktemp("site")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"Hello World\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "big.bin").write_bytes(random.Random(18).randbytes(BIG))
    (root / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    (tmp_path / "secret.txt").write_bytes(b"secret\n")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    return root.resolve()


@contextlib.asynccontextmanager
async def file_server(site: Path) -> AsyncIterator[int]:
    """The file server in-process, on an ephemeral port; its port."""
    async with trio.open_nursery() as nursery:
        serve = functools.partial(
            static_file_server.serve, site, "127.0.0.1", 0, stall_timeout=STALL
        )
        url: str = await nursery.start(serve)
        match = re.fullmatch(r"http://127\.0\.0\.1:([1-9][0-9]*)/", url)
        assert match, url
        yield int(match.group(1))
        nursery.cancel_scope.cancel()


@pytest.fixture
async def file_port(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[int]:
    """The file server's port; it printed its root and URL."""
    async with file_server(site) as port:
        assert capsys.readouterr().out == (
            f"serving {site} on http://127.0.0.1:{port}/\n"
        )
        yield port


def _http_get(port: int, path: str, method: str) -> tuple[int, dict[str, str], bytes]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request(method, path)
        response = client.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        client.close()


async def http_get(
    port: int, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One request with the standard library's ``http.client``, in a thread."""
    return await trio.to_thread.run_sync(_http_get, port, path, method)


def _raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request)
        reply = bytearray()
        while data := client.recv(65536):
            reply += data
    return bytes(reply)


async def raw_request(port: int, request: bytes) -> bytes:
    """Send ``request`` from a blocking socket; everything until EOF."""
    return await trio.to_thread.run_sync(_raw_request, port, request)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_static_file_server_serves_files_to_http_client(
    file_port: int, site: Path
) -> None:
    status, headers, body = await http_get(file_port, "/hello.txt?x=1")
    assert (status, body) == (200, b"Hello World\n")
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == "12"
    assert headers["connection"] == "close"
    status, headers, body = await http_get(file_port, "/empty.txt")
    assert (status, headers["content-length"], body) == (200, "0", b"")
    status, headers, body = await http_get(file_port, "/sub/")
    assert (status, headers["content-type"], body) == (
        200,
        "text/html",
        b"<p>sub</p>\n",
    )
    status, headers, body = await http_get(file_port, "/big.bin")
    assert (status, headers["content-type"]) == (200, "application/octet-stream")
    assert headers["content-length"] == str(BIG)
    assert sha256(body) == sha256((site / "big.bin").read_bytes())


async def test_static_file_server_serves_files_to_curl(
    file_port: int, site: Path, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{file_port}"
    assert await curl(base + "/hello.txt") == "Hello World\n"
    out = tmp_path / "big.out"
    written = await curl(
        "--output", str(out), "--write-out", "%{http_code} %{size_download}",
        base + "/big.bin",
    )  # fmt: skip
    assert written == f"200 {BIG}"
    assert sha256(out.read_bytes()) == sha256((site / "big.bin").read_bytes())
    status, headers, body = parse_response(await curl("--head", base + "/big.bin"))
    assert (status, headers["content-length"], body) == (
        "HTTP/1.0 200 OK",
        str(BIG),
        "",
    )
    # curl would make "/../secret.txt" into "/secret.txt" itself.
    written = await curl(
        "--path-as-is", "--output", "/dev/null", "--write-out", "%{http_code}",
        base + "/../secret.txt",
    )  # fmt: skip
    assert written == "404"


async def test_static_file_server_head_sends_no_body(file_port: int) -> None:
    reply = await raw_request(file_port, b"HEAD /hello.txt HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\nContent-Length: 12\r\n" in reply
    assert reply.endswith(b"\r\n\r\n")
    status, headers, body = await http_get(file_port, "/big.bin", "HEAD")
    assert (status, headers["content-length"], body) == (200, str(BIG), b"")


@pytest.mark.parametrize(
    "path",
    [
        "/missing.txt",
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/link.txt",  # a symbolic link out of the root
        "/hello.txt%00",
        "hello.txt",  # not an absolute path
    ],
)
async def test_static_file_server_refuses_what_is_not_under_the_root(
    file_port: int, path: str
) -> None:
    status, headers, body = await http_get(file_port, path)
    assert (status, headers["content-type"], body) == (
        404,
        "text/plain; charset=utf-8",
        b"Not Found\n",
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT HTTP\r\n\r\n",
        b"GET /hello.txt HTTP/1.0\r\nno colon\r\n\r\n",
        # A request line over MAX_LINE, most of it unread by the server:
        # graceful_close keeps the answer from being lost to a reset.
        b"GET /" + b"a" * (256 * 1024) + b" HTTP/1.0\r\n\r\n",
    ],
    ids=["garbage", "bad-header", "too-long"],
)
async def test_static_file_server_answers_400_to_what_is_not_http(
    file_port: int, request_bytes: bytes
) -> None:
    reply = await raw_request(file_port, request_bytes)
    assert reply.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert reply.endswith(b"\r\n\r\nBad Request\n")


async def test_static_file_server_answers_403_when_it_cannot_read_a_file(
    file_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests run as root, which reads any file: the refusal is made.
    # The server answers it; it does not take it for a client that left.
    real = trio.open_file

    async def refusing(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path).name == "hello.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return await real(path, *args, **kwargs)

    monkeypatch.setattr(trio, "open_file", refusing)
    status, _, body = await http_get(file_port, "/hello.txt")
    assert (status, body) == (403, b"Forbidden\n")


async def test_static_file_server_answers_405_to_other_methods(
    file_port: int,
) -> None:
    status, headers, body = await http_get(file_port, "/hello.txt", "POST")
    assert (status, headers["allow"], body) == (
        405,
        "GET, HEAD",
        b"Method Not Allowed\n",
    )


def _hold_then_get(
    port: int, path: str, held: threading.Barrier, go: threading.Event
) -> bytes:
    """Connect and send half a request; after ``go``, the rest; the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(f"GET {path} HTTP/1.0\r\n".encode())
        held.wait(timeout=10)
        assert go.wait(timeout=10)
        client.sendall(b"\r\n")
        response = http.client.HTTPResponse(client, method="GET")
        response.begin()
        assert response.status == 200
        return response.read()


async def test_static_file_server_serves_many_clients_at_once(site: Path) -> None:
    # 24 clients each hold a connection with half a request, and one more is
    # served meanwhile: a server that took clients one at a time would wait
    # for the first request forever.
    clients = 24
    paths = ["/big.bin" if n % 6 == 0 else "/hello.txt" for n in range(clients)]
    held = threading.Barrier(clients + 1)
    go = threading.Event()
    bodies: dict[int, bytes] = {}

    async def client(n: int) -> None:
        run = _hold_then_get
        bodies[n] = await trio.to_thread.run_sync(run, port, paths[n], held, go)

    with no_fd_leak(), trio.fail_after(20):
        async with file_server(site) as port, trio.open_nursery() as nursery:
            for n in range(clients):
                nursery.start_soon(client, n)
            await trio.to_thread.run_sync(held.wait, 10)
            assert await curl(f"http://127.0.0.1:{port}/hello.txt") == "Hello World\n"
            go.set()
    big = sha256((site / "big.bin").read_bytes())
    for n, path in enumerate(paths):
        if path == "/big.bin":
            assert sha256(bodies[n]) == big
        else:
            assert bodies[n] == b"Hello World\n"


def _stalled_client(port: int, requested: threading.Event) -> tuple[int, float, int]:
    """Ask for the big file, never read; wait for the server to drop it.

    Returns the poll events, the seconds until they came, and the bytes
    that had arrived.
    """
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.settimeout(10)
        client.connect(("127.0.0.1", port))
        client.sendall(b"GET /big.bin HTTP/1.0\r\n\r\n")
        start = time.monotonic()
        requested.set()
        poller = select.poll()
        poller.register(client, 0)  # only what is always reported: HUP, ERR
        events = poller.poll(5_000)
        waited = time.monotonic() - start
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while data := client.recv(65536):
                received += len(data)
    return events[0][1] if events else 0, waited, received


async def test_static_file_server_drops_a_client_that_stops_reading(
    site: Path,
) -> None:
    requested = threading.Event()
    stalled: list[tuple[int, float, int]] = []

    async def stalled_client() -> None:
        run = _stalled_client
        stalled.append(await trio.to_thread.run_sync(run, port, requested))

    with no_fd_leak(), trio.fail_after(10):
        async with file_server(site) as port, trio.open_nursery() as nursery:
            nursery.start_soon(stalled_client)
            await trio.to_thread.run_sync(requested.wait, 10)
            # The server is not stuck on the stalled client.
            assert await http_get(port, "/empty.txt") == (200, mock.ANY, b"")
            assert not stalled, "dropped before another client was served"
    [(events, waited, received)] = stalled
    # Reset (linger 0) after a whole stall timeout without progress.
    assert events & select.POLLHUP
    assert STALL <= waited < 5
    assert 0 < received < BIG


def _slow_reader(port: int, pause: float) -> tuple[int, bytes]:
    """Request the big file, pause before reading it, then read it all."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request("GET", "/big.bin")
        time.sleep(pause)
        response = client.getresponse()
        return response.status, response.read()
    finally:
        client.close()


async def test_static_file_server_resumes_for_a_slow_reader(site: Path) -> None:
    # The first step of send_file ends at its deadline after filling the
    # buffers; the server resumes from bytes_transferred, and the client,
    # reading again within the second stall timeout, gets every byte.
    with trio.fail_after(15):
        async with file_server(site) as port:
            status, body = await trio.to_thread.run_sync(
                _slow_reader, port, 1.5 * STALL
            )
    assert status == 200
    assert sha256(body) == sha256((site / "big.bin").read_bytes())


async def test_static_file_server_script_serves_and_stops_on_sigint(
    site: Path,
) -> None:
    async with server_script(
        "static_file_server.py", str(site), "--port", "0"
    ) as script:
        line = script.first_line
        match = re.fullmatch(
            rf"serving {re.escape(str(site))} on (http://\S+/)\n", line
        )
        assert match, line
        assert await curl(match.group(1) + "sub/") == "<p>sub</p>\n"
        assert await script.interrupt() == (0, "stopped\n")


# -- chat_server.py: a queue per client, a client that does not read dropped ----

chat_server = load_example("chat_server")


class ChatClient:
    """A chat client on a blocking stdlib socket; call it from a thread."""

    def __init__(self, port: int, *, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.name = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.lines = self.sock.makefile("rb")

    def say(self, *lines: str) -> None:
        self.sock.sendall(b"".join(f"{line}\n".encode() for line in lines))

    def hear(self) -> str:
        return self.lines.readline().decode()

    def hear_all(self) -> bytes:
        """Everything until the server closes the connection."""
        return self.lines.read()

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


@contextlib.asynccontextmanager
async def chat_room(
    capsys: pytest.CaptureFixture[str], *receive_buffers: int | None
) -> AsyncIterator[list[ChatClient]]:
    """The chat server in-process, and a client in it per receive buffer size.

    ``None``: the system's default (and its automatic growth).
    """
    with no_fd_leak(), trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port: int = await nursery.start(chat_server.serve, "127.0.0.1", 0)
            clients: list[ChatClient] = []
            try:
                for size in receive_buffers:
                    clients.append(
                        await trio.to_thread.run_sync(
                            functools.partial(ChatClient, port, receive_buffer=size)
                        )
                    )
                    # Until the server has it in the room.
                    await trio.testing.wait_all_tasks_blocked()
                assert capsys.readouterr().out.splitlines() == [
                    f"chat on 127.0.0.1:{port}",
                    *(f"{client.name} joined" for client in clients),
                ]
                yield clients
            finally:
                for client in clients:
                    client.close()
            nursery.cancel_scope.cancel()


async def test_chat_server_sends_each_line_to_the_others_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with chat_room(capsys, None, None, None) as (a, b, c):
        await trio.to_thread.run_sync(a.say, "hello from a")
        assert await trio.to_thread.run_sync(b.hear) == f"{a.name}: hello from a\n"
        assert await trio.to_thread.run_sync(c.hear) == f"{a.name}: hello from a\n"
        await trio.to_thread.run_sync(b.say, "hi")
        # a's first line is b's: its own line did not come back to it.
        assert await trio.to_thread.run_sync(a.hear) == f"{b.name}: hi\n"
        assert await trio.to_thread.run_sync(c.hear) == f"{b.name}: hi\n"
        # c leaves: the room forgets it, and the others go on.
        c.close()
        await trio.testing.wait_all_tasks_blocked()
        assert capsys.readouterr().out == f"{c.name} left\n"
        await trio.to_thread.run_sync(a.say, "still here")
        assert await trio.to_thread.run_sync(b.hear) == f"{a.name}: still here\n"


async def test_chat_server_drops_a_client_that_does_not_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # About 120 KB: several times what the kernel holds for the client that
    # does not read (TCP_NOTSENT_LOWAT, and a small receive buffer) and its
    # queue.  The readers' receive buffers could take it all: they are not
    # dropped if their threads fall behind.
    lines = [f"{n:05} " + "x" * 94 for n in range(1000)]
    room = chat_room(capsys, None, 1 << 20, 1 << 20, 4096)
    async with room as (talker, r1, r2, idle):
        expected = [f"{talker.name}: {line}\n" for line in lines]

        def hear_every_line(client: ChatClient) -> list[str]:
            return [client.hear() for _ in lines]

        heard: dict[str, list[str]] = {}

        async def reader(client: ChatClient) -> None:
            heard[client.name] = await trio.to_thread.run_sync(hear_every_line, client)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader, r1)
            nursery.start_soon(reader, r2)
            await trio.to_thread.run_sync(talker.say, *lines)
        # The readers got every line, in order.
        assert heard == {r1.name: expected, r2.name: expected}
        assert capsys.readouterr().out == f"{idle.name} dropped: it does not read\n"
        # The dropped client can still read what reached it: the first lines,
        # in order (the last one perhaps cut), then the end of the stream.
        *got, cut = (await trio.to_thread.run_sync(idle.hear_all)).decode().split("\n")
        assert 0 < len(got) < len(lines)
        assert [f"{line}\n" for line in got] == expected[: len(got)]
        assert expected[len(got)].startswith(cut)


async def _printed_lines(script: ServerScript, count: int) -> list[str]:
    """The next ``count`` lines the script prints (it prints nothing else)."""
    assert script.proc.stdout is not None
    out = bytearray()
    while out.count(b"\n") < count:
        data = await script.proc.stdout.receive_some()
        assert data, f"the script exited: {out!r}"
        out += data
    return out.decode().splitlines()


async def test_chat_server_script_chats_and_stops_on_sigint() -> None:
    async with server_script("chat_server.py", "--port", "0") as script:
        line = script.first_line
        match = re.fullmatch(r"chat on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        port = int(match.group(1))
        with trio.fail_after(10):
            a = await trio.to_thread.run_sync(ChatClient, port)
            b = await trio.to_thread.run_sync(ChatClient, port)
            joined = await _printed_lines(script, 2)
            assert sorted(joined) == sorted(f"{c.name} joined" for c in (a, b))
            await trio.to_thread.run_sync(a.say, "ping")
            assert await trio.to_thread.run_sync(b.hear) == f"{a.name}: ping\n"
            a.close()
            b.close()
            left = await _printed_lines(script, 2)
            assert sorted(left) == sorted(f"{c.name} left" for c in (a, b))
            assert await script.interrupt() == (0, "stopped\n")


# -- relay.py ---------------------------------------------------------------------

relay_example = load_example("relay")


def _hashing_server() -> tuple[socket.socket, threading.Thread]:
    """A blocking server: reads to the end, answers the sha256, closes.

    It answers only after the client's half-close: the relay must pass
    that end of stream on and keep the way back open.
    """
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                digest = hashlib.sha256()
                while data := conn.recv(1 << 16):
                    digest.update(data)
                conn.sendall(digest.hexdigest().encode())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener, thread


def _client(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while part := sock.recv(4096):
            answer += part
        return answer


async def test_relay_passes_bytes_and_half_close_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listener, thread = _hashing_server()
    target = listener.getsockname()[1]
    data = random.randbytes(24 * 1024 * 1024 + 5)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                relay_example.serve, "127.0.0.1", 0, "127.0.0.1", target
            )
            answer = await trio.to_thread.run_sync(_client, port, data)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    thread.join(5)
    assert answer == hashlib.sha256(data).hexdigest().encode()
    out = capsys.readouterr().out
    assert f": {len(data)} bytes up, 64 down" in out


async def test_relay_reports_a_server_that_cannot_be_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A port nobody listens on: bound, never listening.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                port = await nursery.start(
                    relay_example.serve, "127.0.0.1", 0, "127.0.0.1", dead
                )
                # Closed at once: an end of stream, or a reset for the
                # bytes the relay never read (met by the client's recv, or
                # already by its shutdown, as ENOTCONN).
                with contextlib.suppress(OSError):
                    answer = await trio.to_thread.run_sync(_client, port, b"hello")
                    assert answer == b""
                nursery.cancel_scope.cancel()
    assert "cannot connect to 127.0.0.1 port" in capsys.readouterr().out


async def test_relay_reports_a_reset_with_both_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    target = listener.getsockname()[1]

    def crash() -> None:
        # Reads 5 bytes, then resets the connection.
        with listener:
            conn, _ = listener.accept()
            conn.recv(5)
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            conn.close()

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"12345")
            with contextlib.suppress(OSError):
                sock.recv(10)

    thread = threading.Thread(target=crash, daemon=True)
    thread.start()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                relay_example.serve, "127.0.0.1", 0, "127.0.0.1", target
            )
            await trio.to_thread.run_sync(client, port)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    thread.join(5)
    assert "Connection reset by peer after 5 up, 0 down" in capsys.readouterr().out
