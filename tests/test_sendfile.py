"""Tests for Socket.send_file (trio_emtcp/_sendfile.py)."""

from __future__ import annotations

import errno
import io
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import trio
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

from trio_emtcp import EndOfFile, OperationAborted, _sendfile, socket_pair
from trio_emtcp.ip.tcp import Socket

from .helpers import (
    aborted_midway,
    assert_not_exported,
    cancelled_midway,
    failing,
    open_fds,
)

MiB = 1 << 20


@pytest.fixture(scope="module")
def content() -> bytes:
    """5 MiB of reproducible, non-repeating bytes."""
    return random.Random(20240501).randbytes(5 * MiB)


@pytest.fixture
def data_file(tmp_path: Path, content: bytes) -> Iterator[BinaryIO]:
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with path.open("rb") as f:
        yield f


@pytest.fixture(params=["sendfile", "fallback"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with os.sendfile and with the pread fallback."""
    name: str = request.param
    monkeypatch.setattr(_sendfile, "_USE_SENDFILE", name == "sendfile")
    return name


async def read_to_eof(sock: Socket, into: bytearray) -> None:
    buf = bytearray(256 * 1024)
    while True:
        try:
            n = await sock.read_some(buf)
        except EndOfFile:
            return
        into += buf[:n]


async def send_and_receive(
    send: Callable[[Socket], Any],
) -> tuple[Any, bytes]:
    """Run ``send(a)`` with a concurrent reader on the peer; EOF after it."""
    a, b = await socket_pair()
    received = bytearray()
    async with a, b:
        result: list[Any] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_to_eof, b, received)
            result.append(await send(a))
            a.shutdown("send")
    return result[0], bytes(received)


# -- transfers ----------------------------------------------------------------


async def test_Socket_send_file_whole_file_with_head_and_tail(
    data_file: BinaryIO, content: bytes, mode: str
) -> None:
    head = b"HEAD\r\n" * 100
    tail = bytearray(b"\r\nTAIL")

    async def send(a: Socket) -> int:
        with assert_checkpoints():
            n: int = await a.send_file(data_file, 0, len(content), head, tail)
        return n

    n, received = await send_and_receive(send)
    assert n == len(content)
    assert len(received) == len(head) + len(content) + len(tail)
    assert received == head + content + tail


@pytest.mark.parametrize(
    ("offset", "size"),
    [(0, 1), (1, 100_000), (4096, 65536), (3 * MiB + 7, MiB - 3), (5 * MiB - 1, 1)],
)
async def test_Socket_send_file_sub_range(
    data_file: BinaryIO, content: bytes, mode: str, offset: int, size: int
) -> None:
    n, received = await send_and_receive(
        lambda a: a.send_file(data_file, offset, size, memoryview(b"<"), b">")
    )
    assert n == size
    assert received == b"<" + content[offset : offset + size] + b">"


async def test_Socket_send_file_accepts_a_descriptor(
    data_file: BinaryIO, content: bytes, mode: str
) -> None:
    fd = data_file.fileno()
    n, received = await send_and_receive(lambda a: a.send_file(fd, 10, 1000))
    assert n == 1000
    assert received == content[10:1010]


async def test_Socket_send_file_leaves_the_file_position(
    data_file: BinaryIO, content: bytes, mode: str
) -> None:
    data_file.seek(12345)
    n, received = await send_and_receive(lambda a: a.send_file(data_file, 0, 5000))
    assert (n, received) == (5000, content[:5000])
    assert data_file.tell() == 12345
    assert os.lseek(data_file.fileno(), 0, os.SEEK_CUR) == 12345


async def test_Socket_send_file_stops_at_end_of_file(
    data_file: BinaryIO, content: bytes, mode: str
) -> None:
    # Asked for more than there is: what there is, then the tail.
    offset = len(content) - 1000
    n, received = await send_and_receive(
        lambda a: a.send_file(data_file, offset, 1 * MiB, b"h", b"t")
    )
    assert n == 1000
    assert received == b"h" + content[offset:] + b"t"
    # An offset past the end sends no file data at all.
    n, received = await send_and_receive(
        lambda a: a.send_file(data_file, len(content) + 10, 100, b"h", b"t")
    )
    assert n == 0
    assert received == b"ht"


async def test_Socket_send_file_nothing_to_send(data_file: BinaryIO, mode: str) -> None:
    async def send(a: Socket) -> int:
        with assert_checkpoints():
            n: int = await a.send_file(data_file, 0, 0)
        with assert_checkpoints():
            assert await a.send_file(data_file, 0, 0, b"", bytearray()) == 0
        return n

    n, received = await send_and_receive(send)
    assert n == 0
    assert received == b""
    n, received = await send_and_receive(lambda a: a.send_file(data_file, 0, 0, b"x"))
    assert (n, received) == (0, b"x")


async def test_Socket_send_file_bytes_per_send_caps_each_call(
    data_file: BinaryIO,
    content: bytes,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts: list[int] = []
    real_sendfile = os.sendfile
    real_pread = os.pread

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        counts.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    def pread(fd: int, count: int, offset: int) -> bytes:
        counts.append(count)
        return real_pread(fd, count, offset)

    monkeypatch.setattr(os, "sendfile", sendfile)
    monkeypatch.setattr(os, "pread", pread)
    n, received = await send_and_receive(
        lambda a: a.send_file(data_file, 0, 100_000, n_number_of_bytes_per_send=4096)
    )
    assert n == 100_000
    assert received == content[:100_000]
    assert len(counts) >= 100_000 // 4096
    assert max(counts) == 4096
    assert counts[-1] == 100_000 % 4096 or counts[-1] == 4096


async def test_Socket_send_file_default_chunks_are_large(
    data_file: BinaryIO, content: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: list[int] = []
    real_sendfile = os.sendfile

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        counts.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", sendfile)
    n, _ = await send_and_receive(lambda a: a.send_file(data_file, 0, len(content)))
    assert n == len(content)
    assert counts[0] == len(content)  # one call asks for everything


async def test_Socket_send_file_falls_back_when_sendfile_refuses(
    data_file: BinaryIO, content: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_sendfile = os.sendfile

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        # Accept the first call, then refuse this kind of file.
        calls.append(offset)
        if len(calls) == 1:
            return real_sendfile(out_fd, in_fd, offset, min(count, 1000))
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(os, "sendfile", sendfile)
    n, received = await send_and_receive(
        lambda a: a.send_file(data_file, 5, 300_000, b"[", b"]")
    )
    assert calls == [5, 1005]
    assert n == 300_000
    assert received == b"[" + content[5:300_005] + b"]"


async def test_Socket_send_file_other_sendfile_errors_propagate(
    data_file: BinaryIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "sendfile", sendfile)
    a, b = await socket_pair()
    async with a, b:
        with assert_checkpoints(), pytest.raises(OSError) as exc_info:
            await a.send_file(data_file, 0, 100, b"head")
        assert exc_info.value.errno == errno.EIO
        assert exc_info.value.bytes_transferred == 4  # type: ignore[attr-defined]


async def test_Socket_send_file_from_a_pipe_is_espipe(mode: str) -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"pipe data")
        a, b = await socket_pair()
        async with a, b:
            with pytest.raises(OSError) as exc_info:
                await a.send_file(r, 0, 9)
            assert exc_info.value.errno == errno.ESPIPE
            assert exc_info.value.bytes_transferred == 0  # type: ignore[attr-defined]
    finally:
        os.close(r)
        os.close(w)


async def test_Socket_send_file_broken_connection(
    data_file: BinaryIO, mode: str
) -> None:
    a, b = await socket_pair()
    async with a:
        b.close()
        _small_send_buffer(a)
        with pytest.raises(OSError) as exc_info:
            # Far more than the buffer holds: the reset arrives before the
            # end of it is sent.
            await a.send_file(data_file, 0, 5 * MiB)
        assert exc_info.value.errno in (errno.EPIPE, errno.ECONNRESET)


# -- arguments ----------------------------------------------------------------


class _NoFileno:
    pass


BAD_ARGUMENTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    (
        {"file": "data.bin"},
        TypeError,
        r"^file: expected a binary file object or an int ",
    ),
    ({"file": 1.0}, TypeError, r"^file: expected a binary file object or an int "),
    ({"file": True}, TypeError, r"^file: expected a binary file object or an int "),
    ({"file": _NoFileno()}, TypeError, r"^file: expected a binary file object "),
    ({"file": io.BytesIO(b"x")}, TypeError, r"^file: BytesIO has no file descriptor$"),
    (
        {"file": -1},
        ValueError,
        r"^file: a descriptor must be in 0..2147483647, got -1$",
    ),
    (
        {"offset": -1},
        ValueError,
        r"^offset: must be in 0..9223372036854775807, got -1$",
    ),
    ({"offset": 1.5}, TypeError, r"^offset: expected an int, got float$"),
    ({"offset": False}, TypeError, r"^offset: expected an int, got bool$"),
    ({"offset": "0"}, TypeError, r"^offset: expected an int, got str$"),
    (
        {"offset": 2**63},
        ValueError,
        r"^offset: must be in 0..9223372036854775807, got 9223372036854775808$",
    ),
    (
        {"size_in_bytes": -5},
        ValueError,
        r"^size_in_bytes: must be in 0..9223372036854775807, got -5$",
    ),
    (
        {"size_in_bytes": None},
        TypeError,
        r"^size_in_bytes: expected an int, got NoneType$",
    ),
    (
        {"offset": 2**62, "size_in_bytes": 2**62},
        ValueError,
        r"^size_in_bytes: offset \+ size_in_bytes must be <= ",
    ),
    (
        {"head": "text"},
        TypeError,
        r"^head: expected a bytes-like object, got str; encode",
    ),
    ({"head": 5}, TypeError, r"^head: expected a bytes-like object or None, got int$"),
    (
        {"head": memoryview(b"abcd")[::2]},
        TypeError,
        r"^head: expected a C-contiguous buffer$",
    ),
    (
        {"tail": "text"},
        TypeError,
        r"^tail: expected a bytes-like object, got str; encode",
    ),
    (
        {"tail": [1]},
        TypeError,
        r"^tail: expected a bytes-like object or None, got list$",
    ),
    (
        {"n_number_of_bytes_per_send": 0},
        ValueError,
        r"^n_number_of_bytes_per_send: must be in 1..2147483647, got 0$",
    ),
    (
        {"n_number_of_bytes_per_send": 2.0},
        TypeError,
        r"^n_number_of_bytes_per_send: expected an int or None, got float$",
    ),
    (
        {"n_number_of_bytes_per_send": True},
        TypeError,
        r"^n_number_of_bytes_per_send: expected an int or None, got bool$",
    ),
]


@pytest.mark.parametrize(
    ("change", "exc", "pattern"),
    BAD_ARGUMENTS,
    ids=[f"{next(iter(c))}={next(iter(c.values()))!r}" for c, _, _ in BAD_ARGUMENTS],
)
async def test_Socket_send_file_bad_arguments(
    data_file: BinaryIO, change: dict[str, Any], exc: type[Exception], pattern: str
) -> None:
    args: dict[str, Any] = {
        "file": data_file,
        "offset": 0,
        "size_in_bytes": 10,
        "head": b"head",
        "tail": b"tail",
        "n_number_of_bytes_per_send": None,
    }
    args.update(change)
    a, b = await socket_pair()
    async with a, b:
        with assert_checkpoints(), pytest.raises(exc, match=pattern):
            await a.send_file(**args)
        # Refused before anything was written.
        assert b.io_control("bytes_readable") == 0


async def test_Socket_send_file_refuses_files_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_text("text")
    a, b = await socket_pair()
    async with a, b:
        text_mode = r"^file: expected a binary file, got a text file; open it in 'rb' "
        with (
            path.open() as f,
            assert_checkpoints(),
            pytest.raises(TypeError, match=text_mode),
        ):
            await a.send_file(f, 0, 4)
        with (
            path.open("wb") as f,
            assert_checkpoints(),
            pytest.raises(
                ValueError,
                match=r"^file: is open for writing only; open it in 'rb' mode$",
            ),
        ):
            await a.send_file(f, 0, 4, b"head")
        assert b.io_control("bytes_readable") == 0
        with path.open("rb") as f:
            f.close()
            with (
                assert_checkpoints(),
                pytest.raises(ValueError, match=r"^file: the file is closed$"),
            ):
                await a.send_file(f, 0, 4)


async def test_Socket_send_file_bad_descriptor_before_head(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    os.close(fd)  # a descriptor number that is not open
    a, b = await socket_pair()
    async with a, b:
        with assert_checkpoints(), pytest.raises(OSError) as exc_info:
            await a.send_file(fd, 0, 1, b"head")
        assert exc_info.value.errno == errno.EBADF
        assert b.io_control("bytes_readable") == 0


async def test_Socket_send_file_closed_socket_is_ebadf(data_file: BinaryIO) -> None:
    sock = Socket()
    with assert_checkpoints(), pytest.raises(OSError) as exc_info:
        await sock.send_file(data_file, 0, 10)
    assert exc_info.value.errno == errno.EBADF


# -- cancellation -------------------------------------------------------------


def _small_send_buffer(a: Socket) -> None:
    # So that the transfer blocks after about 128 KiB.  Only the sender's
    # buffer: a tiny receive window would make the rest crawl (the peer
    # announces window updates rarely, and the sender falls back on its
    # persist timer).
    a.set_option("send_buffer_size", 4096)


# Where the transfer blocks: (head, file size, tail).
PHASES = {
    "head": (b"h" * MiB, 1000, b"t"),
    "file": (b"h" * 100, 2 * MiB, b"t" * 100),
    "tail": (b"", 1000, b"t" * MiB),
}


@pytest.mark.parametrize("how", ["cancel", "close", "outer"])
@pytest.mark.parametrize("phase", list(PHASES))
async def test_Socket_send_file_aborted_reports_bytes_transferred(
    data_file: BinaryIO, content: bytes, mode: str, how: str, phase: str
) -> None:
    head, size, tail = PHASES[phase]
    expected = head + content[:size] + tail
    a, b = await socket_pair()
    async with a, b:
        _small_send_buffer(a)
        caught: list[BaseException] = []
        scope = trio.CancelScope()

        async def sender() -> None:
            with scope:
                try:
                    await a.send_file(data_file, 0, size, head, tail)
                except BaseException as exc:
                    caught.append(exc)
                    if isinstance(exc, trio.Cancelled):
                        raise

        fds = open_fds()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await wait_all_tasks_blocked()
            assert not caught
            if how == "cancel":
                a.cancel()
            elif how == "close":
                a.close()
            else:
                scope.cancel()
        assert len(caught) == 1
        exc = caught[0]
        if how == "outer":
            assert isinstance(exc, trio.Cancelled)
        else:
            assert isinstance(exc, OperationAborted)
        sent: int = getattr(exc, "bytes_transferred")  # noqa: B009 - not typed
        # It blocked in the phase under test.
        start = {"head": 0, "file": len(head), "tail": len(head) + size}[phase]
        end = start + {"head": len(head), "file": size, "tail": len(tail)}[phase]
        assert start < sent < end
        if a.is_open:
            a.shutdown("send")
        assert open_fds() == fds - (how == "close")
        received = bytearray()
        await read_to_eof(b, received)
        assert len(received) == sent
        assert received == expected[:sent]


async def test_Socket_send_file_cancel_keeps_the_socket_usable(
    data_file: BinaryIO, content: bytes, mode: str
) -> None:
    a, b = await socket_pair()
    async with a, b:
        _small_send_buffer(a)
        caught: list[BaseException] = []

        async def sender() -> None:
            try:
                await a.send_file(data_file, 0, MiB)
            except OperationAborted as exc:
                caught.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await wait_all_tasks_blocked()
            a.cancel()
        sent = caught[0].bytes_transferred  # type: ignore[attr-defined]
        # Carry on from where it stopped: the peer sees the whole range.
        async with trio.open_nursery() as nursery:
            received = bytearray()
            nursery.start_soon(read_to_eof, b, received)
            assert await a.send_file(data_file, sent, MiB - sent) == MiB - sent
            a.shutdown("send")
        assert received == content[:MiB]


# -- no buffer stays exported (SPEC §7) ----------------------------------------------


@pytest.mark.parametrize("phase", ["head", "file", "tail"])
async def test_send_file_releases_head_and_tail_however_it_ends(
    data_file: BinaryIO, mode: str, phase: str
) -> None:
    a, b = await socket_pair()
    async with a, b:
        head = bytearray(MiB if phase == "head" else 100)
        tail = bytearray(MiB if phase == "tail" else 100)
        size = 2 * MiB if phase == "file" else 1000
        _small_send_buffer(a)

        def op() -> Any:
            return a.send_file(data_file, 0, size, head, tail)

        await cancelled_midway(op, head)
        assert_not_exported(tail)
        await aborted_midway(op, tail, a.cancel)
        assert_not_exported(head)
        await aborted_midway(op, head, a.close)
        assert_not_exported(tail)


async def test_send_file_bad_argument_releases_head(data_file: BinaryIO) -> None:
    a, b = await socket_pair()
    async with a, b:
        head = bytearray(8)
        tail: Any = "tail"
        await failing(lambda: a.send_file(data_file, 0, 1, head, tail), head, TypeError)
        await failing(lambda: a.send_file(data_file, -1, 1, head), head, ValueError)
        b.set_option("linger", True, 0)
        b.close()  # a reset
        await failing(lambda: a.send_file(data_file, 0, 10, head), head, OSError)


async def test_send_file_after_a_reset_seen_by_a_read_raises_the_reset(
    data_file: BinaryIO, mode: str
) -> None:
    a, b = await socket_pair()
    async with a:
        b.set_option("linger", True, 0)
        b.close()
        await wait_all_tasks_blocked()
        with pytest.raises(ConnectionResetError):
            await a.read_some(bytearray(1))
        with pytest.raises(ConnectionResetError) as info:
            await a.send_file(data_file, 0, 1000)
        assert info.value.bytes_transferred == 0  # type: ignore[attr-defined]
