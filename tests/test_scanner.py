"""Tests for stream.Scanner (trio_emtcp/_scanner.py)."""

from __future__ import annotations

import errno
import importlib.util
import itertools
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

from trio_emtcp import EndOfFile, OperationAborted, RecordTooLong, socket_pair, stream
from trio_emtcp._util import Buffer
from trio_emtcp.ip.tcp import Socket
from trio_emtcp.stream import Scanner

from .helpers import (
    aborted_midway,
    assert_not_exported,
    cancelled_midway,
    examples,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Most tests here read CRLF-terminated records (HTTP, SMTP); the default
# separator is Emilua's current b"\n", so they say so.
CRLF = b"\r\n"


class ScriptedStream:
    """A fake stream whose ``read_some`` plays a script.

    Each item is a chunk of bytes (handed out over as many reads as the
    buffers offered need) or an exception to raise.  After the script,
    ``read_some`` raises ``EndOfFile`` -- or, with ``then="fail"``, fails
    the test, to prove that the scanner did not read again.
    """

    def __init__(self, *items: bytes | BaseException, then: str = "eof") -> None:
        self.items: list[bytes | BaseException] = list(items)
        self.then = then
        self.reads = 0
        self.eof_reads = 0
        self.sizes: list[int] = []
        self.delivered = 0

    def feed(self, *items: bytes | BaseException) -> None:
        self.items.extend(items)

    async def read_some(self, buf: Buffer, /) -> int:
        await trio.lowlevel.checkpoint()
        self.reads += 1
        mv = memoryview(buf).cast("B")
        self.sizes.append(mv.nbytes)
        if not self.items:
            if self.then == "fail":
                raise AssertionError("read past the end of the script")
            self.eof_reads += 1
            raise EndOfFile()
        item = self.items[0]
        if isinstance(item, BaseException):
            del self.items[0]
            raise item
        n = min(len(item), mv.nbytes)
        mv[:n] = item[:n]
        if n < len(item):
            self.items[0] = item[n:]
        else:
            del self.items[0]
        self.delivered += n
        return n


class BlockingStream:
    """A fake stream that hands out fed chunks and waits when there are none."""

    def __init__(self) -> None:
        self.send_channel, self.receive_channel = trio.open_memory_channel[bytes](10)

    async def read_some(self, buf: Buffer, /) -> int:
        chunk = await self.receive_channel.receive()
        memoryview(buf).cast("B")[: len(chunk)] = chunk
        return len(chunk)


def terminator(scanner: Scanner[Any]) -> bytes | None:
    """``record_terminator``, read through a call so mypy does not narrow it."""
    return scanner.record_terminator


async def read_all_records(
    scanner: Scanner[Any],
) -> list[tuple[Any, bytes | None]]:
    """Every remaining record with its terminator, up to EndOfFile."""
    out = []
    async for record in scanner:
        out.append((record, scanner.record_terminator))
    return out


EMILUA_INPUT = b"line1\r\nline2\r\nfield a  b\r\npartial"


# -- Emilua's scenario -------------------------------------------------------


async def test_Scanner_emilua_scenario() -> None:
    fake = ScriptedStream(EMILUA_INPUT)
    scanner = Scanner(fake, CRLF, field_separator=b" ")
    assert scanner.record_number == 0
    assert terminator(scanner) is None
    assert await scanner.get_line() == [b"line1"]
    assert terminator(scanner) == b"\r\n"
    assert await scanner.get_line() == [b"line2"]
    assert await scanner.get_line() == [b"field", b"a", b"", b"b"]
    assert scanner.buffered_line() == b"field a  b"
    assert scanner.record_number == 3
    assert await scanner.get_line() == [b"partial"]
    assert terminator(scanner) == b""
    assert scanner.record_number == 4
    for _ in range(3):
        with assert_checkpoints(), pytest.raises(EndOfFile, match=r"^end of file$"):
            await scanner.get_line()
        assert terminator(scanner) is None
        assert scanner.buffered_line() == b""
    # The end was read once; later calls do not ask the stream again.
    assert fake.eof_reads == 1
    assert scanner.record_number == 4


async def test_Scanner_plain_records_without_fields() -> None:
    scanner = Scanner(ScriptedStream(EMILUA_INPUT), CRLF)
    assert await read_all_records(scanner) == [
        (b"line1", b"\r\n"),
        (b"line2", b"\r\n"),
        (b"field a  b", b"\r\n"),
        (b"partial", b""),
    ]


async def test_Scanner_stream_ending_with_a_separator_has_no_empty_final_record() -> (
    None
):
    scanner = Scanner(ScriptedStream(b"a\r\nb\r\n"), CRLF)
    assert await read_all_records(scanner) == [(b"a", b"\r\n"), (b"b", b"\r\n")]


async def test_Scanner_empty_stream_raises_end_of_file() -> None:
    scanner = Scanner(ScriptedStream(), CRLF)
    with pytest.raises(EndOfFile):
        await scanner.get_line()
    assert scanner.record_number == 0


async def test_Scanner_empty_records() -> None:
    data = b"\r\n\r\nx\r\n\r\n"
    scanner = Scanner(ScriptedStream(data), CRLF)
    assert await read_all_records(scanner) == [
        (b"", b"\r\n"),
        (b"", b"\r\n"),
        (b"x", b"\r\n"),
        (b"", b"\r\n"),
    ]
    fields = Scanner(ScriptedStream(data), CRLF, field_separator=b",")
    assert [r for r, _ in await read_all_records(fields)] == [[], [], [b"x"], []]


async def test_Scanner_custom_plain_separator() -> None:
    scanner = Scanner(ScriptedStream(b"a;;b;", b"c"), b";;")
    assert await read_all_records(scanner) == [(b"a", b";;"), (b"b;c", b"")]


async def test_Scanner_separator_split_across_reads() -> None:
    fake = ScriptedStream(b"abc\r", b"\ndef\r", b"\n")
    scanner = Scanner(fake, CRLF)
    assert await scanner.get_line() == b"abc"
    assert await scanner.get_line() == b"def"
    assert fake.reads == 3


async def test_Scanner_long_separator_split_over_many_reads() -> None:
    fake = ScriptedStream(b"x-", b"-", b"-", b"y---", b"--z")
    scanner = Scanner(fake, b"---")
    assert await read_all_records(scanner) == [
        (b"x", b"---"),
        (b"y", b"---"),
        (b"--z", b""),
    ]


async def test_Scanner_returns_buffered_records_without_reading() -> None:
    fake = ScriptedStream(b"a\r\nb\r\nc\r\n", then="fail")
    scanner = Scanner(fake, CRLF)
    assert [await scanner.get_line() for _ in range(3)] == [b"a", b"b", b"c"]
    assert fake.reads == 1


async def test_Scanner_record_longer_than_buffer_size_hint_grows_the_buffer() -> None:
    record = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"") * 40
    fake = ScriptedStream(*[record[i : i + 100] for i in range(0, len(record), 100)])
    fake.feed(b"\r\nnext\r\n")
    scanner = Scanner(fake, CRLF, buffer_size_hint=16)
    assert await scanner.get_line() == record
    assert await scanner.get_line() == b"next"
    # The first read was offered the hinted size, the buffer doubled later.
    assert fake.sizes[0] == 16
    assert max(fake.sizes) > 16


