"""Tests for the runnable files under examples/.

``http_server.py`` is served in-process (port 0, ``nursery.start``) and
fetched with the real ``curl``; one test also runs it as a script and stops
it with SIGINT.  ``tls_echo.py`` runs in-process, with an untrusted client,
and as a script; ``cancellation.py`` runs in-process on the autojump clock;
``serve_listeners.py`` serves two clients in-process and is stopped by
cancellation; ``relaxed_bulk.py`` moves 4 MiB in-process.
(``line_protocol.py`` is tested in test_scanner.py, ``echo_server.py`` in
test_cli.py.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

import trio_emtcp
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Socket

from .helpers import require_tool

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
