"""What every relay and server wrote by hand: ``copy``, ``relay``, ``graceful_close``.

SPEC §12.  :func:`copy` moves a stream's bytes to another stream.  Between
two trio_emtcp Sockets on Linux the bytes never enter Python: they go from
one socket's receive queue into a pipe this call owns and from the pipe
into the other socket's send queue (:func:`os.splice`, page references
moved, not bytes copied).  Elsewhere, and for any pair of objects with
``read_some``/``write_some``, a buffer loop does the same job.

The zero-copy path keeps the rules of every other operation:

* cancellation: the whole copy runs in one :class:`trio.CancelScope`
  registered on *both* sockets, so that ``cancel()``/``close()`` on either
  one ends it with :class:`~trio_emtcp.OperationAborted` wherever it
  waits (a copy waiting for the destination to drain is still an operation
  pending on the source); the task's own cancellation stays
  :class:`trio.Cancelled`;
* nothing lost: the pipe is drained into the destination before the next
  read from the source, so it only holds bytes while a write is pending.
  An abort that lands then still writes what the destination takes
  without waiting; the exception's ``bytes_transferred`` counts the bytes
  that reached the destination, exactly;
* checkpoints: one full checkpoint when the kernel keeps up, as the
  composed transfers of _transfer.py, and a schedule point after each
  :data:`_YIELD_EVERY` bytes moved without waiting, so that a copy between
  two fast peers cannot starve the other tasks.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import socket as stdlib_socket
from typing import Any, Protocol, cast, final

import trio

from ._args import int_arg, number_arg
from ._driver import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    wait_readable,
    wait_writable,
)
from ._errors import (
    EndOfFile,
    OperationAborted,
    set_transferred,
)
from ._socket import _SIOCATMARK, Socket
from ._stream import ReadStream, WriteStream, write_all
from ._util import BaseExceptionGroup_

__all__ = ["copy", "graceful_close", "relay"]

# Whether the zero-copy path exists here (Linux).  A module attribute, so
# that the tests can run the buffer loop between two Sockets too.
SPLICE = hasattr(os, "splice")

# The pipe keeps the kernel's default capacity (64 KiB on Linux), which is
# also the most one splice moves.  A larger pipe (F_SETPIPE_SZ) means fewer
# system calls but was slower: 256 MiB from one process through a copy to
# another, 5 rounds, ran at about 1,080 MiB/s with the default pipe and
# 560-610 MiB/s with 256 KiB or 1 MiB pipes (2026-12, this project's 2-core
# machine): the bytes in flight no longer fit the CPU's cache.

# The buffer loop's buffer.
CHUNK = 64 * 1024

# Bytes moved without waiting after which the zero-copy path makes a
# schedule point (the buffer loop makes one per operation).
_YIELD_EVERY = 4 * 1024 * 1024

# splice(2) errors that mean "not for these descriptors" (the call moved
# nothing): the buffer loop does the rest.
_REFUSED = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP})

# Looked up at each call, so that the tests can make it refuse.
splice: Any = getattr(os, "splice", None)

_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)


class _Shutdown(Protocol):
    def shutdown(self, what: str, /) -> object: ...


async def copy(src: ReadStream, dst: WriteStream, *, size: int | None = None) -> int:
    """Move bytes from ``src`` to ``dst`` until ``src`` ends, or ``size`` bytes.

    Between two :class:`~trio_emtcp.ip.tcp.Socket` objects on Linux the
    bytes never pass through Python (:func:`os.splice` through a pipe of the
    call's own, closed afterwards); otherwise, and for any objects with
    ``read_some`` (``src``) and ``write_some`` (``dst``), such as a TLS
    wrapper, a loop through a 64 KiB buffer.  The zero-copy path also
    hands over to the loop where urgent (out-of-band) data arrives, which
    a splice read cannot step over.  ``dst`` is never shut down:
    :func:`relay` does that.

    A checkpoint even when nothing moves.  Must not interleave with other
    reads of ``src`` or writes to ``dst``.

    Every exception after the argument checks carries
    ``bytes_transferred``: the bytes that reached ``dst``.  What was read
    from ``src`` and not yet accepted by ``dst`` when it was raised is lost,
    as with any read followed by a write (the zero-copy path first writes
    what ``dst`` takes without waiting).  After ``cancel()`` or the task's
    cancellation both streams stay usable.

    Args:
      src: where the bytes come from: a Socket, or any object with
        ``read_some(buf)`` that raises ``EndOfFile`` (or returns 0) at the
        end of its stream.
      dst: where they go: a Socket, or any object with ``write_some(data)``.
      size: ``None`` (until the end of ``src``'s stream), or the exact
        number of bytes to move, an ``int`` >= 0.

    Returns:
      The number of bytes written to ``dst``.

    Raises:
      TypeError: ``src`` has no ``read_some``, ``dst`` no ``write_some``,
        or ``size`` is not an ``int`` or ``None``.
      ValueError: ``size`` is negative.
      EndOfFile: ``src`` ended before ``size`` bytes.
      OperationAborted: ``cancel()``/``close()``/``release()`` on either
        Socket (the zero-copy path waits on both).
      OSError: the connection's error (``ECONNRESET``, ``EPIPE``...) or
        ``EBADF`` for a closed Socket.
      trio.Cancelled: the task's own cancellation.
    """
    try:
        limit = None if size is None else int_arg(size, "size", maximum=None)
        for stream, name in ((src, "read_some"), (dst, "write_some")):
            if not callable(getattr(stream, name, None)):
                raise TypeError(
                    f"copy: expected an object with {name}() (e.g. an "
                    f"ip.tcp.Socket), got {type(stream).__name__}"
                )
        # The Sockets among the two: the copy is an operation pending on
        # each.  A closed one is refused at once, not after the first read.
        sockets = [s for s in (src, dst) if isinstance(s, Socket)]
        for sock in sockets:
            sock._live()
    except (TypeError, ValueError, OSError):
        await checkpoint()
        raise
    if limit == 0:
        await checkpoint()
        return 0
    job = _Copy(src, dst, limit)
    cs = trio.CancelScope()
    for sock in sockets:
        sock._enroll(cs)
    try:
        with cs:
            if SPLICE and len(sockets) == 2:
                return await job.zero_copy(cs)
            return await job.loop()
        # Only reached when cs caught its own cancellation: cancel(),
        # close() or release() of one of the Sockets.
        raise OperationAborted()
    except BaseException as exc:
        set_transferred(exc, job.total)
        raise
    finally:
        for sock in sockets:
            sock._leave(cs)
        job.close()


class _Refused(Exception):
    """splice(2) refused a descriptor (moving nothing): the loop takes over."""


@final
class _Copy:
    """One :func:`copy`: its two streams, its count, its pipe."""

    __slots__ = ("_r", "_w", "dst", "in_pipe", "size", "src", "total")

    def __init__(self, src: Any, dst: Any, size: int | None) -> None:
        self.src = src
        self.dst = dst
        self.size = size
        # Bytes that reached dst: kept up to date at every step, so that
        # however the copy ends, the count is here.
        self.total = 0
        # Bytes read from src into the pipe, not yet written.
        self.in_pipe = 0
        self._r = self._w = -1

    def close(self) -> None:
        """Close the pipe, if there is one."""
        for fd in (self._r, self._w):
            if fd >= 0:
                os.close(fd)
        self._r = self._w = -1

    # -- the buffer loop ---------------------------------------------------------

    async def loop(self) -> int:
        """Copy through a buffer, from ``self.total`` on."""
        src, dst, size = self.src, self.dst, self.size
        buf = memoryview(bytearray(CHUNK))
        try:
            while size is None or self.total < size:
                want = CHUNK if size is None else min(CHUNK, size - self.total)
                try:
                    with buf[:want] as chunk:
                        n = await src.read_some(chunk)
                except EndOfFile:
                    if size is None:
                        break
                    raise
                if not n:
                    # A stream that signals its end with 0, as a file would.
                    if size is None:
                        break
                    raise EndOfFile()
                try:
                    with buf[:n] as chunk:
                        await write_all(dst, chunk)
                except BaseException as exc:
                    # What of this chunk went out before the error.
                    self.total += getattr(exc, "bytes_transferred", 0)
                    raise
                self.total += n
        finally:
            buf.release()
        return self.total

    # -- the zero-copy path ------------------------------------------------------

    async def zero_copy(self, cs: trio.CancelScope) -> int:
        """Copy between two Sockets through a pipe, with splice(2)."""
        try:
            return await self._splice_loop(cs)
        except _Refused:
            pass
        # splice refused a descriptor: what the pipe holds goes out first,
        # then the buffer loop does the rest.
        if self.in_pipe:
            held = _read_pipe(self._r, self.in_pipe)
            self.in_pipe = 0
            try:
                await write_all(self.dst, held)
            except BaseException as exc:
                self.total += getattr(exc, "bytes_transferred", 0)
                raise
            self.total += len(held)
        return await self.loop()

    async def _splice_loop(self, cs: trio.CancelScope) -> int:
        src, dst, size = self.src, self.dst, self.size
        waited = False
        try:
            await checkpoint_if_cancelled()
            src_fd = src._live().fileno()
            dst_fd = dst._live().fileno()
            self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            chunk = fcntl.fcntl(self._w, fcntl.F_GETPIPE_SZ)
            unyielded = 0
            while size is None or self.total < size:
                if _abort_requested(cs):
                    # An abort landed while this task ran: no wait saw it.
                    # The task's own cancellation, if any, goes first (cs
                    # turns its own into OperationAborted).
                    await checkpoint_if_cancelled()
                    raise OperationAborted()
                want = chunk if size is None else min(chunk, size - self.total)
                n, round_waited = await self._fill(src_fd, want)
                if not n:
                    eof = src._eof()
                    if size is None and isinstance(eof, EndOfFile):
                        break
                    raise eof
                self.in_pipe = n
                while self.in_pipe:
                    if _abort_requested(cs):
                        await checkpoint_if_cancelled()
                        raise OperationAborted()
                    round_waited |= await self._drain(dst_fd)
                waited |= round_waited
                unyielded = 0 if round_waited else unyielded + n
                if unyielded >= _YIELD_EVERY:
                    # Both peers keep up: let the other tasks run.
                    unyielded = 0
                    waited = True
                    await checkpoint()
        except _Refused:
            raise
        except BaseException:
            if self.in_pipe:
                self._flush()
            if not waited:
                await cancel_shielded_checkpoint()
            raise
        if not waited:
            await cancel_shielded_checkpoint()
        return self.total

    async def _fill(self, src_fd: int, want: int) -> tuple[int, bool]:
        """Splice up to ``want`` bytes of ``src`` into the empty pipe.

        Returns the count (0: the end of the stream) and whether it waited.
        """
        src = self.src
        readers = src._readers
        args = (src_fd, self._w, want)
        try:
            try:
                if readers.busy:
                    raise BlockingIOError
                return self._splice_in(*args), False
            except BlockingIOError:
                n = await src._blocked(
                    readers,
                    wait_readable,
                    self._splice_in,
                    args,
                    wait_first=not readers.busy,
                )
                return n, True
        except OSError as exc:
            raise _translated(src, exc) from None

    def _splice_in(self, src_fd: int, pipe: int, want: int) -> int:
        """splice(2) from the source, stopping at urgent data.

        A splice read stops at the urgent (out-of-band) mark: it says
        "would block" while the socket stays readable (the wait would spin),
        or 0 once the peer's end of stream is queued behind the mark (a
        stream cut short).  ``recv`` steps over the mark, so from there the
        buffer loop does the copy.  Asked only on those two answers: the
        bytes moved pay nothing for it.
        """
        try:
            n = int(splice(src_fd, pipe, want, None, None, _SPLICE_FLAGS))
        except BlockingIOError:
            if _at_mark(src_fd):
                raise _Refused() from None
            raise
        if not n and _at_mark(src_fd):
            raise _Refused()
        return n

    async def _drain(self, dst_fd: int) -> bool:
        """One splice from the pipe into ``dst``; whether it waited."""
        dst = self.dst
        writers = dst._writers
        args = (self._r, dst_fd, self.in_pipe, None, None, _SPLICE_FLAGS)
        waited = False
        try:
            try:
                if writers.busy:
                    raise BlockingIOError
                n = splice(*args)
            except BlockingIOError:
                waited = True
                n = await dst._blocked(
                    writers, wait_writable, splice, args, wait_first=not writers.busy
                )
        except OSError as exc:
            raise _translated(dst, exc) from None
        self.in_pipe -= n
        self.total += n
        return waited

    def _flush(self) -> None:
        """Write what the pipe holds to ``dst`` without waiting (an abort)."""
        sock = self.dst._sock
        if sock is None:
            return
        try:
            while self.in_pipe:
                n = splice(
                    self._r, sock.fileno(), self.in_pipe, None, None, _SPLICE_FLAGS
                )
                if not n:
                    break
                self.in_pipe -= n
                self.total += n
        except BlockingIOError:
            pass
        except OSError as exc:
            # Not raised (another exception is on its way), but a
            # connection error is remembered, so that the next operation
            # reports it (SPEC §10).
            self.dst._replacement(exc)


def _translated(sock: Socket, exc: OSError) -> BaseException:
    """A splice error on ``sock``: a refusal, or what the socket raises."""
    if exc.errno in _REFUSED and not isinstance(exc, OperationAborted):
        return _Refused()
    replacement = sock._replacement(exc)
    return exc if replacement is None else replacement


def _abort_requested(cs: trio.CancelScope) -> bool:
    """Whether ``cancel()``/``close()`` of a socket reached the copy's scope.

    A function, not the attribute read inline: the answer changes across
    the awaits between two reads, which a type checker's narrowing ignores.
    """
    return cs.cancel_called


def _at_mark(fd: int) -> bool:
    """Whether the socket's read pointer is at the urgent-data mark."""
    out = array.array("i", [0])
    try:
        fcntl.ioctl(fd, _SIOCATMARK, out, True)
    except OSError:
        return False
    return bool(out[0])


def _read_pipe(fd: int, count: int) -> bytes:
    parts = []
    while count:
        part = os.read(fd, count)
        parts.append(part)
        count -= len(part)
    return b"".join(parts)


# -- relay ------------------------------------------------------------------------


async def relay(a: Any, b: Any) -> tuple[int, int]:
    """Copy ``a`` to ``b`` and ``b`` to ``a`` at once, passing half-closes on.

    Each direction is a :func:`copy` (zero-copy between two Sockets); when
    one side's stream ends, the other side's sending direction is shut
    down (``shutdown("send")``), and the other direction goes on until its
    own end.  The sockets are not closed.

    Args:
      a: a :class:`~trio_emtcp.ip.tcp.Socket`, or any object with
        ``read_some``, ``write_some`` and ``shutdown(what)``.
      b: the same, for the other side.

    Returns:
      ``(a_to_b, b_to_a)``: the bytes each direction moved.

    Raises:
      TypeError: ``a`` or ``b`` lacks one of the methods.
      OperationAborted, OSError: the first error of either direction (a
        reset, ``cancel()``/``close()`` of either socket...), raised alone,
        never in an exception group: the other direction is stopped
        first.  Its ``bytes_transferred`` is the pair ``(a_to_b, b_to_a)``
        of bytes that reached each destination.
      trio.Cancelled: the task's own cancellation, with the pair too; both
        sockets stay usable.
    """
    for side in (a, b):
        missing = [
            name
            for name in ("read_some", "write_some", "shutdown")
            if not callable(getattr(side, name, None))
        ]
        if missing:
            await checkpoint()
            raise TypeError(
                f"relay: expected objects with read_some(), write_some() and "
                f"shutdown() (e.g. ip.tcp.Socket), got {type(side).__name__} "
                f"without {', '.join(m + '()' for m in missing)}"
            )
    counts = [0, 0]
    failure: BaseException | None = None

    async def one_way(i: int, src: Any, dst: Any, cs: trio.CancelScope) -> None:
        nonlocal failure
        try:
            counts[i] = await copy(src, dst)
            try:
                cast("_Shutdown", dst).shutdown("send")
            except OSError as exc:
                raise _shutdown_error(dst, exc) from None
        except Exception as exc:
            counts[i] = getattr(exc, "bytes_transferred", counts[i])
            if failure is None:
                failure = exc
                # The other direction stops: its Cancelled stays inside
                # the nursery, whose scope this is.
                cs.cancel()
        except trio.Cancelled as exc:
            counts[i] = getattr(exc, "bytes_transferred", counts[i])
            raise

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one_way, 0, a, b, nursery.cancel_scope)
            nursery.start_soon(one_way, 1, b, a, nursery.cancel_scope)
    except BaseExceptionGroup_ as group:
        # Only Cancelled gets here (one_way keeps every other exception):
        # an outside cancellation reached both directions.  Raise one of
        # them, as a single exception.
        cancelled = _first_leaf(group)
        set_transferred(cancelled, (counts[0], counts[1]))  # type: ignore[arg-type]
        raise cancelled from None
    except trio.Cancelled as exc:  # pragma: no cover - strict groups off
        set_transferred(exc, (counts[0], counts[1]))  # type: ignore[arg-type]
        raise
    if failure is not None:
        set_transferred(failure, (counts[0], counts[1]))  # type: ignore[arg-type]
        raise failure
    return counts[0], counts[1]