async def test_Scanner_reads_into_the_free_space_only() -> None:
    fake = ScriptedStream(b"ab\r\ncd", b"\r\n")
    scanner = Scanner(fake, CRLF, buffer_size_hint=8)
    assert await scanner.get_line() == b"ab"
    assert await scanner.get_line() == b"cd"
    # The second read got what was left after moving "cd" to the front.
    assert fake.sizes == [8, 6]


# -- regex separators ---------------------------------------------------------

CRLF_OR_LF = re.compile(rb"\r\n|\n")
ANY_NEWLINE = re.compile(rb"\r\n|\r|\n")
NEWLINES = re.compile(rb"\n+")


@pytest.mark.parametrize(
    ("pattern", "chunks", "expected"),
    [
        (CRLF_OR_LF, [b"a\r\nb\nc"], [(b"a", b"\r\n"), (b"b", b"\n"), (b"c", b"")]),
        (CRLF_OR_LF, [b"a\r", b"\nb\r", b"x\n"], [(b"a", b"\r\n"), (b"b\rx", b"\n")]),
        (ANY_NEWLINE, [b"a\r", b"\nb"], [(b"a", b"\r\n"), (b"b", b"")]),
        (
            ANY_NEWLINE,
            [b"a\r", b"b\rc\n"],
            [(b"a", b"\r"), (b"b", b"\r"), (b"c", b"\n")],
        ),
        # At the end of the stream a trailing \r is a complete separator.
        (ANY_NEWLINE, [b"a\r"], [(b"a", b"\r")]),
        (NEWLINES, [b"a\n", b"\n", b"\nb\n"], [(b"a", b"\n\n\n"), (b"b", b"\n")]),
        (
            re.compile(rb"[;,]"),
            [b"a;b,,c"],
            [(b"a", b";"), (b"b", b","), (b"", b","), (b"c", b"")],
        ),
    ],
)
async def test_Scanner_regex_separators(
    pattern: re.Pattern[bytes],
    chunks: list[bytes],
    expected: list[tuple[bytes, bytes]],
) -> None:
    scanner = Scanner(ScriptedStream(*chunks), pattern)
    assert await read_all_records(scanner) == expected


@pytest.mark.parametrize("line", [b"GET\r\n", b"GET\n"])
async def test_Scanner_regex_match_that_cannot_grow_is_returned_at_once(
    line: bytes,
) -> None:
    # An interactive peer sends one line and waits for the answer: the
    # scanner must not wait for more data to be sure the line ended.
    fake = ScriptedStream(line, then="fail")
    scanner = Scanner(fake, CRLF_OR_LF)
    assert await scanner.get_line() == b"GET"
    assert scanner.record_terminator == line[3:]
    # Again from the cache of final terminators.
    fake.feed(line)
    assert await scanner.get_line() == b"GET"
    assert fake.reads == 2


@pytest.mark.parametrize("hint", [4, 5, 6])
async def test_Scanner_regex_match_filling_the_buffer_is_returned_at_once(
    hint: int,
) -> None:
    # "abc\n" fills (or, after the first record, spans the end of) a small
    # buffer; deciding that "\n" is final needs one byte of free space.
    fake = ScriptedStream(b"abc\n", then="fail")
    scanner = Scanner(fake, CRLF_OR_LF, buffer_size_hint=hint)
    assert await scanner.get_line() == b"abc"
    fake.feed(b"d\nef\n")
    assert await scanner.get_line() == b"d"
    assert await scanner.get_line() == b"ef"


@pytest.mark.parametrize(
    ("pattern", "first"),
    [(ANY_NEWLINE, b"a\r"), (NEWLINES, b"a\n"), (re.compile(rb"\r\n|\r"), b"a\r")],
)
async def test_Scanner_regex_match_that_could_grow_waits_for_the_next_byte(
    pattern: re.Pattern[bytes], first: bytes
) -> None:
    fake = BlockingStream()
    scanner = Scanner(fake, pattern)
    result: list[bytes] = []

    async def reader() -> None:
        result.append(await scanner.get_line())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await fake.send_channel.send(first)
        await wait_all_tasks_blocked()
        assert result == []  # still waiting: the next byte decides
        await fake.send_channel.send(b"z")
    assert result == [b"a"]
    assert scanner.record_terminator == first[1:]
    assert scanner.buffer() == b"z"


async def test_Scanner_regex_terminator_is_the_matched_bytes() -> None:
    scanner = Scanner(ScriptedStream(b"k = v;; x"), re.compile(rb"\s*;+\s*"))
    assert await scanner.get_line() == b"k = v"
    assert scanner.record_terminator == b";; "
    assert isinstance(scanner.record_terminator, bytes)


