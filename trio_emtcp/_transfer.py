"""The composed transfers: one loop over a Driver for every kind of job.

``stream.write_all``/``read_all``/``write_at_least``/``read_at_least`` on a
Socket, ``Socket.send_all`` and ``Socket.send_file`` all move bytes the same
way: one full checkpoint for the whole transfer while the kernel keeps up
(no yield between syscalls), the driver's slow path when a syscall would
block, and, however it ends, ``bytes_transferred`` on the exception and the
caller's buffers released.  :func:`run` is that loop; a *job* says what one
syscall does and how far the transfer got:

* :class:`SpanJob`: ``recv_into`` or ``send`` until at least ``minimum``
  bytes;
* :class:`VectoredJob`: ``sendmsg`` of a list of buffers, all of them;
* :class:`SendfileJob`: ``os.sendfile`` of a file range.

The driver's fast-path rules are the ones of ``Driver._attempt``
(_driver.py): a direction another task waits in is joined at the back of
its queue (FIFO) instead of tried.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._driver import (
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    wait_readable,
    wait_writable,
)
from ._errors import EndOfFile, set_transferred, with_transferred
from ._relaxed import RELAXED, skip_schedule_point
from ._util import release

if TYPE_CHECKING:
    import socket as _stdlib_socket
    from collections.abc import Callable, Coroutine

    from ._driver import Waiters, WaitFn

T = TypeVar("T")

# What a job hands the slow path to retry: the syscall and its arguments.
Syscall = tuple["Callable[..., int]", tuple[Any, ...]]


class Channel(Protocol):
    """What :func:`run` uses of a ``Driver`` (a ``Socket``)."""

    _readers: Waiters
    _writers: Waiters

    def _live(self) -> _stdlib_socket.socket: ...

    def _replacement(self, exc: BaseException) -> BaseException | None: ...

    def _blocked(
        self,
        waiters: Waiters,
        wait_fn: WaitFn,
        fn: Callable[..., T] | None,
        args: tuple[Any, ...],
        *,
        wait_first: bool,
    ) -> Coroutine[Any, Any, T]: ...


__all__ = ["READ", "WRITE", "SendfileJob", "SpanJob", "VectoredJob", "run"]

# SpanJob's ``reading`` argument, by name: positional, because a call with
# keywords is not one CPython 3.11 specialises, and this is on every
# composed operation.
READ = True
WRITE = False

# Linux's UIO_MAXIOV; sendmsg refuses more buffers than this in one call.
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024

# Errors with which sendfile refuses a kind of file (or socket) rather than
# failing the transfer: the same bytes can still go through read + send (the
# call that failed sent nothing).  EINVAL: Linux, for a source that cannot be
# mmapped (e.g. some special files); ENOSYS/ENOTSUP/EOPNOTSUPP: a kernel or
# filesystem without it; ENOTSOCK: systems where the destination must be a
# plain socket.
FALLBACK_ERRNOS = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTSOCK}
)


class SpanJob:
    """``recv_into`` or ``send`` on one flat buffer view until ``minimum``.

    The job owns the view (and releases it).  A read may bring more than
    ``minimum``; one that meets the end of the stream first raises
    ``EndOfFile``.

    One class for both directions, not two: :func:`run`'s attribute
    lookups stay monomorphic, so CPython's specialising interpreter keeps
    them fast (two classes made every lookup there generic, measurably).
    """

    __slots__ = ("_chunk", "_mv", "minimum", "reading", "total")

    def __init__(self, view: memoryview, minimum: int, reading: bool) -> None:
        self._mv = view
        # The slice a blocked call waits with: an exception's traceback
        # would keep it (and so the caller's buffer export) alive.
        self._chunk: memoryview | None = None
        self.minimum = minimum
        self.reading = reading
        self.total = 0

    def attempt(self, sock: _stdlib_socket.socket) -> Syscall | None:
        try:
            if self.reading:
                n = sock.recv_into(self._mv[self.total :])
            else:
                n = sock.send(self._mv[self.total :])
        except BlockingIOError:
            # retry() written out: a call less on every blocking read.
            chunk = self._chunk = self._mv[self.total :]
            return (sock.recv_into if self.reading else sock.send), (chunk,)
        # advance() written out: this is the fast path of every transfer.
        if not n:  # only a read: the rest of a write is never empty
            raise EndOfFile()
        self.total += n
        return None

    def retry(self, sock: _stdlib_socket.socket) -> Syscall:
        # The rest of the buffer, kept to be released (see ``_chunk``).
        chunk = self._chunk = self._mv[self.total :]
        return (sock.recv_into if self.reading else sock.send), (chunk,)

    def advance(self, n: int) -> None:
        if not n:
            raise EndOfFile()
        self.total += n

    def release(self) -> None:
        if self._chunk is not None:
            release(self._chunk)
        # _util.release written out (the rule is there): once per operation.
        try:  # noqa: SIM105
            self._mv.release()
        except BufferError:  # pragma: no cover - as in _util.release
            pass


class VectoredJob:
    """``sendmsg`` every buffer of a list, keeping the tail of a partial one.

    The caller owns ``buffers`` and releases them; each is also released
    here once it has gone out, and so are the slices made here of a partly
    written one.
    """

    __slots__ = ("_pending", "minimum", "total")

    reading = False

    def __init__(self, buffers: Sequence[memoryview]) -> None:
        self._pending = [b for b in buffers if b.nbytes]
        self.minimum = sum(b.nbytes for b in self._pending)
        self.total = 0

    def attempt(self, sock: _stdlib_socket.socket) -> Syscall | None:
        try:
            n = sock.sendmsg(self._pending[:_IOV_MAX])
        except BlockingIOError:
            return self.retry(sock)
        self.advance(n)
        return None

    def retry(self, sock: _stdlib_socket.socket) -> Syscall:
        return sock.sendmsg, (self._pending[:_IOV_MAX],)

    def advance(self, n: int) -> None:
        self.total += n
        pending = self._pending
        # Drop what went out; keep the tail of a partial buffer.  What is
        # dropped is released at once, not left to whoever still refers to
        # it (a traceback, the list a blocked retry was given).
        while n and pending:
            head = pending[0]
            if n >= head.nbytes:
                n -= head.nbytes
                del pending[0]
            else:
                pending[0] = head[n:]
                n = 0
            release(head)

    def release(self) -> None:
        for view in self._pending:
            release(view)


class SendfileJob:
    """``os.sendfile`` of ``size`` bytes of ``in_fd`` from ``offset``.

    Ends early at the end of the file, or where sendfile refuses the file
    or the socket (:attr:`refused`: the caller copies the rest); its
    ``minimum`` then becomes what was sent.
    """

    __slots__ = ("_cap", "_in_fd", "_offset", "minimum", "refused", "total")

    reading = False

    def __init__(self, in_fd: int, offset: int, size: int, cap: int) -> None:
        self._in_fd = in_fd
        self._offset = offset
        self._cap = cap
        self.minimum = size
        self.total = 0
        self.refused = False

    def attempt(self, sock: _stdlib_socket.socket) -> Syscall | None:
        try:
            n = self._sendfile(sock, *self._range())
        except BlockingIOError:
            return self.retry(sock)
        self.advance(n)
        return None

    def retry(self, sock: _stdlib_socket.socket) -> Syscall:
        return self._sendfile, (sock, *self._range())

    def _range(self) -> tuple[int, int]:
        left = self.minimum - self.total
        return self._offset + self.total, min(left, self._cap)

    def _sendfile(self, sock: _stdlib_socket.socket, offset: int, count: int) -> int:
        try:
            return os.sendfile(sock.fileno(), self._in_fd, offset, count)
        except OSError as exc:
            if exc.errno not in FALLBACK_ERRNOS:
                raise
            self.refused = True
            return 0

    def advance(self, n: int) -> None:
        self.total += n
        if not n:
            # The end of the file (or a refusal): what there was is sent.
            self.minimum = self.total

    def release(self) -> None:
        pass


Job = SpanJob | VectoredJob | SendfileJob


async def run(driver: Channel, job: Job) -> int:
    """Run ``job`` on ``driver``'s socket under one checkpoint while it can.

    The job owns its buffer views from here on: they are released however
    this ends.

    Returns:
      The bytes moved (``job.total``).

    Raises:
      Whatever ended it (``EndOfFile`` for a read the stream ended first,
      ``OperationAborted``, ``trio.Cancelled``, the kernel's error, the
      closed-object error), with ``bytes_transferred`` set; the driver's
      ``_replacement`` may swap a kernel error for the one it stands for
      (a descriptor closed underfoot, a reset another call saw).
    """
    reading = job.reading
    waiters = driver._readers if reading else driver._writers
    blocked = False
    try:
        # Inside the try: a Cancelled raised here carries
        # bytes_transferred (0) like any other exit.
        await checkpoint_if_cancelled()
        sock = driver._live()
        while job.total < job.minimum:
            # attempt() says "would block" by returning what to retry rather
            # than letting BlockingIOError out: an exception crossing a
            # frame, and a wait inside its handler, cost more than the
            # syscall.
            retry = job.retry(sock) if waiters.busy else job.attempt(sock)
            if retry is not None:
                blocked = True
                syscall, args = retry
                n = await driver._blocked(
                    waiters,
                    wait_readable if reading else wait_writable,
                    syscall,
                    args,
                    wait_first=not waiters.busy,
                )
                # Not kept past the retry: a later exception's traceback
                # would keep this frame, and with it a slice of the
                # caller's buffer that advance() may drop.
                del retry, args
                job.advance(n)
    except BaseException as exc:
        # The end of the stream is judged where the read met it: a reset
        # another task reports during the closing schedule point does not
        # turn it into that reset.  Other errors are judged after that
        # point, as everywhere (a connection error counts from when the
        # operation that saw it raises it).
        eof = isinstance(exc, EndOfFile)
        replacement = driver._replacement(exc) if eof else None
        if not blocked:
            await cancel_shielded_checkpoint()
        set_transferred(exc, job.total)
        if not eof:
            replacement = driver._replacement(exc)
        if replacement is not None:
            raise with_transferred(replacement, job.total) from None
        raise
    finally:
        job.release()
    # The closing schedule point, unless relaxed (see _relaxed.py).
    if not blocked and (not RELAXED or not skip_schedule_point()):
        await cancel_shielded_checkpoint()
    return job.total
