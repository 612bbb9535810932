"""Exceptions raised by trio_emtcp.

Each one subclasses the builtin that callers already catch, so that code
written against plain sockets keeps working: an aborted operation is an
:class:`OSError` with errno ``ECANCELED``, end of stream is an
:class:`EOFError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import TypeVar, final

import trio

__all__ = [
    "AlreadyOpenError",
    "ClosedSocketError",
    "EndOfFile",
    "NotFoundError",
    "OperationAborted",
    "RecordTooLong",
    "add_transferred",
    "closed_error",
    "set_transferred",
    "with_transferred",
]


@final
class OperationAborted(OSError):
    """An operation was aborted by ``close()``, ``cancel()`` or ``release()``.

    Raised by every blocking method of :class:`trio_emtcp.ip.tcp.Socket` and
    :class:`trio_emtcp.ip.tcp.Acceptor` when another task closes, cancels or
    releases the object while the operation is waiting.  Its errno is
    :data:`errno.ECANCELED`, like Emilua's ``operation_aborted``.  An operation
    that ends this way transferred no data; composed operations of
    :mod:`trio_emtcp.stream` and ``Socket.send_file`` report what they
    transferred before it in ``bytes_transferred``.

    The task's own Trio cancellation is never turned into this error: it
    stays :class:`trio.Cancelled`.
    """

    bytes_transferred: int

    def __init__(self, message: str = "operation aborted") -> None:
        super().__init__(errno.ECANCELED, os.strerror(errno.ECANCELED))
        self.bytes_transferred = 0
        self._message = message

    def __str__(self) -> str:
        return f"[Errno {errno.ECANCELED}] {self._message}"


@final
class EndOfFile(EOFError):
    """The peer closed its sending side and no data is left to read.

    Raised by ``read_some``/``receive`` on a socket whose peer sent FIN, on
    that call and on every later one (Emilua can hang on the second call;
    trio_emtcp never does), and by :func:`trio_emtcp.stream.read_all` and
    :func:`~trio_emtcp.stream.read_at_least` when the stream ends before the
    buffer is filled, with ``bytes_transferred`` set to what they read.  Also
    by ``Scanner.get_line`` once the last record has been returned, and by
    ``receive(buf, ["out_of_band"])`` when the peer closed its side with no
    urgent data pending.
    """

    bytes_transferred: int

    def __init__(self, message: str = "end of file") -> None:
        super().__init__(message)
        self.bytes_transferred = 0


@final
class AlreadyOpenError(OSError):
    """``open()`` or ``assign()`` was called on an object that is already open.

    Emilua reports this as ``asio.misc`` error 1, "Already open".  When
    ``assign()`` raises it, the descriptor passed in is left untouched.
    """

    # Asio's "already open" has no errno of its own; like Emilua's
    # asio.misc error it carries only its message (``errno`` is None).


@final
class NotFoundError(LookupError):
    """:func:`trio_emtcp.ip.connect` had no entry to try.

    Raised when the list of endpoints is empty or when ``condition``
    skipped every entry (Emilua's ``asio.misc`` "Element not found").
    """


@final
class ClosedSocketError(OSError, trio.ClosedResourceError):
    """The socket or acceptor is closed (errno ``EBADF``).

    Raised by every member of a closed (or never opened)
    :class:`~trio_emtcp.ip.tcp.Socket` or :class:`~trio_emtcp.ip.tcp.Acceptor`
    that needs a descriptor: all but ``close()``, ``aclose()``, ``is_open``,
    ``open()``, ``assign()`` and the socket's ``connect()`` (which opens it).
    Emilua reports ``EBADF`` there, so it is an :class:`OSError` with that
    errno and the system's words in ``strerror``; its text adds what they
    mean here: ``[Errno 9] Bad file descriptor: the socket is closed``
    (the socket or acceptor was closed, released, or never opened).  It is
    also a :class:`trio.ClosedResourceError`, the exception Trio's
    ``Listener.accept`` and stream methods raise on a resource the caller
    closed: ``Acceptor.accept`` is both Emilua's ``accept`` and
    :meth:`trio.abc.Listener.accept`, so code written for either API catches
    it with the exception it already expects.

    An operation that was *already waiting* when another task closed the
    object ends with :class:`OperationAborted` instead (Emilua's
    ``operation_aborted``); the Trio stream methods turn that one into
    :class:`trio.ClosedResourceError`.
    """

    def __str__(self) -> str:
        # "Bad file descriptor" alone reads like a bug in the library or a
        # descriptor mix-up; the usual cause is the program's own close().
        # Only the text changes: errno, strerror and args stay the
        # system's, so pickling and errno checks see a plain EBADF.
        return f"{super().__str__()}: the socket is closed"


@final
class RecordTooLong(OSError):
    """A record is longer than the scanner's ``max_record_size``.

    Raised by :meth:`trio_emtcp.stream.Scanner.get_line` when the next
    record with its terminator is longer than ``max_record_size``, as soon
    as that is sure (before reading more), and again by every later call:
    the bytes stay buffered.  Emilua reports a ``generic`` ``EMSGSIZE``
    there, so it is an :class:`OSError` with errno :data:`errno.EMSGSIZE`
    and the text "record exceeds max_record_size (N bytes)": code that
    caught ``OSError`` and looked at the errno before this class existed
    keeps working.  A peer that never sends a separator ends here
    instead of making the program buffer without end; answer it (HTTP's
    431, say) and close the connection.
    """


E = TypeVar("E", bound=BaseException)


def set_transferred(exc: BaseException, total: int) -> None:
    """Say on ``exc`` how far the operation it ends got (``bytes_transferred``).

    Any exception escaping a composed operation carries it (trio#889:
    otherwise a cancelled write leaves the stream state unknown).
    ``trio.Cancelled`` and ``OSError`` both take new attributes.
    """
    with contextlib.suppress(AttributeError):  # exceptions with __slots__
        exc.bytes_transferred = total  # type: ignore[attr-defined]


def with_transferred(exc: E, total: int) -> E:
    """``exc`` with ``bytes_transferred`` set, for ``raise``."""
    set_transferred(exc, total)
    return exc


def add_transferred(exc: BaseException, before: int) -> None:
    """Add ``before`` to what a failed part of an operation recorded."""
    set_transferred(exc, before + getattr(exc, "bytes_transferred", 0))


def closed_error() -> ClosedSocketError:
    """The error every member of a closed object raises (Emilua's EBADF)."""
    return ClosedSocketError(errno.EBADF, os.strerror(errno.EBADF))
