"""``stream.Scanner``: an AWK-like record reader (Emilua's ``stream.scanner``)."""

from __future__ import annotations

import errno
import re
import sys
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, final, overload

import trio

from ._args import bytes_copy, int_arg, type_name
from ._driver import cancel_shielded_checkpoint, checkpoint_if_cancelled
from ._errors import EndOfFile, RecordTooLong
from ._relaxed import RELAXED, skip_schedule_point
from ._stream import ReadStream
from ._util import Buffer

__all__ = ["Scanner"]

# The record type: ``bytes``, or ``list[bytes]`` when records are split into
# fields.  The constructor's overloads pick it from its arguments, so a type
# checker knows what get_line() returns (SPEC §11).  The reference shows
# ``bytes | list[bytes]`` in its place (docs/conf.py, autodoc_type_aliases),
# not this private name.
_Record = TypeVar("_Record")

# Both sizes are Go's bufio.Scanner defaults, which Emilua borrowed: one page
# to start with covers the lines of every common text protocol, and 64 KiB
# bounds what a peer that never sends a separator can make us buffer.
DEFAULT_BUFFER_SIZE_HINT = 4096
DEFAULT_MAX_RECORD_SIZE = 64 * 1024

# What ``trim_record=True`` strips: AWK's (and Emilua's) whitespace set.
AWK_WHITESPACE = b" \f\n\r\t\v"
_AWK_FIELD_SEPARATOR = re.compile(rb"[ \f\n\r\t\v]+")

# Whether a separator match that ends at the end of the buffered data is
# final is decided by trying every possible next byte (256 regex matches);
# the answer depends only on the matched bytes, so it is remembered for the
# short terminators that interactive protocols end every line with.
_FINAL_CACHE_MAX_ENTRIES = 64
_FINAL_CACHE_MAX_KEY = 64


def _regex_arg(value: re.Pattern[Any], name: str) -> re.Pattern[bytes]:
    if not isinstance(value.pattern, bytes):
        raise TypeError(f"{name}: expected a bytes regex, got a str regex; use bytes")
    return value


def _max_record_arg(value: object) -> int:
    # A record lives in one bytearray: at most sys.maxsize bytes.
    return int_arg(value, "max_record_size", minimum=1, maximum=sys.maxsize)


def _hint_arg(value: object) -> int:
    # The buffer starts at the hint, and one read fills it: a C int.
    return int_arg(value, "buffer_size_hint", minimum=1)


def _separator_size_arg(value: object) -> int | None:
    if value is None:
        return None
    return int_arg(value, "max_separator_size", minimum=1)


def _separator_arg(
    value: object, given: int | None
) -> tuple[bytes, re.Pattern[bytes] | None, int | None]:
    """``record_separator`` (with ``max_separator_size``) as the scanner keeps it.

    Returns:
      ``(bytes separator, regex, reach)``: the bytes are empty for a regex;
      the reach (the most bytes a match can span) is ``None`` for bytes or
      an unbounded regex.

    Raises:
      TypeError, ValueError: as ``Scanner`` documents.
    """
    if isinstance(value, re.Pattern):
        pattern = _regex_arg(value, "record_separator")
        if pattern.search(b"") is not None:
            raise _empty_match()
        return b"", pattern, given if given is not None else _regex_reach(pattern)
    separator = bytes_copy(value, "record_separator", "bytes or a compiled bytes regex")
    if not separator:
        raise ValueError("record_separator: must not be empty")
    return separator, None, None


def _trim_arg(value: object) -> bytes | None:
    """``trim_record`` as the bytes to strip, or ``None``."""
    if value is True:
        return AWK_WHITESPACE
    if value is False:
        return None
    return bytes_copy(value, "trim_record", "a bool or bytes")


