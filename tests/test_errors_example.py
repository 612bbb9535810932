"""Tests for examples/errors.py and the table of docs/errors.rst.

The handler drops a client on what ends a connection (a reset from a
trio_emtcp or a stdlib peer, an abort, a line over the limit, and the
classification of an end of stream) and lets the server's own errors (a
journal that cannot be opened) and the task's cancellation propagate.
Every class the table names exists, and every class the helper catches
is in the table.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import importlib
import importlib.util
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType

import pytest
import trio
import trio.testing

import trio_emtcp
from trio_emtcp import (
    ClosedSocketError,
    EndOfFile,
    OperationAborted,
    RecordTooLong,
    ip,
    socket_pair,
    stream,
)
from trio_emtcp.ip.tcp import Socket

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "errors.rst"
# Every wait of these tests is on loopback: it ends at once or never.
TIMEOUT = 10


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "examples_errors", ROOT / "examples" / "errors.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


errors = _load_example()


def dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the example logged as dropped clients."""
    return [r.getMessage() for r in caplog.records if r.name == "errors_example"]


@pytest.fixture(autouse=True)
def _log_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="errors_example")


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal.txt"


@contextlib.asynccontextmanager
async def serving(journal: Path) -> AsyncIterator[tuple[Socket, Socket, trio.Nursery]]:
    """``(client, server, nursery)``, with ``handle(server, journal)`` running
    in the nursery; the block must make it return, and it closes ``server``."""
    client, server = await socket_pair()
    async with client, trio.open_nursery() as nursery:
        nursery.start_soon(errors.handle, server, journal)
        yield client, server, nursery
    assert not server.is_open


async def exchange(client: Socket, line: bytes) -> bytes:
    """Send ``line`` and read the server's one-line answer."""
    await stream.write_all(client, line)
    buf = bytearray(3)
    await stream.read_all(client, buf)
    return bytes(buf)


def reset(sock: Socket) -> None:
    """Close ``sock`` with a reset (``SO_LINGER`` 0) instead of a FIN."""
    sock.set_option("linger", True, 0)
    sock.close()


# -- the handler ------------------------------------------------------------------


