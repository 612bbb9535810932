"""Composed operations over ``read_some``/``write_some`` (Emilua's ``stream``).

They work on any object with ``read_some``/``write_some`` (duck typing).
On a :class:`~trio_emtcp.ip.tcp.Socket` they run the socket's own loop,
which does not yield between syscalls while the kernel keeps up: a large
``write_all`` costs one checkpoint, not one per ``send()``.

A composed operation must not interleave with another operation in the same
direction on the same stream (its bytes could be split around the other's);
nothing enforces this, as in Emilua.

Whatever exception ends one of them midway (``OperationAborted``,
``EndOfFile``, a connection error, or ``trio.Cancelled``) carries
``bytes_transferred``: the count already moved.  This answers trio#889's
"how much was written before the cancel?".
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, cast

from ._args import bytes_view, int_arg, writable_view
from ._driver import checkpoint
from ._errors import EndOfFile, set_transferred
from ._socket import Socket
from ._transfer import READ, WRITE, SpanJob, VectoredJob, run
from ._util import Buffer, release

__all__ = [
    "ReadStream",
    "WriteStream",
    "read_all",
    "read_at_least",
    "write_all",
    "write_at_least",
]


class ReadStream(Protocol):
    """Anything with an Emilua-style ``read_some``."""

    async def read_some(self, buf: Buffer, /) -> int:
        """Read at least one byte into ``buf``; return the count.

        Args:
          buf: a writable buffer, flat (the composed operations hand over
            a ``memoryview`` of format ``"B"``).
        """
        ...


class WriteStream(Protocol):
    """Anything with an Emilua-style ``write_some``."""

    async def write_some(self, data: Buffer, /) -> int:
        """Write at least one byte of ``data``; return the count.

        Args:
          data: the bytes to write (the composed operations hand over a
            ``memoryview`` of format ``"B"``).
        """
        ...


def _minimum_arg(minimum: object, size: int) -> int:
    # No upper bound: it only caps the transfer at the buffer size.
    minimum = int_arg(minimum, "minimum", maximum=None)
    # Emilua clamps to the buffer's size: asking for more than fits means
    # "fill it".
    return min(minimum, size)


async def write_all(stream: WriteStream, data: Buffer | Sequence[Buffer]) -> int:
    """Write all of ``data``.

    Args:
      stream: a :class:`~trio_emtcp.ip.tcp.Socket` or any object with
        ``write_some``.
      data: a one-dimensional C-contiguous bytes-like object (any item
        size: its bytes are written), or a list or tuple of them, which a
        Socket writes with vectored I/O (``sendmsg``).

    Returns:
      The number of bytes written, the total length of ``data``.

    Raises:
      TypeError: ``data`` (or an item of it) is not a one-dimensional
        C-contiguous bytes-like object (``str`` must be encoded).
      ValueError: ``data`` (or an item) is a released ``memoryview``.
      OperationAborted: ``close()``/``cancel()`` from another task, with
        ``bytes_transferred`` set.
      OSError: a write failed, with ``bytes_transferred`` set.
      trio.Cancelled: the task was cancelled; ``bytes_transferred`` set.
    """
    if isinstance(data, (list, tuple)):
        views: list[memoryview] = []
        try:
            try:
                for item in data:
                    views.append(bytes_view(item, "data"))
            except (TypeError, ValueError):
                await checkpoint()
                raise
            if type(stream) is Socket:
                return await run(stream, VectoredJob(views))
            return await _generic_write_views(stream, views)
        finally:
            for view in views:
                release(view)
    # Not typing.cast: that is a function call on every write.
    return await _start(stream, data, _ALL, WRITE)  # type: ignore[arg-type]


async def write_at_least(stream: WriteStream, data: Buffer, minimum: int) -> int:
    """Write at least ``minimum`` bytes of ``data`` (clamped to its size).

    Args:
      stream: as for :func:`write_all`.
      data: a one-dimensional C-contiguous bytes-like object, of any item
        size (its bytes are written).
      minimum: an ``int`` >= 0; more than ``data`` holds means all of it.

    Returns:
      The number of bytes written, at least ``minimum`` and at most
      ``len(data)``.  ``minimum`` 0 returns 0 without writing.

    Raises:
      TypeError: ``data`` is not a one-dimensional C-contiguous bytes-like
        object, or ``minimum`` not an int.
      ValueError: ``minimum`` is negative, or ``data`` a released
        ``memoryview``.
      OperationAborted, OSError, trio.Cancelled: as :func:`write_all`,
        with ``bytes_transferred`` set.
    """
    return await _start(stream, data, minimum, WRITE)


async def read_all(stream: ReadStream, buf: Buffer) -> int:
    """Fill ``buf`` completely.

    Args:
      stream: a :class:`~trio_emtcp.ip.tcp.Socket` or any object with
        ``read_some``.
      buf: a writable one-dimensional C-contiguous buffer
        (``bytearray``, ``memoryview``, ``array``, ``mmap``, ...).

    Returns:
      ``len(buf)`` in bytes.

    Raises:
      TypeError: ``buf`` is not a writable one-dimensional C-contiguous
        buffer.
      ValueError: ``buf`` is a released ``memoryview``.
      EndOfFile: the stream ended first; ``bytes_transferred`` says how
        much of ``buf`` was filled.
      OperationAborted, OSError, trio.Cancelled: with ``bytes_transferred``.
    """
    return await _start(stream, buf, _ALL, READ)


async def read_at_least(stream: ReadStream, buf: Buffer, minimum: int) -> int:
    """Read at least ``minimum`` bytes into ``buf`` (clamped to its size).

    Args:
      stream: as for :func:`read_all`.
      buf: as for :func:`read_all`.
      minimum: an ``int`` >= 0; more than ``buf`` holds means all of it.

    Returns:
      The number of bytes read; it may exceed ``minimum`` (whatever the
      last read brought, up to ``len(buf)``).  ``minimum`` 0 returns 0
      without reading.

    Raises:
      TypeError: ``buf`` is not a writable one-dimensional C-contiguous
        buffer, or ``minimum`` not an int.
      ValueError: ``minimum`` is negative, or ``buf`` a released
        ``memoryview``.
      EndOfFile, OperationAborted, OSError, trio.Cancelled: as
        :func:`read_all`.
    """
    return await _start(stream, buf, minimum, READ)


# ``minimum`` of the functions that move the whole buffer.
_ALL = object()


def _start(
    stream: ReadStream | WriteStream, buf: Buffer, minimum: object, reading: bool
) -> Coroutine[Any, Any, int]:
    """The four functions but the vectored write: check, view, transfer.

    Not itself a coroutine: it picks the coroutine to await (the transfer
    loop of _transfer.py on a Socket, the duck-typed loop otherwise), so
    that an operation goes through no frame more than that loop's.  The
    loop owns the view it is given and releases it.  ``minimum``
    :data:`_ALL` means all of ``buf``.
    """
    try:
        mv = writable_view(buf) if reading else bytes_view(buf, "data")
    except (TypeError, ValueError) as exc:
        return _refuse(exc)
    try:
        need = mv.nbytes if minimum is _ALL else _minimum_arg(minimum, mv.nbytes)
    except (TypeError, ValueError) as exc:
        release(mv)
        return _refuse(exc)
    if type(stream) is Socket:
        return run(stream, SpanJob(mv, need, reading))
    if reading:
        return _generic_read(cast("ReadStream", stream), mv, need)
    return _generic_write(cast("WriteStream", stream), mv, need)


async def _refuse(exc: BaseException) -> int:
    """A bad argument: still a checkpoint, as every async call (SPEC §4)."""
    await checkpoint()
    raise exc


# -- the duck-typed loops ---------------------------------------------------


async def _stream_method(stream: object, name: str) -> None:
    if not callable(getattr(stream, name, None)):
        await checkpoint()
        raise TypeError(
            f"stream: expected an object with {name}() (e.g. an ip.tcp.Socket), "
            f"got {type(stream).__name__}"
        )


async def _generic_write(stream: WriteStream, mv: memoryview, minimum: int) -> int:
    """Write ``mv`` with ``write_some`` until ``minimum``; releases ``mv``."""
    try:
        await _stream_method(stream, "write_some")
        total = 0
        if minimum == 0:
            await checkpoint()
            return 0
        try:
            while total < minimum:
                with mv[total:] as chunk:
                    total += await stream.write_some(chunk)
        except BaseException as exc:
            set_transferred(exc, total)
            raise
        return total
    finally:
        release(mv)


async def _generic_write_views(stream: WriteStream, views: list[memoryview]) -> int:
    await _stream_method(stream, "write_some")
    total = 0
    if not any(v.nbytes for v in views):
        await checkpoint()
        return 0
    try:
        for view in views:
            done = 0
            while done < view.nbytes:
                with view[done:] as chunk:
                    n = await stream.write_some(chunk)
                done += n
                total += n
    except BaseException as exc:
        set_transferred(exc, total)
        raise
    return total


async def _generic_read(stream: ReadStream, mv: memoryview, minimum: int) -> int:
    """Read into ``mv`` with ``read_some`` until ``minimum``; releases ``mv``."""
    try:
        await _stream_method(stream, "read_some")
        total = 0
        if minimum == 0:
            await checkpoint()
            return 0
        try:
            while total < minimum:
                with mv[total:] as chunk:
                    n = await stream.read_some(chunk)
                if not n:
                    # A stream that signals EOF with 0, as a file would.
                    raise EndOfFile()
                total += n
        except BaseException as exc:
            set_transferred(exc, total)
            raise
        return total
    finally:
        release(mv)