def _fields_arg(
    separator: object, pattern: object
) -> Callable[[bytes], list[bytes]] | None:
    """``field_separator``/``field_pattern`` as the function that splits a record.

    Raises:
      TypeError, ValueError: as ``Scanner`` documents.
    """
    if separator is not None and pattern is not None:
        raise ValueError("field_pattern: cannot be combined with field_separator")
    if isinstance(pattern, re.Pattern):
        fp_re = _regex_arg(pattern, "field_pattern")
        return lambda record: _pattern_fields(fp_re, record)
    if pattern is not None:
        raise TypeError(
            f"field_pattern: expected a compiled bytes regex, got {type_name(pattern)}"
        )
    if isinstance(separator, re.Pattern):
        fs_re = _regex_arg(separator, "field_separator")
        return lambda record: _regex_split(fs_re, record)
    if callable(separator):
        return cast("Callable[[bytes], list[bytes]]", separator)
    if separator is None:
        return None
    fs = bytes_copy(
        separator, "field_separator", "bytes, a compiled bytes regex or a callable"
    )
    if not fs:
        raise ValueError("field_separator: must not be empty")
    return lambda record: record.split(fs)


def _regex_split(pattern: re.Pattern[bytes], record: bytes) -> list[bytes]:
    # re.split would add the pattern's groups to the fields (and None for
    # those that did not take part); a field separator only separates.
    fields = []
    prev = 0
    for m in pattern.finditer(record):
        fields.append(record[prev : m.start()])
        prev = m.end()
    fields.append(record[prev:])
    return fields


def _pattern_fields(pattern: re.Pattern[bytes], record: bytes) -> list[bytes]:
    # gawk's FPAT rule: an empty match right after a non-empty one is not a
    # field, so ``[^,]*`` splits ``a,,b`` into ``a``, ``""``, ``b``.
    fields = []
    prev_end = -1
    for m in pattern.finditer(record):
        start, end = m.span()
        if start == end == prev_end:
            continue
        fields.append(m.group())
        prev_end = end if end > start else -1
    return fields


def _regex_reach(pattern: re.Pattern[bytes]) -> int | None:
    """The most bytes a match of ``pattern`` can span, where Python can tell.

    ``None`` for a pattern with no bound (``rb"\\n+"``) or with lookarounds,
    which look at bytes outside the match.  Read from the pattern's parse
    tree (the ``re`` module's own parser; its width computation is what
    ``re`` uses for lookbehinds).
    """
    if sys.version_info >= (3, 11):
        from re import _parser as parser  # type: ignore[attr-defined]
    else:  # pragma: no cover - Python 3.10
        import sre_parse as parser
    try:
        tree: Any = parser.parse(pattern.pattern, pattern.flags)  # type: ignore[arg-type]
        _, high = tree.getwidth()
    except Exception:  # pragma: no cover - a parser that changed
        return None
    lookaround = (parser.ASSERT, parser.ASSERT_NOT)

    def looks_around(node: Any) -> bool:
        # The tree: SubPattern objects (their items in .data) holding
        # (opcode, argument) pairs, with SubPatterns and lists nested in
        # the arguments.
        items = node.data if hasattr(node, "data") else node
        if not isinstance(items, (list, tuple)):
            return False
        for item in items:
            if isinstance(item, tuple) and item and item[0] in lookaround:
                return True
            if looks_around(item):
                return True
        return False

    if looks_around(tree) or high >= parser.MAXREPEAT - 1:
        return None
    return int(high)


def _too_long(limit: int) -> RecordTooLong:
    return RecordTooLong(
        errno.EMSGSIZE, f"record exceeds max_record_size ({limit} bytes)"
    )


def _empty_match() -> ValueError:
    return ValueError("record_separator: must not match the empty string")