async def test_Scanner_regex_matching_the_empty_string_is_refused_when_found() -> None:
    # (?=a) cannot match b"" so the constructor cannot tell; get_line can.
    scanner = Scanner(ScriptedStream(b"xa\n"), re.compile(rb"\n|(?=a)"))
    with (
        assert_checkpoints(),
        pytest.raises(
            ValueError, match=r"^record_separator: must not match the empty string$"
        ),
    ):
        await scanner.get_line()


# -- trimming and fields ------------------------------------------------------


async def test_Scanner_trim_record_true_strips_awk_whitespace() -> None:
    scanner = Scanner(
        ScriptedStream(b" \t a b \v\f\r\r\n\t\r\n"), CRLF, trim_record=True
    )
    assert await scanner.get_line() == b"a b"
    assert scanner.buffered_line() == b" \t a b \v\f\r"  # $0 is as read
    assert await scanner.get_line() == b""


async def test_Scanner_trim_record_bytes_strips_those_characters() -> None:
    scanner = Scanner(ScriptedStream(b"--x- y-\r\n"), CRLF, trim_record=b"-")
    assert await scanner.get_line() == b"x- y"
    scanner = Scanner(ScriptedStream(b" x \r\n"), CRLF, trim_record=b"")
    assert await scanner.get_line() == b" x "


async def test_Scanner_trim_happens_before_splitting() -> None:
    scanner = Scanner(
        ScriptedStream(b"  a,b  \r\n   \r\n"),
        CRLF,
        trim_record=True,
        field_separator=b",",
    )
    assert await scanner.get_line() == [b"a", b"b"]
    assert await scanner.get_line() == []


async def test_Scanner_field_separator_regex_ignores_groups() -> None:
    scanner = Scanner(
        ScriptedStream(b"a, b,c\r\n"), CRLF, field_separator=re.compile(rb"(,) ?")
    )
    assert await scanner.get_line() == [b"a", b"b", b"c"]


async def test_Scanner_field_separator_regex_keeps_edge_fields() -> None:
    scanner = Scanner(
        ScriptedStream(b",a,\r\n"), CRLF, field_separator=re.compile(rb",")
    )
    assert await scanner.get_line() == [b"", b"a", b""]


@pytest.mark.parametrize(
    ("pattern", "record", "fields"),
    [
        (rb"[^,]*", b"a,,b", [b"a", b"", b"b"]),
        (rb"[^,]*", b",a", [b"", b"a"]),
        (rb"\d+", b"a1b22c", [b"1", b"22"]),
        (rb"\d+", b"abc", []),
        (rb'"[^"]*"|[^,]+', b'x,"y,z",w', [b"x", b'"y,z"', b"w"]),
    ],
)
async def test_Scanner_field_pattern(
    pattern: bytes, record: bytes, fields: list[bytes]
) -> None:
    scanner = Scanner(
        ScriptedStream(record + b"\r\n"), CRLF, field_pattern=re.compile(pattern)
    )
    assert await scanner.get_line() == fields


async def test_Scanner_callable_field_separator() -> None:
    calls: list[bytes] = []

    def split(record: bytes) -> list[bytes]:
        calls.append(record)
        return record.split(b"=", 1)

    data = b" a=b=c \r\n\r\nlast=1"
    scanner = Scanner(
        ScriptedStream(data), CRLF, trim_record=True, field_separator=split
    )
    assert [r for r, _ in await read_all_records(scanner)] == [
        [b"a", b"b=c"],
        [],
        [b"last", b"1"],
    ]
    # Called with the trimmed record, also for the final one (unlike
    # Emilua), never for an empty record.
    assert calls == [b"a=b=c", b"last=1"]


async def test_Scanner_with_awk_defaults() -> None:
    data = b"  hello   world \t\n\n\tfoo\r\n x"
    scanner = Scanner.with_awk_defaults(ScriptedStream(data))
    assert await scanner.get_line() == [b"hello", b"world"]
    assert scanner.buffered_line() == b"  hello   world \t"
    assert scanner.record_terminator == b"\n"
    assert await scanner.get_line() == []
    assert await scanner.get_line() == [b"foo"]
    assert await scanner.get_line() == [b"x"]
    with pytest.raises(EndOfFile):
        await scanner.get_line()


# -- max_record_size ----------------------------------------------------------


def _too_long_pattern(limit: int) -> str:
    prefix = re.escape(f"[Errno {errno.EMSGSIZE}] ")
    return rf"^{prefix}record exceeds max_record_size \({limit} bytes\)$"


async def test_Scanner_record_with_terminator_up_to_the_limit_fits() -> None:
    scanner = Scanner(
        ScriptedStream(b"01234567\r\n", b"0123456789"), CRLF, max_record_size=10
    )
    assert await scanner.get_line() == b"01234567"
    # The final record has no terminator: 10 bytes fit.
    assert await scanner.get_line() == b"0123456789"


@pytest.mark.parametrize(
    ("separator", "data"),
    [
        (b"\r\n", b"012345678\r\nrest\r\n"),  # 9 + 2 > 10
        (b"\r\n", b"01234567890\r\n"),
        (b"\r\n", b"0123456789x"),  # the final record is 11 bytes
        (CRLF_OR_LF, b"0123456789\nrest\n"),
        (NEWLINES, b"012345678\n\n"),
        (CRLF_OR_LF, b"0123456789x"),
    ],
)
async def test_Scanner_record_over_the_limit_raises_emsgsize(
    separator: bytes | re.Pattern[bytes], data: bytes
) -> None:
    fake = ScriptedStream(*[data[i : i + 3] for i in range(0, len(data), 3)])
    scanner = Scanner(fake, separator, max_record_size=10)
    with pytest.raises(RecordTooLong, match=_too_long_pattern(10)) as exc_info:
        await scanner.get_line()
    assert exc_info.value.errno == errno.EMSGSIZE
    assert type(exc_info.value) is RecordTooLong
    # The data stays buffered, so the error comes back, now from the buffer.
    with (
        assert_checkpoints(),
        pytest.raises(RecordTooLong, match=_too_long_pattern(10)) as again,
    ):
        await scanner.get_line()
    assert again.value is not exc_info.value  # a fresh exception each time
    assert scanner.record_number == 0


