"""``Socket.send_file``: zero-copy file transmission.

Emilua has ``send_file`` on Windows only (``TransmitFile``).  Here it works
wherever :func:`os.sendfile` does (Linux, the BSDs, macOS), zero-copy, and
elsewhere through a portable fallback: :func:`os.pread` into memory, then
the socket's own write loop.

The transfer is driven like every other write: the non-blocking syscall in
a loop while the kernel accepts, under one checkpoint, and on ``EAGAIN``
the driver's slow path (:meth:`Driver._blocked`) in the socket's write
queue, so that ``cancel()``/``close()``/``release()`` abort it and it
queues FIFO with other writers.

Reading the file happens in the event loop's thread, as it does for any
``sendfile`` user: from the page cache it costs nothing; a cold file on a
slow disk blocks the loop while the kernel reads it.
"""

from __future__ import annotations

import fcntl
import io
import os
from typing import TYPE_CHECKING, Any

from . import _transfer
from ._args import int_arg, optional_bytes_view
from ._driver import cancel_shielded_checkpoint, checkpoint_if_cancelled
from ._errors import add_transferred, set_transferred
from ._transfer import WRITE, SendfileJob, SpanJob
from ._util import Buffer, release

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ["send_file"]

# Whether to try os.sendfile at all.  A module global so that the tests can
# drive the fallback on a system that has sendfile.
_USE_SENDFILE = hasattr(os, "sendfile")

# Linux moves at most MAX_RW_COUNT (INT_MAX rounded down to a page) per
# call; asking for more is harmless but pointless.
_MAX_SENDFILE_COUNT = 0x7FFFF000

# Chunk size of the fallback: 64 KiB is the common socket buffer quantum
# (Trio's DEFAULT_RECEIVE_SIZE, asyncio's sendfile fallback uses 256 KiB);
# large enough that the per-chunk overhead is small, small enough that the
# memory held per transfer is.
_FALLBACK_CHUNK = 65536

# off_t is signed 64-bit on every platform Python supports sendfile on.
_MAX_OFFSET = 2**63 - 1


def _file_arg(file: object) -> int:
    """The descriptor of ``file`` (a binary file object or an ``int``).

    Raises:
      TypeError: ``file`` is a text file, has no descriptor, or is of
        another type.
      ValueError: a descriptor outside 0..2**31 - 1, or a closed file
        object.
    """
    if isinstance(file, bool):
        raise TypeError(
            "file: expected a binary file object or an int descriptor, got bool"
        )
    if isinstance(file, int):
        return int_arg(file, "file", subject="a descriptor")
    if isinstance(file, io.TextIOBase) or isinstance(
        getattr(file, "encoding", None), str
    ):
        # The second test catches wrappers (tempfile's) around a text file.
        raise TypeError(
            "file: expected a binary file, got a text file; open it in 'rb' mode"
        )
    fileno = getattr(file, "fileno", None)
    if not callable(fileno):
        raise TypeError(
            "file: expected a binary file object or an int descriptor, "
            f"got {type(file).__name__}"
        )
    if getattr(file, "closed", False):
        raise ValueError("file: the file is closed")
    try:
        fd = fileno()
    except io.UnsupportedOperation:
        # io.BytesIO and friends: a file object without a descriptor.
        raise TypeError(f"file: {type(file).__name__} has no file descriptor") from None
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"file: fileno() returned {type(fd).__name__}, not an int")
    return fd


def _check_readable(fd: int) -> None:
    """Fail now, before the head goes out, if ``fd`` cannot be read.

    Raises:
      OSError: ``EBADF``: ``fd`` is not an open descriptor.
      ValueError: it is open for writing only.
    """
    if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
        raise ValueError("file: is open for writing only; open it in 'rb' mode")


def _count_arg(value: object, name: str) -> int:
    return int_arg(value, name, maximum=_MAX_OFFSET)


def _per_send_arg(value: object) -> int | None:
    if value is None:
        return None
    return int_arg(
        value, "n_number_of_bytes_per_send", minimum=1, expected="an int or None"
    )


