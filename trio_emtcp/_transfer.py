"""The composed transfers: one loop over a Driver for every kind of job.

``stream.write_all``/``read_all``/``write_at_least``/``read_at_least`` on a
Socket, ``Socket.send_all`` and ``Socket.send_file`` all move bytes the same
way: one full checkpoint for the whole transfer while the kernel keeps up
(no yield between syscalls), the driver's slow path when a syscall would
block, and, however it ends, ``bytes_transferred`` on the exception and the
caller's buffers released.  :func:`run` is that loop; a *job* says what one
syscall does and how far the transfer got:

* :class:`ReadJob`: ``recv_into`` until at least ``minimum`` bytes;
* :class:`WriteJob`: ``send`` until at least ``minimum`` bytes;
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
from ._util import Buffer, release

if TYPE_CHECKING:
    import socket as _stdlib_socket
    from collections.abc import Callable, Coroutine

    from ._driver import Waiters, WaitFn

T = TypeVar("T")


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


__all__ = ["ReadJob", "SendfileJob", "VectoredJob", "WriteJob", "run"]

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


class _SpanJob:
    """A job on one buffer: move bytes until ``minimum`` (more may come)."""

    __slots__ = ("_chunk", "_mv", "minimum", "total")

    def __init__(self, buf: Buffer, minimum: int) -> None:
        self._mv = memoryview(buf).cast("B")
        # The slice a blocked call waits with: an exception's traceback
        # would keep it (and so the caller's buffer export) alive.
        self._chunk: memoryview | None = None
        self.minimum = minimum
        self.total = 0

    @property
    def done(self) -> bool:
        return self.total >= self.minimum

    def attempt_args(self, sock: _stdlib_socket.socket) -> tuple[object, ...]:
        """What the blocked path retries with: the rest of the buffer."""
        self._chunk = self._mv[self.total :]
        return (self._chunk,)

    def release(self) -> None:
        if self._chunk is not None:
            release(self._chunk)
        release(self._mv)


class ReadJob(_SpanJob):
    """``recv_into`` a buffer until ``minimum`` bytes; more may come."""

    __slots__ = ()

    reading = True

    def attempt(self, sock: _stdlib_socket.socket) -> int:
        return sock.recv_into(self._mv[self.total :])

    retry = staticmethod(lambda sock, chunk: sock.recv_into(chunk))

    def advance(self, n: int) -> None:
        if not n:
            raise EndOfFile()
        self.total += n


class WriteJob(_SpanJob):
    """``send`` a buffer until ``minimum`` bytes have gone."""

    __slots__ = ()

    reading = False

    def attempt(self, sock: _stdlib_socket.socket) -> int:
        return sock.send(self._mv[self.total :])

    retry = staticmethod(lambda sock, chunk: sock.send(chunk))

    def advance(self, n: int) -> None:
        self.total += n


class VectoredJob:
    """``sendmsg`` every buffer of a list, keeping the tail of a partial one."""

    __slots__ = ("_pending", "minimum", "total")

    reading = False

    def __init__(self, buffers: Sequence[memoryview]) -> None:
        # The caller owns ``buffers`` and releases them; the slices made
        # here of a partly written buffer are released here.
        self._pending = [b for b in buffers if b.nbytes]
        self.minimum = sum(b.nbytes for b in self._pending)
        self.total = 0

    @property
    def done(self) -> bool:
        return not self._pending

    def attempt(self, sock: _stdlib_socket.socket) -> int:
        return sock.sendmsg(self._pending[:_IOV_MAX])

    def attempt_args(self, sock: _stdlib_socket.socket) -> tuple[object, ...]:
        return (self._pending[:_IOV_MAX],)

    retry = staticmethod(lambda sock, buffers: sock.sendmsg(buffers))

    def advance(self, n: int) -> None:
        self.total += n
        pending = self._pending
        # Drop what went out; keep the tail of a partial buffer.
        while n and pending:
            head = pending[0]
            if n >= head.nbytes:
                n -= head.nbytes
                del pending[0]
            else:
                pending[0] = head[n:]
                n = 0

    def release(self) -> None:
        for view in self._pending:
            release(view)


class SendfileJob:
    """``os.sendfile`` of ``size`` bytes of ``in_fd`` from ``offset``.

    Ends early at the end of the file, or where sendfile refuses the file
    or the socket (:attr:`refused`: the caller copies the rest).
    """

    __slots__ = ("_cap", "_in_fd", "_offset", "_size", "ended", "refused", "total")

    reading = False

    def __init__(self, in_fd: int, offset: int, size: int, cap: int) -> None:
        self._in_fd = in_fd
        self._offset = offset
        self._size = size
        self._cap = cap
        self.total = 0
        self.ended = False
        self.refused = False

    @property
    def done(self) -> bool:
        return self.ended or self.total >= self._size

    @property
    def minimum(self) -> int:
        return self._size

    def attempt(self, sock: _stdlib_socket.socket) -> int:
        offset, count = self._range()
        return self._sendfile(sock, offset, count)

    def attempt_args(self, sock: _stdlib_socket.socket) -> tuple[object, ...]:
        return self._range()

    def _range(self) -> tuple[int, int]:
        left = self._size - self.total
        return self._offset + self.total, min(left, self._cap)

    def retry(self, sock: _stdlib_socket.socket, offset: int, count: int) -> int:
        return self._sendfile(sock, offset, count)

    def _sendfile(self, sock: _stdlib_socket.socket, offset: int, count: int) -> int:
        try:
            return os.sendfile(sock.fileno(), self._in_fd, offset, count)
        except OSError as exc:
            if exc.errno not in FALLBACK_ERRNOS:
                raise
            self.refused = self.ended = True
            return 0

    def advance(self, n: int) -> None:
        if not n:
            self.ended = True  # end of file (or refused): what there was is sent
        self.total += n

    def release(self) -> None:
        pass


Job = ReadJob | WriteJob | VectoredJob | SendfileJob


async def run(driver: Channel, job: Job) -> int:
    """Run ``job`` on ``driver``'s socket under one checkpoint while it can.

    Returns:
      The bytes moved (``job.total``).

    Raises:
      Whatever ended it (``EndOfFile`` for a read the stream ended first,
      ``OperationAborted``, ``trio.Cancelled``, the kernel's error, the
      closed-object error), with ``bytes_transferred`` set; the driver's
      ``_replacement`` may swap a kernel error for the one it stands for
      (a descriptor closed underfoot, a reset another call saw).
    """
    waiters = driver._readers if job.reading else driver._writers
    wait_fn = wait_readable if job.reading else wait_writable
    blocked = False
    try:
        # Inside the try: a Cancelled raised here carries
        # bytes_transferred (0) like any other exit.
        await checkpoint_if_cancelled()
        sock = driver._live()
        while not job.done:
            try:
                if waiters.busy:
                    raise BlockingIOError
                n = job.attempt(sock)
            except BlockingIOError:
                blocked = True
                n = await driver._blocked(
                    waiters,
                    wait_fn,
                    job.retry,
                    (sock, *job.attempt_args(sock)),
                    wait_first=not waiters.busy,
                )
            job.advance(n)
    except BaseException as exc:
        if not blocked:
            await cancel_shielded_checkpoint()
        set_transferred(exc, job.total)
        replacement = driver._replacement(exc)
        if replacement is not None:
            raise with_transferred(replacement, job.total) from None
        raise
    finally:
        job.release()
    if not blocked:
        await cancel_shielded_checkpoint()
    return job.total