async def test_RecordTooLong_is_the_OSError_EMSGSIZE_callers_already_catch() -> None:
    # Code written before RecordTooLong existed caught OSError and looked at
    # the errno (and, at worst, the text): all three still hold.
    assert issubclass(RecordTooLong, OSError)
    assert RecordTooLong.__module__ == "trio_emtcp"  # its public home
    assert stream.RecordTooLong is RecordTooLong
    scanner = Scanner(ScriptedStream(b"x" * 11), max_record_size=10)
    try:
        await scanner.get_line()
    except OSError as exc:
        assert type(exc) is RecordTooLong
        assert exc.errno == errno.EMSGSIZE
        assert exc.strerror == "record exceeds max_record_size (10 bytes)"
        assert str(exc) == (
            f"[Errno {errno.EMSGSIZE}] record exceeds max_record_size (10 bytes)"
        )
    else:  # pragma: no cover - the assertion's message
        raise AssertionError("no error")


async def test_Scanner_record_over_the_limit_is_refused_without_reading_it_all() -> (
    None
):
    # A peer that never sends a separator cannot make us buffer without end.
    fake = ScriptedStream(*[b"x" * 1000] * 200, then="fail")
    scanner = Scanner(fake, CRLF)
    with pytest.raises(RecordTooLong, match=_too_long_pattern(65536)):
        await scanner.get_line()
    # It stopped at the limit (plus the byte that proves it is exceeded).
    assert fake.delivered == 65536 + 1
    assert max(fake.sizes) <= 65536 + 1


async def test_Scanner_earlier_records_come_back_before_the_error() -> None:
    scanner = Scanner(ScriptedStream(b"ok\r\n" + b"y" * 20), CRLF, max_record_size=10)
    assert await scanner.get_line() == b"ok"
    with pytest.raises(RecordTooLong, match=_too_long_pattern(10)):
        await scanner.get_line()


# -- buffer(), set_buffer(), remove_line() ------------------------------------


async def test_Scanner_buffer_is_what_was_read_ahead() -> None:
    scanner = Scanner(ScriptedStream(b"GET / HTTP/1.0\r\n\r\nbody bytes"), CRLF)
    assert scanner.buffer() == b""
    assert await scanner.get_line() == b"GET / HTTP/1.0"
    assert scanner.buffer() == b"\r\nbody bytes"
    assert await scanner.get_line() == b""
    assert scanner.buffer() == b"body bytes"
    assert scanner.buffered_line() == b""
    assert scanner.record_terminator == b"\r\n"


async def test_Scanner_remove_line_drops_the_current_record() -> None:
    scanner = Scanner(ScriptedStream(b"a\r\nb\r\n"), CRLF)
    assert await scanner.get_line() == b"a"
    assert scanner.buffered_line() == b"a"
    scanner.remove_line()
    assert scanner.buffered_line() == b""
    assert scanner.record_terminator is None
    assert scanner.buffer() == b"b\r\n"
    assert scanner.record_number == 1
    assert await scanner.get_line() == b"b"


async def test_Scanner_set_buffer_adopts_data() -> None:
    fake = ScriptedStream(b"\r\nfrom the stream\r\n")
    scanner = Scanner(fake, CRLF, buffer_size_hint=4)
    scanner.set_buffer(bytearray(b"pushed back\r\npartial"))  # longer than the buffer
    assert scanner.buffer() == b"pushed back\r\npartial"
    assert fake.reads == 0
    assert await scanner.get_line() == b"pushed back"
    assert await scanner.get_line() == b"partial"
    assert await scanner.get_line() == b"from the stream"
    assert scanner.record_number == 3
    scanner.set_buffer(b"x\r\n")
    assert scanner.record_terminator is None
    assert scanner.buffered_line() == b""
    assert scanner.record_number == 3
    assert await scanner.get_line() == b"x"


async def test_Scanner_set_buffer_after_end_of_file() -> None:
    fake = ScriptedStream(b"a")
    scanner = Scanner(fake, CRLF)
    assert await scanner.get_line() == b"a"
    with pytest.raises(EndOfFile):
        await scanner.get_line()
    scanner.set_buffer(b"b\r\nc")
    assert await read_all_records(scanner) == [(b"b", b"\r\n"), (b"c", b"")]
    assert fake.eof_reads == 1


async def test_Scanner_set_buffer_refuses_str() -> None:
    scanner = Scanner(ScriptedStream(), CRLF)
    with pytest.raises(
        TypeError, match=r"^data: expected a bytes-like object, got str; use bytes$"
    ):
        scanner.set_buffer("x")  # type: ignore[arg-type]


# -- errors from the stream, cancellation -------------------------------------


async def test_Scanner_stream_errors_propagate_and_keep_the_data() -> None:
    reset = ConnectionResetError(errno.ECONNRESET, "reset")
    fake = ScriptedStream(b"ab", reset, b"c\r\n")
    scanner = Scanner(fake, CRLF)
    with pytest.raises(ConnectionResetError) as exc_info:
        await scanner.get_line()
    assert exc_info.value is reset
    assert scanner.buffer() == b"ab"
    assert await scanner.get_line() == b"abc"


async def test_Scanner_read_some_returning_zero_is_the_end() -> None:
    class ZeroAtEnd:
        def __init__(self) -> None:
            self.chunks = [b"a\r\nb"]

        async def read_some(self, buf: Buffer, /) -> int:
            await trio.lowlevel.checkpoint()
            if not self.chunks:
                return 0
            chunk = self.chunks.pop()
            memoryview(buf).cast("B")[: len(chunk)] = chunk
            return len(chunk)

    scanner = Scanner(ZeroAtEnd(), CRLF)
    assert await read_all_records(scanner) == [(b"a", b"\r\n"), (b"b", b"")]