def _shutdown_error(dst: object, exc: OSError) -> BaseException:
    """What a failed ``shutdown("send")`` of a relay's side stands for.

    A connection reset under the relay makes shutdown fail with
    ``ENOTCONN`` while the reset itself is still pending on the socket
    (``SO_ERROR``) or was remembered by another operation: that reset is
    the error to report, as the other direction would.
    """
    if not isinstance(dst, Socket) or exc.errno != errno.ENOTCONN:
        return exc
    sock = dst._sock
    pending = 0
    if sock is not None:
        with contextlib.suppress(OSError):
            pending = sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR)
    lost = OSError(pending, os.strerror(pending)) if pending else exc
    # _replacement remembers a connection error (SPEC §10), or swaps in
    # the one remembered before.
    return dst._replacement(lost) or lost


def _first_leaf(group: BaseExceptionGroup_[BaseException]) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup_):
        exc = exc.exceptions[0]
    return exc


# -- graceful close --------------------------------------------------------------


async def graceful_close(s: Any, timeout: float = 2.0) -> int:
    """Close a connection without destroying what was just sent.

    ``close()`` on a socket with unread received data makes the kernel send
    a reset, and the peer may then lose the answer it had not read yet (a
    server that answered before reading the whole request).  This shuts
    down the sending side (the peer sees the end of the stream after the
    answer), reads and discards until the peer's end of stream or
    ``timeout`` seconds (Trio's clock), then closes: nginx's "lingering
    close".

    Args:
      s: a :class:`~trio_emtcp.ip.tcp.Socket`, or any object with
        ``shutdown(what)``, ``read_some(buf)`` and ``close()``.
      timeout: the most seconds to wait for the peer's end of stream, an
        ``int`` or ``float`` >= 0 (``math.inf``: no limit).

    Returns:
      The number of bytes read and discarded.

    Raises:
      TypeError: ``timeout`` is not a number, or ``s`` lacks a method.
      ValueError: ``timeout`` is negative or NaN.
      trio.Cancelled: the task's own cancellation (the socket is closed
        then too).  Nothing else: a reset, an end of stream, a socket
        already closed or aborted are how a close may go, not errors.
    """
    try:
        limit = number_arg(timeout, "timeout", expected="a number of seconds")
        for name in ("shutdown", "read_some", "close"):
            if not callable(getattr(s, name, None)):
                raise TypeError(
                    f"graceful_close: expected an object with {name}() "
                    f"(e.g. an ip.tcp.Socket), got {type(s).__name__}"
                )
    except (TypeError, ValueError):
        await checkpoint()
        raise
    discarded = 0
    try:
        try:
            s.shutdown("send")
        except OSError:
            # Closed, not connected, reset: nothing more to wait for.
            await checkpoint()
            return 0
        buf = bytearray(CHUNK)
        with trio.move_on_after(limit):
            while True:
                try:
                    n = await s.read_some(buf)
                except (EOFError, OSError):
                    # The end of the stream (EndOfFile), a reset, an abort.
                    break
                if not n:
                    break
                discarded += n
    finally:
        s.close()
    return discarded