@final
class Scanner(Generic[_Record]):
    """Read a stream record by record, like AWK (Emilua's ``stream.scanner``).

    A record is the data up to the next *record separator*; :meth:`get_line`
    returns it without the separator, optionally trimmed and split into
    fields.  Bytes in, bytes out.  ``async for record in scanner`` calls
    :meth:`get_line` until the end of the stream.

    Args:
      stream: any object with ``async read_some(buf) -> int`` that raises
        :class:`~trio_emtcp.EndOfFile` at the end (a
        :class:`~trio_emtcp.ip.tcp.Socket`, a pipe wrapper, a test fake); a
        ``read_some`` that returns 0 is taken as the end, too.  Scanner
        reads ahead: once records are read with it, other reads of the
        stream would miss what it buffered (see :meth:`buffer`).
      record_separator: a non-empty bytes-like object (one-dimensional,
        C-contiguous; copied, and searched as is) or a compiled bytes regex
        (see *Regex separators* below).  The default is ``b"\\n"``, as in
        Emilua since 0.7; HTTP, SMTP and other CRLF protocols want
        ``b"\\r\\n"``.
      max_record_size: the longest record, **counting its terminator**,
        that Scanner buffers (Emilua's and Go's rule): with the default
        limit and a ``b"\\r\\n"`` separator, a line of 65534 bytes plus
        ``b"\\r\\n"`` fits, one of 65535 does not.  The final record at
        the end of the stream has no terminator.  An ``int`` in
        1..``sys.maxsize``.  A longer record is a
        :class:`~trio_emtcp.RecordTooLong` from :meth:`get_line`.
      trim_record: ``False``; ``True`` to strip AWK's whitespace
        (``b" \\f\\n\\r\\t\\v"``) from both ends of every record; or a
        bytes-like object of the characters to strip.
      field_separator: ``None`` (:meth:`get_line` returns ``bytes``), or
        split every record into a ``list[bytes]``: on every occurrence of a
        ``bytes`` (keeping empty fields: ``b"field a  b"`` split on
        ``b" "`` is ``[b"field", b"a", b"", b"b"]``), on the matches of a
        compiled bytes regex (its groups are ignored), or by calling a
        function ``bytes -> list[bytes]``.
      field_pattern: instead of ``field_separator``, a compiled bytes regex
        whose matches are the fields (gawk's ``FPAT``; an empty match right
        after a non-empty one is skipped).  An empty record has no fields
        (``[]``) in every splitting mode; a function is not called for it.
      buffer_size_hint: the initial size of the buffer, which doubles as
        needed up to ``max_record_size`` (plus one byte, see below); an
        ``int`` in 1..2**31 - 1 (one read fills it).
      max_separator_size: for a regex ``record_separator``, the most bytes
        a match (with what its lookarounds look at) can span, where Python
        cannot tell from the pattern, an ``int`` in 1..2**31 - 1; ``None``
        to take it from the pattern.  See *Regex separators*.

    Raises:
      TypeError: an argument has the wrong type (``str`` where ``bytes``
        are needed, a ``str`` regex, a ``stream`` without ``read_some``).
      ValueError: an empty separator, a ``record_separator`` regex that
        matches the empty string, a size out of its range
        (``max_separator_size`` included), a released ``memoryview``, or
        both ``field_separator`` and ``field_pattern``.

    **Regex separators.**  The record ends at the leftmost match of the
    regex in the buffered data, and :attr:`record_terminator` is the matched
    bytes.  Python's :mod:`re` cannot tell whether more data would change a
    match, so when a match ends exactly where the buffered data ends,
    Scanner tries all 256 possible next bytes at the same place, and if one
    of them changes the match it reads more before deciding.  (The answer is
    cached per terminator; the trial needs one free byte, which is why the
    buffer may hold ``max_record_size + 1`` bytes.)  So ``rb"\\r\\n|\\n"``
    returns ``b"GET\\r\\n"`` and ``b"GET\\n"`` at once, ``rb"\\r\\n|\\r|\\n"``
    waits for the byte after a final ``b"\\r"`` (or the end of the stream),
    and ``rb"\\n+"`` for the byte after a run of newlines.

    The guarantee: with a ``bytes`` separator, records never depend on how
    the data was chunked into reads; with a regex, they do not either when
    whether the separator ends is decided by the one byte that follows it
    (single bytes and byte classes, alternatives such as
    ``rb"\\r\\n|\\r|\\n"`` and ``rb"\\r?\\n"``, repetitions such as
    ``rb"\\n+"``).  A separator that needs more look-ahead
    (``rb"\\r\\n\\r\\n|\\n"``, ``rb"\\s*\\n"``), anchors (``^``, ``$``,
    ``\\b``) and lookarounds see the edges of the buffer and may split
    differently depending on how the bytes arrived.  At the end of the
    stream the remaining data is searched as complete.  A regex that can
    match the empty string is refused (at construction when it matches
    ``b""``, otherwise by :meth:`get_line` when it does so).

    The search is linear in the bytes received when the separator's matches
    have a known maximum length: Python's own parser gives it for patterns
    without lookarounds (``rb"\\r\\n|\\n"``: 2, ``rb"\\r?\\n"``: 2,
    ``rb";{1,3}"``: 3), or ``max_separator_size`` says it.  After a search
    that found nothing, the next one starts where a match could still
    begin, so a long record that trickles in a byte at a time is searched
    about once per byte.  A pattern with no bound (``rb"\\n+"``,
    ``rb"\\s*\\n"``) or with lookarounds, and no ``max_separator_size``, is
    searched again from the record's start after every read: quadratic in
    the record's length when it arrives in small pieces.  A ``bytes``
    separator is always linear.

    Only one task may call :meth:`get_line` at a time (a second one gets
    :class:`trio.BusyResourceError`): the records would otherwise be torn.

    **Changing strategies.**  As in Emilua, the parsing options are also
    attributes (:attr:`record_separator`, :attr:`field_separator`,
    :attr:`field_pattern`, :attr:`trim_record`, :attr:`max_record_size`,
    :attr:`buffer_size_hint`, :attr:`max_separator_size`) that a program may
    change between :meth:`get_line` calls, and :meth:`buffer` and
    :meth:`set_buffer` hand the unread bytes to another reader and back:
    read a header line by line, its body with
    :func:`~trio_emtcp.stream.read_all` starting with :meth:`buffer`, and
    give what came after the body back with :meth:`set_buffer`
    (``examples/combining_strategies.py``).
    """

    __slots__ = (
        "_buf",
        "_busy",
        "_clean",
        "_end",
        "_eof",
        "_fields",
        "_final_cache",
        "_has_record",
        "_hint",
        "_max",
        "_rec_start",
        "_rec_stop",
        "_record_number",
        "_sep",
        "_sep_re",
        "_sep_reach",
        "_sep_size",
        "_split",
        "_start",
        "_stream",
        "_terminator",
        "_trim",
        "_trim_given",
        "_view",
    )

    @overload
    def __init__(
        self: Scanner[bytes],
        stream: ReadStream,
        record_separator: bytes | re.Pattern[bytes] = b"\n",
        *,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        trim_record: bool | bytes = False,
        field_separator: None = None,
        field_pattern: None = None,
        buffer_size_hint: int = DEFAULT_BUFFER_SIZE_HINT,
        max_separator_size: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Scanner[list[bytes]],
        stream: ReadStream,
        record_separator: bytes | re.Pattern[bytes] = b"\n",
        *,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        trim_record: bool | bytes = False,
        field_separator: bytes | re.Pattern[bytes] | Callable[[bytes], list[bytes]],
        field_pattern: None = None,
        buffer_size_hint: int = DEFAULT_BUFFER_SIZE_HINT,
        max_separator_size: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Scanner[list[bytes]],
        stream: ReadStream,
        record_separator: bytes | re.Pattern[bytes] = b"\n",
        *,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        trim_record: bool | bytes = False,
        field_separator: None = None,
        field_pattern: re.Pattern[bytes],
        buffer_size_hint: int = DEFAULT_BUFFER_SIZE_HINT,
        max_separator_size: int | None = None,
    ) -> None: ...

    def __init__(
        self,
        stream: ReadStream,
        record_separator: object = b"\n",
        *,
        max_record_size: object = DEFAULT_MAX_RECORD_SIZE,
        trim_record: object = False,
        field_separator: object = None,
        field_pattern: object = None,
        buffer_size_hint: object = DEFAULT_BUFFER_SIZE_HINT,
        max_separator_size: object = None,
    ) -> None:
        if not callable(getattr(stream, "read_some", None)):
            raise TypeError(
                f"stream: expected an object with read_some(), got {type_name(stream)}"
            )
        self._stream = stream

        self._sep_size = _separator_size_arg(max_separator_size)
        self._sep, self._sep_re, self._sep_reach = _separator_arg(
            record_separator, self._sep_size
        )
        self._max = _max_record_arg(max_record_size)
        hint = self._hint = _hint_arg(buffer_size_hint)
        self._trim_given = trim_record
        self._trim = _trim_arg(trim_record)
        self._fields = (field_separator, field_pattern)
        self._split = _fields_arg(field_separator, field_pattern)

        # The buffer never needs more than max_record_size + 1 bytes: the
        # longest record with its terminator, and the byte after it that
        # tells whether a regex terminator is complete.
        self._buf = bytearray(min(hint, self._max + 1))
        self._view = memoryview(self._buf)
        # Unread data is _buf[_start:_end]; the current record (returned by
        # the last get_line) is _buf[_rec_start:_rec_stop], before _start.
        self._start = 0
        self._end = 0
        self._rec_start = 0
        self._rec_stop = 0
        self._has_record = False
        # Bytes from _start on known not to begin a plain separator, so a
        # long record is not searched again from its start after each read.
        self._clean = 0
        self._eof = False
        self._busy = False
        self._record_number = 0
        self._terminator: bytes | None = None
        self._final_cache: dict[bytes, bool] = {}

    @classmethod
    def with_awk_defaults(cls, stream: ReadStream) -> Scanner[list[bytes]]:
        """A scanner that reads like AWK's defaults (Emilua's function).

        Records end at ``b"\\n"``, are trimmed of whitespace, and are split
        into fields on runs of whitespace (``b" \\f\\n\\r\\t\\v"``).

        Args:
          stream: as for the constructor.

        Raises:
          TypeError: ``stream`` has no ``read_some``.
        """
        return Scanner(
            stream,
            b"\n",
            trim_record=True,
            field_separator=_AWK_FIELD_SEPARATOR,
        )

    def __repr__(self) -> str:
        return (
            f"<trio_emtcp.stream.Scanner record_number={self._record_number} "
            f"buffered={self._end - self._start}>"
        )

    # -- the parsing attributes (Emilua lets a program change them) ----------
    #
    # Each is checked on assignment as the constructor checks it, with the
    # same errors, and takes effect from the next get_line.  Not while a
    # get_line is in progress: it would see half the change.

    def _changing(self) -> None:
        if self._busy:
            raise trio.BusyResourceError("another task is in get_line()")

    @property
    def record_separator(self) -> bytes | re.Pattern[bytes]:
        """What ends a record, ``bytes`` or a compiled bytes regex.

        Assigning it restarts the separator search at the first unread
        byte.

        Raises:
          TypeError, ValueError: on assignment, as the constructor.
          trio.BusyResourceError: on assignment while :meth:`get_line` runs.
        """
        return self._sep_re if self._sep_re is not None else self._sep

    @record_separator.setter
    def record_separator(self, value: bytes | re.Pattern[bytes]) -> None:
        self._changing()
        self._sep, self._sep_re, self._sep_reach = _separator_arg(value, self._sep_size)
        self._clean = 0
        self._final_cache.clear()

    @property
    def max_separator_size(self) -> int | None:
        """The most bytes a regex separator's match can span, if given.

        Raises:
          TypeError, ValueError: on assignment, as the constructor.
          trio.BusyResourceError: on assignment while :meth:`get_line` runs.
        """
        return self._sep_size

    @max_separator_size.setter
    def max_separator_size(self, value: int | None) -> None:
        self._changing()
        size = _separator_size_arg(value)
        self._sep, self._sep_re, self._sep_reach = _separator_arg(
            self.record_separator, size
        )
        self._sep_size = size
        self._clean = 0

    @property
    def field_separator(self) -> bytes | re.Pattern[bytes] | Callable[..., Any] | None:
        """How records are split into fields, or ``None`` (see the class).

        Switching between "no fields" and "fields" changes what
        :meth:`get_line` returns (``bytes`` or ``list[bytes]``); the static
        type follows the constructor's arguments, so ``typing.cast`` after
        such a change.

        Raises:
          TypeError, ValueError: on assignment, as the constructor (also
            when ``field_pattern`` is set: set it to ``None`` first).
          trio.BusyResourceError: on assignment while :meth:`get_line` runs.
        """
        given = self._fields[0]
        return cast("bytes | re.Pattern[bytes] | Callable[..., Any] | None", given)

    @field_separator.setter
    def field_separator(
        self, value: bytes | re.Pattern[bytes] | Callable[..., Any] | None
    ) -> None:
        self._changing()
        self._split = _fields_arg(value, self._fields[1])
        self._fields = (value, self._fields[1])

    @property
    def field_pattern(self) -> re.Pattern[bytes] | None:
        """The regex whose matches are the fields (gawk's ``FPAT``), or ``None``.

        Raises:
          TypeError, ValueError: on assignment, as the constructor (also
            when ``field_separator`` is set: set it to ``None`` first).
          trio.BusyResourceError: on assignment while :meth:`get_line` runs.
        """
        return cast("re.Pattern[bytes] | None", self._fields[1])

    @field_pattern.setter
    def field_pattern(self, value: re.Pattern[bytes] | None) -> None:
        self._changing()
        self._split = _fields_arg(self._fields[0], value)
        self._fields = (self._fields[0], value)

    @property
    def trim_record(self) -> bool | bytes:
        """``False``, ``True`` (AWK's whitespace) or the bytes to strip.

        Raises:
          TypeError, ValueError: on assignment, as the constructor.
          trio.BusyResourceError: on assignment while :meth:`get_line` runs.
        """
        given = self._trim_given
        return given if isinstance(given, bool) else cast(bytes, self._trim)

    @trim_record.setter
    def trim_record(self, value: bool | bytes) -> None:
        self._changing()
        self._trim = _trim_arg(value)
        self._trim_given = value

    @property
    def max_record_size(self) -> int:
        """The longest record, terminator included, that the scanner buffers.

        A smaller value applies to the unread data at once: a record already
        buffered beyond it is a :class:`~trio_emtcp.RecordTooLong` from the
        next :meth:`get_line`.

        Raises:
          TypeError, ValueError: on assignment, as the constructor.
          trio.BusyResourceError: on assignment while :meth:`get_line` runs.
        """
        return self._max

    @max_record_size.setter
    def max_record_size(self, value: int) -> None:
        self._changing()
        self._max = _max_record_arg(value)

    @property
    def buffer_size_hint(self) -> int:
        """The size of the buffer the stream is read into.

        Assigning it resizes the buffer now (never below what it holds,
        never beyond ``max_record_size + 1``).

        Raises:
          TypeError, ValueError: on assignment, as the constructor.
          trio.BusyResourceError: on assignment while :meth:`get_line` runs.
        """
        return self._hint

    @buffer_size_hint.setter
    def buffer_size_hint(self, value: int) -> None:
        self._changing()
        hint = _hint_arg(value)
        self._hint = hint
        # Keep the current record (buffered_line) and the unread bytes.
        keep = self._rec_start if self._has_record else self._start
        used = self._end - keep
        size = max(min(hint, self._max + 1), used)
        if size != len(self._buf):
            new = bytearray(size)
            new[:used] = self._view[keep : self._end]
            self._buf = new
            self._view = memoryview(new)
            self._rec_start -= keep
            self._rec_stop -= keep
            self._start -= keep
            self._end -= keep

    # -- the record -----------------------------------------------------------

    @property
    def record_number(self) -> int:
        """How many records :meth:`get_line` has returned (AWK's ``NR``)."""
        return self._record_number

    @property
    def record_terminator(self) -> bytes | None:
        """What ended the current record.

        The separator (for a regex, the bytes it matched), ``b""`` for the
        final record that the end of the stream cut short, or ``None`` when
        there is no current record (before the first :meth:`get_line`,
        after :meth:`remove_line`, :meth:`set_buffer`, or a
        :meth:`get_line` that raised).
        """
        return self._terminator

    def buffered_line(self) -> bytes:
        """The current record as read, like AWK's ``$0``.

        Not trimmed and not split, without its terminator; ``b""`` when
        there is no current record.
        """
        if not self._has_record:
            return b""
        return bytes(self._view[self._rec_start : self._rec_stop])

    def remove_line(self) -> None:
        """Drop the current record.

        :meth:`buffered_line` then returns ``b""`` and
        :attr:`record_terminator` is ``None``.  :meth:`get_line` drops the
        previous record by itself; this only lets go of it early.
        """
        self._has_record = False
        self._terminator = None

    def buffer(self) -> bytes:
        """The bytes read from the stream but not yet returned as records.

        What to hand over when the protocol switches from lines to
        something else (an HTTP body after its header, say).  Unlike
        Emilua's ``buffer()``, this never includes the current record.
        """
        return bytes(self._view[self._start : self._end])

    def set_buffer(self, data: Buffer) -> None:
        """Adopt ``data`` as the buffered, unread bytes.

        What was buffered is discarded and there is no current record
        (:attr:`record_number` is kept).  ``data`` is copied.  The end of
        the stream, once seen, stays seen: after ``data`` is consumed,
        :meth:`get_line` raises :class:`~trio_emtcp.EndOfFile` again.

        Args:
          data: a one-dimensional C-contiguous bytes-like object.

        Raises:
          TypeError: ``data`` is not a one-dimensional C-contiguous
            bytes-like object (``str`` must be encoded).
          ValueError: ``data`` is a released ``memoryview``.
          trio.BusyResourceError: a :meth:`get_line` is in progress.
        """
        if self._busy:
            raise trio.BusyResourceError("another task is in get_line()")
        new = bytes_copy(data, "data", "a bytes-like object")
        n = len(new)
        if n > len(self._buf):
            self._buf = bytearray(n)
            self._view = memoryview(self._buf)
        self._view[:n] = new
        self._start = 0
        self._end = n
        self._clean = 0
        self._has_record = False
        self._terminator = None

    # -- reading --------------------------------------------------------------

    def __aiter__(self) -> Scanner[_Record]:
        return self

    async def __anext__(self) -> _Record:
        try:
            return await self.get_line()
        except EndOfFile:
            raise StopAsyncIteration from None

    async def get_line(self) -> _Record:
        """Read the next record.

        Drops the previous record, then returns the next one without its
        terminator (trimmed and split as configured), sets
        :attr:`record_terminator` and adds one to :attr:`record_number`.
        Reads from the stream (one ``read_some`` at a time, into the
        scanner's own buffer) only when no complete record is buffered.
        Always a Trio checkpoint.

        An error leaves every byte read so far in the buffer: after an
        :class:`~trio_emtcp.OperationAborted` (the socket's ``cancel()``)
        or a :class:`trio.Cancelled`, the next call continues the same
        record.

        Returns:
          ``bytes``, or ``list[bytes]`` when records are split into fields.

        Raises:
          EndOfFile: nothing is left: the stream ended and every byte was
            returned (data after the last separator comes back as a final
            record, with ``record_terminator == b""``).  Raised again on
            every later call, without reading again, so it never hangs.
          RecordTooLong: the next record with its terminator is longer
            than ``max_record_size`` (an :class:`OSError` with errno
            ``EMSGSIZE``: "record exceeds max_record_size (N bytes)"); it
            is raised again by every later call, as the data stays
            buffered.
          ValueError: the ``record_separator`` regex matched the empty
            string, or the stream's ``read_some`` returned a count outside
            ``0..len(buf)``.
          trio.BusyResourceError: another task is in ``get_line``.
          OperationAborted, OSError, trio.Cancelled: from ``read_some``,
            unchanged.
        """
        if self._busy:
            await trio.lowlevel.checkpoint()
            raise trio.BusyResourceError("another task is in get_line()")
        self._busy = True
        try:
            # Not typing.cast: that is a function call on every line.
            return await self._get_line()  # type: ignore[return-value]
        finally:
            self._busy = False

    async def _get_line(self) -> bytes | list[bytes]:
        self._has_record = False
        self._terminator = None
        checkpointed = False
        while True:
            try:
                found = self._find()
            except BaseException:
                if not checkpointed:
                    await trio.lowlevel.checkpoint()
                raise
            if found is not None or (self._eof and self._end > self._start):
                if not checkpointed:
                    # A record from the buffer: a checkpoint, whose schedule
                    # point a relaxed task may skip (see _relaxed.py).
                    await checkpoint_if_cancelled()
                    if not RELAXED or not skip_schedule_point():
                        await cancel_shielded_checkpoint()
                if found is None:
                    # The end of the stream cut the last record short.
                    return self._take(self._end, self._end, b"")
                return self._take(*found)
            if self._eof:
                if not checkpointed:
                    await trio.lowlevel.checkpoint()
                raise EndOfFile()
            self._make_room()
            free = len(self._buf) - self._end
            try:
                n = await self._stream.read_some(self._view[self._end :])
            except EndOfFile:
                n = 0
            checkpointed = True
            if not 0 <= n <= free:
                raise ValueError(
                    f"stream: read_some returned {n} for a {free}-byte buffer"
                )
            if n:
                self._end += n
            else:
                self._eof = True

    def _take(self, stop: int, after: int, terminator: bytes) -> bytes | list[bytes]:
        """Make ``[_start, stop)`` the current record, ending at ``after``."""
        start = self._start
        self._rec_start = start
        self._rec_stop = stop
        self._has_record = True
        self._start = after
        self._clean = 0
        self._terminator = terminator
        self._record_number += 1
        record = bytes(self._view[start:stop])
        if self._trim is not None:
            record = record.strip(self._trim)
        if self._split is None:
            return record
        if not record:
            return []
        return self._split(record)

    def _find(self) -> tuple[int, int, bytes] | None:
        """Find the end of the next record in the unread data.

        Returns ``(record_stop, terminator_stop, terminator)``, or ``None``
        when more data is needed.  Raises ``RecordTooLong`` as soon as the
        record is sure to exceed the limit, before reading any more.
        """
        start, end = self._start, self._end
        limit = self._max
        pattern = self._sep_re
        if pattern is None:
            sep = self._sep
            i = self._buf.find(sep, start + self._clean, end)
            if i >= 0:
                if i + len(sep) - start > limit:
                    raise _too_long(limit)
                return i, i + len(sep), sep
            # A separator can begin only in the last len(sep) - 1 bytes.
            self._clean = max(self._clean, end - start - len(sep) + 1)
        else:
            m = pattern.search(self._buf, start + self._clean, end)
            if m is not None:
                s, e = m.span()
                if s == e:
                    raise _empty_match()
                if e - start > limit:
                    raise _too_long(limit)
                if e < end or self._eof:
                    return s, e, bytes(self._view[s:e])
                if end == len(self._buf):
                    # The probe needs one free byte after the data.
                    self._make_room()
                    return self._find()
                if self._is_final(pattern, s, e):
                    return s, e, bytes(self._view[s:e])
                self._resume_after(min(s, end - 1))
                return None
            self._resume_after(end)
        if end - start > limit:
            # No terminator ends within the data, so the record and its
            # terminator (or the final record) are longer than the data.
            raise _too_long(limit)
        return None

    def _resume_after(self, searched: int) -> None:
        """Search a regex separator again only where a match can still start.

        No match began before ``searched`` within the data: with more data,
        one can begin only where it would end past the data, in the last
        ``reach`` bytes (one more: ``\\b`` and ``$`` look at the byte after
        the match).  So the next search starts there, and a record that
        trickles in is searched about once per byte, not once per read
        (SPEC §10).  A pattern with no known reach (``None``) is searched
        again from the record's start, as documented.
        """
        reach = self._sep_reach
        if reach is not None:
            resume = min(searched, self._end - reach - 1) - self._start
            self._clean = max(self._clean, resume)

    def _is_final(self, pattern: re.Pattern[bytes], s: int, e: int) -> bool:
        """Whether no next byte could change the match ``[s, e)`` at the end."""
        key = bytes(self._view[s:e])
        final = self._final_cache.get(key)
        if final is not None:
            return final
        buf = self._buf
        final = True
        for probe in range(256):
            buf[e] = probe
            m = pattern.match(buf, s, e + 1)
            if m is None or m.end() != e:
                final = False
                break
        if len(key) <= _FINAL_CACHE_MAX_KEY:
            if len(self._final_cache) >= _FINAL_CACHE_MAX_ENTRIES:
                self._final_cache.clear()
            self._final_cache[key] = final
        return final

    def _make_room(self) -> None:
        """Free space after the unread data; it holds at most max bytes."""
        start, end = self._start, self._end
        cap = len(self._buf)
        if start:
            # The unread data is a partial record (reads happen only when no
            # record is complete), so this moves few bytes, once per record.
            n = end - start
            self._view[:n] = self._view[start:end]
            self._start, self._end = 0, n
            return
        if end < cap:
            return
        new = bytearray(min(cap * 2, self._max + 1))
        new[:end] = self._view[:end]
        self._buf = new
        self._view = memoryview(new)