@pytest.mark.parametrize("n", [-1, 9])
async def test_Scanner_read_some_returning_a_bad_count_raises(n: int) -> None:
    class Liar:
        async def read_some(self, buf: Buffer, /) -> int:
            await trio.lowlevel.checkpoint()
            return n

    scanner = Scanner(Liar(), CRLF, buffer_size_hint=8)
    with pytest.raises(
        ValueError, match=rf"^stream: read_some returned {n} for a 8-byte buffer$"
    ):
        await scanner.get_line()


async def test_Scanner_socket_cancel_aborts_get_line_and_loses_nothing(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    scanner = Scanner(b, CRLF)
    await stream.write_all(a, b"abc\r")
    async with trio.open_nursery() as nursery:

        async def reader() -> None:
            with pytest.raises(OperationAborted):
                await scanner.get_line()

        nursery.start_soon(reader)
        await wait_all_tasks_blocked()
        b.cancel()
    assert scanner.buffer() == b"abc\r"
    await stream.write_all(a, b"\ndef\r\n")
    assert await scanner.get_line() == b"abc"
    assert await scanner.get_line() == b"def"


async def test_Scanner_trio_cancelled_mid_record_loses_nothing(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    scanner = Scanner(b, CRLF)
    await stream.write_all(a, b"ab")
    with trio.CancelScope() as cs:

        async def cancel_when_blocked() -> None:
            await wait_all_tasks_blocked()
            cs.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_when_blocked)
            await scanner.get_line()
    assert cs.cancelled_caught
    assert scanner.buffer() == b"ab"
    await stream.write_all(a, b"c\r\n")
    assert await scanner.get_line() == b"abc"


async def test_Scanner_cancelled_before_a_buffered_record_keeps_it() -> None:
    scanner = Scanner(ScriptedStream(b"a\r\nb\r\n"), CRLF)
    assert await scanner.get_line() == b"a"
    with trio.CancelScope() as cs:
        cs.cancel()
        await scanner.get_line()
    assert cs.cancelled_caught
    assert scanner.record_number == 1
    assert await scanner.get_line() == b"b"


async def test_Scanner_get_line_is_a_checkpoint_on_every_path(
    pair: tuple[Socket, Socket],
) -> None:
    a, b = pair
    scanner = Scanner(b, CRLF)
    await stream.write_all(a, b"one\r\ntwo\r\nthree")
    with assert_checkpoints():
        assert await scanner.get_line() == b"one"  # read_some
    with assert_checkpoints():
        assert await scanner.get_line() == b"two"  # from the buffer
    a.shutdown("send")
    with assert_checkpoints():
        assert await scanner.get_line() == b"three"  # the end of the stream
    for _ in range(2):
        with assert_checkpoints(), pytest.raises(EndOfFile):
            await scanner.get_line()  # remembered, not read again


async def test_Scanner_over_a_socket_pair() -> None:
    a, b = await socket_pair()
    async with a, b:
        scanner = Scanner(b, CRLF, field_separator=b"=")
        async with trio.open_nursery() as nursery:

            async def writer() -> None:
                for piece in [b"k1=v1\r", b"\nk2=", b"v2\r\nk3", b"=v3\r\n", b"tail"]:
                    await stream.write_all(a, piece)
                    await wait_all_tasks_blocked()
                a.shutdown("send")

            nursery.start_soon(writer)
            records = await read_all_records(scanner)
        assert records == [
            ([b"k1", b"v1"], b"\r\n"),
            ([b"k2", b"v2"], b"\r\n"),
            ([b"k3", b"v3"], b"\r\n"),
            ([b"tail"], b""),
        ]
        with pytest.raises(EndOfFile):
            await scanner.get_line()


async def test_Scanner_concurrent_get_line_is_busy() -> None:
    fake = BlockingStream()
    scanner = Scanner(fake, CRLF)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scanner.get_line)
        await wait_all_tasks_blocked()
        with (
            assert_checkpoints(),
            pytest.raises(
                trio.BusyResourceError, match=r"^another task is in get_line\(\)$"
            ),
        ):
            await scanner.get_line()
        with pytest.raises(trio.BusyResourceError):
            scanner.set_buffer(b"x")
        await fake.send_channel.send(b"x\r\n")
    assert scanner.buffered_line() == b"x"
    # Free again once the first call is done.
    await fake.send_channel.send(b"y\r\n")
    assert await scanner.get_line() == b"y"


# -- arguments ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "pattern"),
    [
        (
            (object(),),
            {},
            TypeError,
            r"^stream: expected an object with read_some\(\), got object$",
        ),
        (
            (ScriptedStream(), b""),
            {},
            ValueError,
            r"^record_separator: must not be empty$",
        ),
        (
            (ScriptedStream(), "\r\n"),
            {},
            TypeError,
            r"^record_separator: expected bytes or a compiled bytes regex, got str; "
            r"use bytes$",
        ),
        (
            (ScriptedStream(), 10),
            {},
            TypeError,
            r"^record_separator: expected bytes or a compiled bytes regex, got int$",
        ),
        (
            (ScriptedStream(), re.compile("\n")),
            {},
            TypeError,
            r"^record_separator: expected a bytes regex, got a str regex; use bytes$",
        ),
        (
            (ScriptedStream(), re.compile(rb"\n*")),
            {},
            ValueError,
            r"^record_separator: must not match the empty string$",
        ),
        (
            (ScriptedStream(),),
            {"max_record_size": 0},
            ValueError,
            r"^max_record_size: must be in 1..9223372036854775807, got 0$",
        ),
        (
            (ScriptedStream(),),
            {"max_record_size": 1.5},
            TypeError,
            r"^max_record_size: expected an int, got float$",
        ),
        (
            (ScriptedStream(),),
            {"max_record_size": True},
            TypeError,
            r"^max_record_size: expected an int, got bool$",
        ),
        (
            (ScriptedStream(),),
            {"buffer_size_hint": -4},
            ValueError,
            r"^buffer_size_hint: must be in 1..2147483647, got -4$",
        ),
        (
            (ScriptedStream(),),
            {"buffer_size_hint": "4"},
            TypeError,
            r"^buffer_size_hint: expected an int, got str$",
        ),
        (
            (ScriptedStream(),),
            {"trim_record": " "},
            TypeError,
            r"^trim_record: expected a bool or bytes, got str; use bytes$",
        ),
        (
            (ScriptedStream(),),
            {"trim_record": 1},
            TypeError,
            r"^trim_record: expected a bool or bytes, got int$",
        ),
        (
            (ScriptedStream(),),
            {"field_separator": b""},
            ValueError,
            r"^field_separator: must not be empty$",
        ),
        (
            (ScriptedStream(),),
            {"field_separator": " "},
            TypeError,
            r"^field_separator: expected bytes, a compiled bytes regex or a callable, "
            r"got str; use bytes$",
        ),
        (
            (ScriptedStream(),),
            {"field_separator": re.compile(" ")},
            TypeError,
            r"^field_separator: expected a bytes regex, got a str regex; use bytes$",
        ),
        (
            (ScriptedStream(),),
            {"field_pattern": b"x"},
            TypeError,
            r"^field_pattern: expected a compiled bytes regex, got bytes$",
        ),
        (
            (ScriptedStream(),),
            {"field_pattern": re.compile("x")},
            TypeError,
            r"^field_pattern: expected a bytes regex, got a str regex; use bytes$",
        ),
        (
            (ScriptedStream(),),
            {"field_separator": b",", "field_pattern": re.compile(b"x")},
            ValueError,
            r"^field_pattern: cannot be combined with field_separator$",
        ),
    ],
)
def test_Scanner_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[Exception], pattern: str
) -> None:
    with pytest.raises(exc, match=pattern):
        Scanner(*args, **kwargs)