async def send_file(
    sock: Socket,
    file: Any,
    offset: int,
    size_in_bytes: int,
    head: Buffer | None = None,
    tail: Buffer | None = None,
    n_number_of_bytes_per_send: int | None = None,
) -> int:
    """Send ``head``, ``size_in_bytes`` of ``file`` from ``offset``, ``tail``.

    ``Socket.send_file`` delegates here; its docstring is the contract.

    Returns:
      The number of bytes of file data sent (head and tail not counted);
      less than ``size_in_bytes`` only when the file ended first.

    Raises:
      TypeError, ValueError: a bad argument (nothing is sent).
      OperationAborted: ``cancel()``/``close()``/``release()`` from another
        task; ``bytes_transferred`` counts the head, file and tail bytes
        written before it.
      OSError: ``EBADF`` if the socket or ``file`` is closed; the kernel's
        error otherwise, with ``bytes_transferred`` set.
      trio.Cancelled: the task's own cancellation, with
        ``bytes_transferred`` set.
    """
    head_mv = tail_mv = None
    try:
        await checkpoint_if_cancelled()
        in_fd = _file_arg(file)
        start = _count_arg(offset, "offset")
        size = _count_arg(size_in_bytes, "size_in_bytes")
        if start + size > _MAX_OFFSET:
            raise ValueError(
                f"size_in_bytes: offset + size_in_bytes must be <= {_MAX_OFFSET}"
            )
        head_mv = optional_bytes_view(head, "head")
        tail_mv = optional_bytes_view(tail, "tail")
        per_send = _per_send_arg(n_number_of_bytes_per_send)
        sock._live()
        _check_readable(in_fd)
    except BaseException as exc:
        _release_all(head_mv, tail_mv)
        await cancel_shielded_checkpoint()
        set_transferred(exc, 0)
        raise
    try:
        if not (head_mv or size or tail_mv):
            # Nothing to write: still a checkpoint, as every async method.
            await cancel_shielded_checkpoint()
            return 0
        # Each part is a complete operation with its own checkpoint.
        # ``done`` counts what the finished parts wrote; a part that fails
        # has put its own progress in ``bytes_transferred``, and this adds
        # the rest.
        done = 0
        sent = 0
        try:
            if head_mv:
                done += await _transfer.run(
                    sock, SpanJob(head_mv, head_mv.nbytes, WRITE)
                )
            if size:
                sent = await _send_range(sock, in_fd, start, size, per_send)
                done += sent
            if tail_mv:
                done += await _transfer.run(
                    sock, SpanJob(tail_mv, tail_mv.nbytes, WRITE)
                )
        except BaseException as exc:
            add_transferred(exc, done)
            raise
        return sent
    finally:
        # The caller's head and tail are theirs again however this ends.
        _release_all(head_mv, tail_mv)


def _release_all(*views: memoryview | None) -> None:
    for view in views:
        if view is not None:
            release(view)


async def _send_range(
    sock: Socket, in_fd: int, offset: int, size: int, per_send: int | None
) -> int:
    """Send ``size`` bytes of ``in_fd`` from ``offset``; stop early at EOF."""
    sent = 0
    if _USE_SENDFILE:
        sent, refused = await _sendfile_range(sock, in_fd, offset, size, per_send)
        if not refused:
            return sent
    try:
        return sent + await _copy_range(
            sock, in_fd, offset + sent, size - sent, per_send
        )
    except BaseException as exc:
        add_transferred(exc, sent)
        raise


async def _sendfile_range(
    sock: Socket, in_fd: int, offset: int, size: int, per_send: int | None
) -> tuple[int, bool]:
    """The zero-copy loop, under one checkpoint while the kernel accepts.

    Returns:
      ``(sent, refused)``: ``refused`` when sendfile cannot handle this
      file or socket (the caller copies the rest).
    """
    cap = _MAX_SENDFILE_COUNT if per_send is None else per_send
    job = SendfileJob(in_fd, offset, size, cap)
    sent = await _transfer.run(sock, job)
    return sent, job.refused


async def _copy_range(
    sock: Socket, in_fd: int, offset: int, size: int, per_send: int | None
) -> int:
    """The fallback: ``os.pread`` chunks written with the socket's loop."""
    chunk = _FALLBACK_CHUNK if per_send is None else per_send
    sent = 0
    yielded = False
    try:
        await checkpoint_if_cancelled()
        while sent < size:
            data = os.pread(in_fd, min(size - sent, chunk), offset + sent)
            if not data:
                break  # end of file
            yielded = True  # a transfer is a checkpoint of its own
            sent += await _transfer.run(
                sock, SpanJob(memoryview(data), len(data), WRITE)
            )
    except BaseException as exc:
        if not yielded:
            await cancel_shielded_checkpoint()
        add_transferred(exc, sent)
        raise
    if not yielded:
        await cancel_shielded_checkpoint()
    return sent