async def test_handler_serves_lines_until_the_end_of_the_stream(
    journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(journal) as (client, _, _):
            assert await exchange(client, b"one\n") == b"OK\n"
            assert await exchange(client, b"two\n") == b"OK\n"
            client.shutdown("send")
            # The end of the stream between lines is the normal end.
            with pytest.raises(EndOfFile):
                await client.read_some(bytearray(1))
    assert await trio.Path(journal).read_bytes() == b"one\ntwo\n"
    assert dropped(caplog) == []


async def test_handler_drops_a_client_that_resets(
    journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(journal) as (client, _, _):
            assert await exchange(client, b"one\n") == b"OK\n"
            reset(client)
    assert await trio.Path(journal).read_bytes() == b"one\n"
    assert dropped(caplog) == [
        "client dropped: ConnectionResetError(104, 'Connection reset by peer')"
    ]


async def test_handler_drops_a_stdlib_peer_that_resets(
    journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT), socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = await ip.dial("127.0.0.1", listener.getsockname()[1])
        peer, _ = listener.accept()  # connected already: does not block
        with peer:
            peer.setblocking(False)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(errors.handle, server, journal)
                peer.sendall(b"one\n")
                await trio.lowlevel.wait_readable(peer)
                assert peer.recv(16) == b"OK\n"
                peer.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                peer.close()
    assert not server.is_open
    assert await trio.Path(journal).read_bytes() == b"one\n"
    assert dropped(caplog) == [
        "client dropped: ConnectionResetError(104, 'Connection reset by peer')"
    ]


@pytest.mark.parametrize("how", ["cancel", "close"])
async def test_handler_drops_a_client_the_server_aborts(
    journal: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(journal) as (_, server, _):
            await trio.testing.wait_all_tasks_blocked()  # handle waits to read
            getattr(server, how)()
    assert dropped(caplog) == [
        "client dropped: OperationAborted(125, 'Operation canceled')"
    ]


async def test_handler_drops_a_client_whose_line_is_too_long(
    journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving(journal) as (client, _, _):
            assert await exchange(client, b"one\n") == b"OK\n"
            # No separator within MAX_LINE bytes: the scanner stops there.
            await stream.write_all(client, b"x" * (errors.MAX_LINE + 1))
            with pytest.raises((EndOfFile, ConnectionResetError)):
                await client.read_some(bytearray(1))  # dropped: a FIN or a reset
    assert await trio.Path(journal).read_bytes() == b"one\n"
    assert dropped(caplog) == [
        "client dropped: RecordTooLong(90, "
        f"'record exceeds max_record_size ({errors.MAX_LINE} bytes)')"
    ]


@pytest.mark.parametrize(
    ("where", "error"),
    [
        # The journal is a directory.
        ("journal.txt", IsADirectoryError),
        # Its folder is missing.  (The tests run as root, whom no
        # permission bit stops: no PermissionError here.)
        ("missing/journal.txt", FileNotFoundError),
    ],
)
async def test_handler_lets_the_servers_own_errors_propagate(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    where: str,
    error: type[OSError],
) -> None:
    journal = tmp_path / where
    if error is IsADirectoryError:
        journal.mkdir()
    client, server = await socket_pair()
    async with client:
        await stream.write_all(client, b"one\n")
        with trio.fail_after(TIMEOUT), pytest.raises(error):
            await errors.handle(server, journal)
    assert not server.is_open
    assert dropped(caplog) == []


async def test_except_oserror_would_hide_the_servers_own_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The trap the page warns of: the handler with ``except OSError``.
    async def naive_handle(client: Socket, journal: Path) -> None:
        try:
            async for line in stream.Scanner(client, max_record_size=1024):
                async with await trio.open_file(journal, "ab") as f:
                    await f.write(line + b"\n")
                await stream.write_all(client, b"OK\n")
        except OSError as exc:
            errors.log.info("client dropped: %r", exc)
        finally:
            client.close()

    client, server = await socket_pair()
    async with client:
        await stream.write_all(client, b"one\n")
        with trio.fail_after(TIMEOUT):
            await naive_handle(server, tmp_path)  # a directory: no journal
    [message] = dropped(caplog)
    assert message.startswith("client dropped: IsADirectoryError(21,")


async def test_handler_lets_its_own_cancellation_through(
    journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client, server = await socket_pair()
    async with client:
        with trio.fail_after(TIMEOUT), trio.move_on_after(0) as scope:
            await errors.handle(server, journal)
    assert scope.cancelled_caught  # trio.Cancelled left handle
    assert not server.is_open
    assert dropped(caplog) == []


# -- the helper, on exceptions taken from real sockets and files ----------------


async def raised(call: Callable[[], Awaitable[object]]) -> BaseException:
    """What awaiting ``call()`` raises."""
    try:
        await call()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


async def connection_losses() -> list[BaseException]:
    """One exception of each kind that ends a connection."""
    a, b = await socket_pair()
    c, d = await socket_pair()
    e, f = await socket_pair()
    async with a, b, c, d, e, f:
        reset(b)
        found = [await raised(lambda: a.read_some(bytearray(1)))]
        c.shutdown("send")
        found.append(await raised(lambda: c.write_some(b"x")))  # EPIPE
        found.append(await raised(lambda: d.read_some(bytearray(1))))
        await stream.write_all(f, b"y" * 10)
        scanner = stream.Scanner(e, max_record_size=4)
        found.append(await raised(scanner.get_line))
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                found.append(await raised(lambda: f.read_some(bytearray(1))))

            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            f.cancel()
    return [
        *found,
        OSError(errno.ETIMEDOUT, "Connection timed out"),  # a dead peer
        OSError(errno.EHOSTUNREACH, "No route to host"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        OSError(errno.ECONNABORTED, "Software caused connection abort"),
    ]


async def not_connection_losses(tmp_path: Path) -> list[BaseException]:
    """The program's own errors, and its task's cancellation."""
    a, b = await socket_pair()
    async with b:
        a.close()
        closed = await raised(lambda: a.read_some(bytearray(1)))
        bad_type = await raised(lambda: b.read_some("text"))  # type: ignore[arg-type]
    with pytest.raises(ValueError) as bad_value:
        Socket().set_option("linger", True, -1)
    with pytest.raises(IsADirectoryError) as directory:
        await trio.open_file(tmp_path, "rb")
    with pytest.raises(FileNotFoundError) as missing:
        await trio.open_file(tmp_path / "missing", "rb")
    cancelled: trio.Cancelled | None = None
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            cancelled = exc
            raise
    assert cancelled is not None
    return [
        closed,
        bad_type,
        bad_value.value,
        directory.value,
        missing.value,
        PermissionError(errno.EACCES, "Permission denied"),
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        cancelled,
    ]


async def test_helper_names_every_connection_loss() -> None:
    with trio.fail_after(TIMEOUT):
        losses = await connection_losses()
    assert [type(e) for e in losses] == [
        ConnectionResetError,
        BrokenPipeError,
        EndOfFile,
        RecordTooLong,
        OperationAborted,
        TimeoutError,
        OSError,
        OSError,
        ConnectionAbortedError,
    ]
    assert [e for e in losses if not errors.is_connection_loss(e)] == []


async def test_helper_names_nothing_else(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        others = await not_connection_losses(tmp_path)
    assert [type(e) for e in others] == [
        ClosedSocketError,
        TypeError,
        ValueError,
        IsADirectoryError,
        FileNotFoundError,
        PermissionError,
        socket.gaierror,
        trio.Cancelled,
    ]
    assert [e for e in others if errors.is_connection_loss(e)] == []


# -- the page ---------------------------------------------------------------------

_CLASS = re.compile(r":(?:class|exc):`(?:[^`<]*<)?~?([\w.]+)>?`")


def table_rows() -> list[list[str]]:
    """The cells of each body row of the page's table."""
    text = PAGE.read_text()
    [table] = text.split(".. list-table::")[1:]
    table = table.split("\n\n")[1]  # after the options: the rows
    rows = [
        [
            re.sub(r"\s+", " ", cell).strip()
            for cell in re.split(r"^     - ", row, flags=re.M)
        ]
        for row in re.split(r"^   \* - ", table, flags=re.M)[1:]
    ]
    assert rows[0] == [
        "situation",
        "exception",
        "how to tell it",
        "what a handler usually does",
    ]
    return rows[1:]


def resolve(name: str) -> object:
    if "." not in name:
        return getattr(builtins, name)
    module, _, attribute = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError:
        return getattr(resolve(module), attribute)


def test_table_has_a_row_for_each_situation() -> None:
    situations = " | ".join(row[0] for row in table_rows())
    for situation in [
        "connection lost",
        "aborted",
        "closed",
        "end of stream",
        "record too long",
        "name resolution",
        "could not connect",
        "bad argument",
        "cancellation",
        "the program's own",
    ]:
        assert situation in situations


def test_table_names_classes_that_exist() -> None:
    for situation, exception, *_ in table_rows():
        classes = [resolve(name) for name in _CLASS.findall(exception)]
        assert all(isinstance(c, type) for c in classes), classes
        # A row may link to where the exception comes from (Scanner).
        assert any(
            isinstance(c, type) and issubclass(c, BaseException) for c in classes
        ), f"the row {situation!r} names no exception"


def test_table_names_every_class_the_helper_catches() -> None:
    named = {resolve(name) for row in table_rows() for name in _CLASS.findall(row[1])}
    caught = {ConnectionError, TimeoutError, EndOfFile, RecordTooLong}
    caught.add(OperationAborted)
    assert caught <= named
    assert {trio_emtcp.ClosedSocketError, trio.Cancelled} <= named


def test_page_includes_the_example() -> None:
    text = PAGE.read_text()
    assert ":pyobject: is_connection_loss" in text
    assert ":pyobject: handle" in text


async def test_example_prints_what_the_page_says(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        await errors.main()
    printed = PAGE.read_text().split("it\nprints::\n\n", 1)[1].split("\n\n")[0]
    assert capsys.readouterr().out == (
        "\n".join(line[4:] for line in printed.splitlines()) + "\n"
    )
    logged = PAGE.read_text().split("(on standard error)::\n\n", 1)[1]
    assert [f"server: {m}" for m in dropped(caplog)] == [logged.strip()]