def test_Scanner_accepts_bytes_like_separators() -> None:
    scanner = Scanner(
        ScriptedStream(), bytearray(b"\n"), field_separator=memoryview(b",")
    )  # type: ignore[call-overload]
    assert repr(scanner) == "<trio_emtcp.stream.Scanner record_number=0 buffered=0>"


def test_Scanner_is_exported_from_stream() -> None:
    assert stream.Scanner is Scanner
    assert Scanner.__module__ == "trio_emtcp.stream"


# -- chunking never changes the records ---------------------------------------

ALPHABET = b"ab \r\n;"


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = bytes(draw(st.lists(st.sampled_from(ALPHABET), max_size=60)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    chunks = [data[i:j] for i, j in itertools.pairwise(bounds) if j > i]
    return data, chunks


def reference_records(
    data: bytes, separator: bytes | re.Pattern[bytes], limit: int
) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Split the complete data; also say whether a record broke the limit."""
    out: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(data):
        if isinstance(separator, bytes):
            i = data.find(separator, pos)
            span = None if i < 0 else (i, i + len(separator))
        else:
            m = separator.search(data, pos)
            span = None if m is None else m.span()
        if span is None:
            if len(data) - pos > limit:
                return out, True
            out.append((data[pos:], b""))
            break
        if span[1] - pos > limit:
            return out, True
        out.append((data[pos : span[0]], data[span[0] : span[1]]))
        pos = span[1]
    return out, False


SEPARATORS: list[bytes | re.Pattern[bytes]] = [
    b"\r\n",
    b"\n",
    b";;",
    b"a\r\n",
    CRLF_OR_LF,
    ANY_NEWLINE,
    NEWLINES,
    re.compile(rb"\r?\n"),
    re.compile(rb"[;\n]+"),
    re.compile(rb"\r\n|\r"),
]


async def _scan(
    chunks: Sequence[bytes],
    separator: bytes | re.Pattern[bytes],
    hint: int,
    limit: int,
) -> tuple[list[tuple[bytes, bytes | None]], bool]:
    scanner = Scanner(
        ScriptedStream(*chunks), separator, buffer_size_hint=hint, max_record_size=limit
    )
    out: list[tuple[bytes, bytes | None]] = []
    try:
        async for record in scanner:
            assert scanner.buffered_line() == record
            out.append((record, scanner.record_terminator))
    except RecordTooLong as exc:
        assert exc.errno == errno.EMSGSIZE
        return out, True
    return out, False


@settings(deadline=None, max_examples=examples(150))
@given(chunked(), st.sampled_from(SEPARATORS), st.integers(1, 9))
def test_Scanner_chunking_never_changes_the_records(
    sample: tuple[bytes, list[bytes]],
    separator: bytes | re.Pattern[bytes],
    hint: int,
) -> None:
    data, chunks = sample
    expected, _ = reference_records(data, separator, 1000)
    got = trio.run(_scan, chunks, separator, hint, 1000)
    assert got == (expected, False)


@settings(deadline=None, max_examples=examples(150))
@given(chunked(), st.sampled_from(SEPARATORS), st.integers(1, 9), st.integers(1, 8))
def test_Scanner_chunking_never_changes_where_the_limit_is_hit(
    sample: tuple[bytes, list[bytes]],
    separator: bytes | re.Pattern[bytes],
    hint: int,
    limit: int,
) -> None:
    data, chunks = sample
    got = trio.run(_scan, chunks, separator, hint, limit)
    assert got == reference_records(data, separator, limit)


# -- the example ----------------------------------------------------------------


def _load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


async def test_Scanner_example_line_protocol(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = _load_example("line_protocol")
    main: Callable[[], Any] = example.main
    await main()
    out = capsys.readouterr().out.splitlines()
    got = [
        line.removeprefix("client: got  ")
        for line in out
        if line.startswith("client: got")
    ]
    assert got == [
        "b'OK'",
        "b'OK'",
        "b'VALUE blue'",
        "b'KEYS colour,shape'",
        "b'OK'",
        "b'NOT_FOUND'",
        "b'ERROR unknown command FLY'",
        "b'BYE'",
    ]
    assert "server: line 2 [b'SET', b'shape = round'] -> b'OK'" in out
    assert "server: line 9 [b'QUIT'] -> b'BYE'" in out


# -- no buffer stays exported (SPEC §7) ----------------------------------------------


async def test_Scanner_keeps_no_view_of_the_callers_buffers() -> None:
    a, b = await socket_pair()
    async with a, b:
        separator = bytearray(b"\n")
        fields: Any = bytearray(b",")  # any bytes-like, though typed as bytes
        scanner = Scanner(a, record_separator=bytes(separator), field_separator=fields)
        assert_not_exported(separator)
        await b.write_some(b"x,y")  # a partial record: get_line blocks
        await cancelled_midway(scanner.get_line, bytearray())
        await aborted_midway(scanner.get_line, bytearray(), a.cancel)
        data = bytearray(b"p,q\nrest")
        scanner.set_buffer(data)
        assert_not_exported(data)
        assert await scanner.get_line() == [b"p", b"q"]
        # The scanner's own buffer is fine after the aborted reads too.
        await b.write_some(b"\n")
        assert await scanner.get_line() == [b"rest"]


# -- regex separators are searched in linear time (SPEC §10) ---------------------


class _CountingPattern:
    """A regex that counts the bytes each search looks at (white-box)."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.searched = 0

    def search(self, buf: bytearray, pos: int, endpos: int) -> re.Match[bytes] | None:
        self.searched += max(endpos - pos, 0)
        return self.pattern.search(buf, pos, endpos)

    def match(self, buf: bytearray, pos: int, endpos: int) -> re.Match[bytes] | None:
        return self.pattern.match(buf, pos, endpos)


async def _trickle_one_line(
    separator: re.Pattern[bytes], size: int, **kwargs: Any
) -> tuple[int, bytes]:
    """A ``size``-byte line that arrives one byte per read; bytes searched."""
    line = b"a" * size
    stream = ScriptedStream(*[bytes([c]) for c in line], b"\r\n")
    scanner = Scanner(stream, separator, max_record_size=size + 2, **kwargs)
    counting = _CountingPattern(separator)
    scanner._sep_re = counting  # type: ignore[assignment]
    record = await scanner.get_line()
    return counting.searched, record


@pytest.mark.parametrize(
    "pattern", [rb"\r\n", rb"\r\n|\n", rb"\r?\n", rb"(?:\r\n){1,2}"]
)
async def test_Scanner_bounded_regex_is_searched_once_per_byte(pattern: bytes) -> None:
    size = 16 * 1024
    searched, record = await _trickle_one_line(re.compile(pattern), size)
    assert record == b"a" * size
    # A few bytes per byte received (the last reach bytes again each time),
    # not the n**2 / 2 = 134 million of searching from the record's start.
    assert searched <= 8 * size


async def test_Scanner_unbounded_regex_rescans_as_documented() -> None:
    size = 2048
    searched, _ = await _trickle_one_line(re.compile(rb"\s*\r\n"), size)
    assert searched >= size * size // 2


async def test_Scanner_max_separator_size_bounds_a_pattern_python_cannot() -> None:
    size = 16 * 1024
    pattern = re.compile(rb"\r\n(?!x)")  # a lookaround: no bound from Python
    searched, record = await _trickle_one_line(pattern, size, max_separator_size=3)
    assert record == b"a" * size
    assert searched <= 8 * size


@pytest.mark.parametrize(
    ("value", "exc", "message"),
    [
        (0, ValueError, r"^max_separator_size: must be in 1..2147483647, got 0$"),
        ("3", TypeError, r"^max_separator_size: expected an int, got str$"),
    ],
)
def test_Scanner_max_separator_size_bad_values(
    value: Any, exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message):
        Scanner(ScriptedStream(), re.compile(rb"\n"), max_separator_size=value)


@settings(deadline=None, max_examples=examples(150))
@given(chunked(), st.sampled_from(SEPARATORS), st.integers(1, 9))
def test_Scanner_resumed_search_finds_the_same_records(
    sample: tuple[bytes, list[bytes]], separator: Any, hint: int
) -> None:
    # The resumed search (bounded patterns) against a reference that
    # searches from the record's start every time (no reach known).
    _, chunks = sample

    async def scan(reach_known: bool) -> list[Any]:
        scanner = Scanner(ScriptedStream(*chunks), separator, buffer_size_hint=hint)
        if not reach_known:
            scanner._sep_reach = None
        return await read_all_records(scanner)

    assert trio.run(scan, True) == trio.run(scan, False)


# -- Emilua's newest scanner: the default, attributes a program may change ---------


async def test_Scanner_default_separator_is_a_bare_newline() -> None:
    scanner = Scanner(ScriptedStream(b"a\nb\r\nc"))
    assert scanner.record_separator == b"\n"
    assert [r async for r in scanner] == [b"a", b"b\r", b"c"]


async def test_Scanner_attributes_read_back_what_was_given() -> None:
    split = re.compile(rb",")
    scanner = Scanner(
        ScriptedStream(),
        CRLF_OR_LF,
        max_record_size=100,
        trim_record=b"-",
        field_separator=split,
        buffer_size_hint=32,
        max_separator_size=2,
    )
    assert scanner.record_separator is CRLF_OR_LF
    assert scanner.max_record_size == 100
    assert scanner.trim_record == b"-"
    assert scanner.field_separator is split
    assert scanner.field_pattern is None
    assert scanner.buffer_size_hint == 32
    assert scanner.max_separator_size == 2
    plain = Scanner(ScriptedStream())
    assert plain.trim_record is False
    plain.trim_record = True
    assert plain.trim_record is True


async def test_Scanner_changes_take_effect_from_the_next_get_line() -> None:
    scanner: Any = Scanner(ScriptedStream(b"a,b;c,d;  e  \n", b"x;y\n"), b";")
    assert await scanner.get_line() == b"a,b"
    scanner.field_separator = b","
    assert await scanner.get_line() == [b"c", b"d"]
    scanner.field_separator = None
    scanner.trim_record = True
    scanner.record_separator = b"\n"
    assert await scanner.get_line() == b"e"
    scanner.trim_record = False
    scanner.field_pattern = re.compile(rb"[^;]+")
    assert await scanner.get_line() == [b"x", b"y"]
    assert scanner.record_number == 4


async def test_Scanner_a_new_separator_searches_the_unread_bytes_again() -> None:
    # The first search for b"\n" found none in b"ab;cd" and remembered that
    # these bytes cannot start it; a new separator starts over.
    a, b = await socket_pair()
    async with a, b:
        scanner = Scanner(b, b"\n")
        await stream.write_all(a, b"ab;cd")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scanner.get_line)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert scanner.buffer() == b"ab;cd"
        scanner.record_separator = b";"
        with trio.fail_after(5):  # searching past the ";" would wait here
            assert await scanner.get_line() == b"ab"
        await stream.write_all(a, b";ef\n")
        assert await scanner.get_line() == b"cd"
        scanner.record_separator = re.compile(rb"\n")
        assert await scanner.get_line() == b"ef"


async def test_Scanner_a_smaller_max_record_size_applies_to_buffered_data() -> None:
    scanner = Scanner(ScriptedStream(b"short\nmuch longer line\n"), b"\n")
    assert await scanner.get_line() == b"short"
    scanner.max_record_size = 5
    with pytest.raises(
        RecordTooLong, match=r"record exceeds max_record_size \(5 bytes\)"
    ):
        await scanner.get_line()
    scanner.max_record_size = 1000
    assert await scanner.get_line() == b"much longer line"


async def test_Scanner_buffer_size_hint_resizes_and_keeps_every_byte() -> None:
    scanner = Scanner(ScriptedStream(b"one\ntwo\nthree\n"), b"\n", buffer_size_hint=64)
    assert await scanner.get_line() == b"one"
    scanner.buffer_size_hint = 2  # smaller than the unread bytes: kept
    assert scanner.buffered_line() == b"one"
    assert scanner.buffer() == b"two\nthree\n"
    assert await scanner.get_line() == b"two"
    scanner.buffer_size_hint = 4096
    assert scanner.buffer_size_hint == 4096
    assert await scanner.get_line() == b"three"
    with pytest.raises(EndOfFile):
        await scanner.get_line()


@pytest.mark.parametrize(
    ("attribute", "value", "exc", "message"),
    [
        ("record_separator", b"", ValueError, r"^record_separator: must not be empty$"),
        ("record_separator", "\n", TypeError, r"^record_separator: expected bytes "),
        (
            "record_separator",
            re.compile(rb"x*"),
            ValueError,
            r"^record_separator: must not match the empty string$",
        ),
        ("max_record_size", 0, ValueError, r"^max_record_size: must be in 1\.\."),
        ("max_record_size", "9", TypeError, r"^max_record_size: expected an int"),
        ("buffer_size_hint", 2**31, ValueError, r"^buffer_size_hint: must be in 1\."),
        ("max_separator_size", 0, ValueError, r"^max_separator_size: must be in 1"),
        ("trim_record", "x", TypeError, r"^trim_record: expected a bool or bytes"),
        ("field_separator", b"", ValueError, r"^field_separator: must not be empty$"),
        ("field_pattern", b",", TypeError, r"^field_pattern: expected a compiled "),
    ],
)
async def test_Scanner_attributes_are_checked_as_the_constructor_checks(
    attribute: str, value: object, exc: type[Exception], message: str
) -> None:
    scanner = Scanner(ScriptedStream(b"a\n"), b"\n")
    with pytest.raises(exc, match=message):
        setattr(scanner, attribute, value)
    # Nothing changed: the scanner reads as before.
    assert await scanner.get_line() == b"a"


async def test_Scanner_field_separator_and_pattern_stay_exclusive() -> None:
    scanner = Scanner(ScriptedStream(b"a,b\n"), b"\n", field_separator=b",")
    with pytest.raises(ValueError, match=r"^field_pattern: cannot be combined"):
        scanner.field_pattern = re.compile(rb"\w")
    scanner.field_separator = None
    scanner.field_pattern = re.compile(rb"\w")
    assert await scanner.get_line() == [b"a", b"b"]


async def test_Scanner_attributes_cannot_change_during_get_line(pair: Any) -> None:
    scanner = Scanner(pair[1], b"\n")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scanner.get_line)
        await trio.testing.wait_all_tasks_blocked()
        for attribute, value in [
            ("record_separator", b";"),
            ("trim_record", True),
            ("max_record_size", 9),
            ("buffer_size_hint", 9),
            ("field_separator", b","),
            ("field_pattern", None),
            ("max_separator_size", 3),
        ]:
            with pytest.raises(trio.BusyResourceError):
                setattr(scanner, attribute, value)
        nursery.cancel_scope.cancel()


# -- combining strategies (examples/combining_strategies.py) ------------------------

combining = _load_example("combining_strategies")


@settings(deadline=None, max_examples=examples(60))
@given(
    st.lists(st.binary(max_size=40), min_size=1, max_size=4),
    st.lists(st.integers(1, 50), min_size=1, max_size=20),
)
async def test_combining_strategies_loses_no_byte(
    bodies: list[bytes], cuts: list[int]
) -> None:
    # The messages arrive in arbitrary pieces, each body after a header read
    # by lines, then read whole with read_all and the rest given back.
    data = b"".join(combining.message(body) for body in bodies)
    a, b = await socket_pair()
    async with a, b, trio.open_nursery() as nursery:

        async def send() -> None:
            pos = 0
            for cut in itertools.cycle(cuts):
                if pos >= len(data):
                    break
                await stream.write_all(a, data[pos : pos + cut])
                pos += cut
                await trio.lowlevel.checkpoint()
            a.shutdown("send")

        nursery.start_soon(send)
        scanner = combining.new_scanner(b)
        for body in bodies:
            headers, got = await combining.read_message(scanner, b)
            assert headers == [
                b"POST /notes HTTP/1.1",
                b"Content-Length: %d" % len(body),
            ]
            assert got == body
        with pytest.raises(EndOfFile):
            await scanner.get_line()


async def test_combining_strategies_example_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await combining.main()
    assert capsys.readouterr().out == (
        "POST /notes HTTP/1.1 -> b'first\\r\\nbody'\n"
        "POST /notes HTTP/1.1 -> b'second'\n"
    )
