"""Urgent (out-of-band) data and exceptional conditions.

``Socket.wait("error")`` and ``Socket.receive(buf, ["out_of_band"])`` wait
for something Trio's I/O manager cannot wait for: Trio asks the kernel only
for readability and writability, never for ``POLLPRI`` (urgent data) or an
error on its own.  So each such wait gets a private readiness source:

* On Linux (``select.epoll``): a private epoll instance with the socket
  registered for ``EPOLLPRI`` (``EPOLLERR`` and ``EPOLLHUP`` are always
  reported).  An epoll descriptor is itself readable when one of its
  registrations is ready, so ``trio.lowlevel.wait_readable(epoll_fd)`` waits
  for the exceptional condition without blocking the loop and without a
  thread.  The epoll descriptor is closed whatever happens.
* Elsewhere: ``select.poll`` in a worker thread (``trio.to_thread``), woken
  through a private socket pair when the wait is cancelled or aborted.  It
  costs a thread per pending wait; the platforms trio_emtcp supports all
  have epoll, so this path exists for portability and is tested by forcing
  it (:data:`_USE_EPOLL`).

Both go through the driver (:meth:`Driver._blocked`), so ``cancel()``,
``close()`` and ``release()`` abort them with ``OperationAborted`` and the
task's own cancellation stays ``trio.Cancelled``.

Queueing: every call gets a fresh :class:`~trio_emtcp._driver.Waiters`, so
these waits do not queue FIFO behind each other, and do not take the
socket's read slot.  Nothing needs serialising: each call waits on its own
descriptor, so Trio's one-waiter-per-descriptor rule never applies, and a
readiness condition is level-triggered: every waiter sees it.  Using the
read queue would be wrong: a task blocked in ``receive(..., ["out_of_band"])``
would hold up ``read_some`` in another task, and Emilua's own example
(``example/tcp oob/server.lua``) does exactly that pairing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket as _stdlib_socket
from typing import TYPE_CHECKING

import trio

from ._args import nbytes, read_buffer_error
from ._driver import (
    Driver,
    Waiters,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    wait_readable,
)
from ._errors import EndOfFile, closed_error
from ._util import Buffer

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ["receive_urgent", "wait_error"]

# Whether waits use a private epoll (True where the platform has it) or the
# thread fallback.  A module global so that the tests can run the fallback
# on Linux too.
_USE_EPOLL = hasattr(select, "epoll")

_POLLPRI = select.POLLPRI
_POLLERR = select.POLLERR
_POLLHUP = select.POLLHUP
# Linux only; the peer's FIN.  Without it a receive of urgent data after the
# peer closed its side would wait until our side closes too.
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)

# What each kind of wait asks for.  ERR and HUP are always reported by both
# poll and epoll, so wait("error") also ends on a pending error or a hang-up
# (both directions shut, or never connected), as Asio's reactor ends its
# "except" operations on EPOLLERR/EPOLLHUP.
_ERROR_EVENTS = _POLLPRI
_URGENT_EVENTS = _POLLPRI | _POLLRDHUP

_MSG_PEEK = _stdlib_socket.MSG_PEEK
_SOL_SOCKET = _stdlib_socket.SOL_SOCKET
_SO_ERROR = _stdlib_socket.SO_ERROR
_SO_OOBINLINE = _stdlib_socket.SO_OOBINLINE


# -- readiness sources --------------------------------------------------------


class _EpollWaiter:
    """A private epoll instance watching one socket for ``events``."""

    __slots__ = ("_ep",)

    def __init__(self, fd: int, events: int) -> None:
        # select.POLL* and select.EPOLL* have the same values on Linux
        # (EPOLLPRI == POLLPRI, ...), which is what lets one mask serve both.
        ep = select.epoll()
        try:
            ep.register(fd, events)
        except BaseException:
            ep.close()
            raise
        self._ep = ep

    def ready(self) -> bool:
        return bool(self._ep.poll(0))

    async def wait(self, _sock: _stdlib_socket.socket) -> None:
        epfd = self._ep.fileno()
        while True:
            await wait_readable(epfd)
            # The condition may have gone (another task read the urgent
            # byte) between the wake-up and now: wait again then.
            if self._ep.poll(0):
                return

    def close(self) -> None:
        if not self._ep.closed:
            # Trio's rule for closing a descriptor it may have registered.
            trio.lowlevel.notify_closing(self._ep.fileno())
            self._ep.close()


class _ThreadWaiter:
    """``select.poll`` in a worker thread, for systems without epoll."""

    __slots__ = ("_events", "_fd", "_wake_r", "_wake_w")

    def __init__(self, fd: int, events: int) -> None:
        self._fd = fd
        self._events = events
        # The thread also polls this pair, so that a cancelled wait can wake
        # it.  Both ends stay open until close(), which runs only once the
        # thread has finished.
        self._wake_r, self._wake_w = _stdlib_socket.socketpair()
        try:
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
        except BaseException:
            self.close()
            raise

    def ready(self) -> bool:
        return bool(_poll_now(self._fd, self._events))

    async def wait(self, _sock: _stdlib_socket.socket) -> None:
        token = trio.lowlevel.current_trio_token()
        fd, events, wake = self._fd, self._events, self._wake_r.fileno()
        while True:
            self._drain()
            done = trio.Event()
            woken: list[int] = []

            def in_thread(done: trio.Event = done, woken: list[int] = woken) -> None:
                try:
                    p = select.poll()
                    p.register(fd, events)
                    p.register(wake, select.POLLIN)
                    woken.extend(f for f, _ in p.poll())
                finally:
                    token.run_sync_soon(done.set)

            try:
                # abandon_on_cancel: a cancel (ours or the task's) returns
                # at once; the finally clause then wakes the thread and
                # waits for it, so that no thread outlives the wait and the
                # socket pair can be closed.
                await trio.to_thread.run_sync(
                    in_thread, abandon_on_cancel=True, limiter=trio.CapacityLimiter(1)
                )
            finally:
                if not done.is_set():
                    with contextlib.suppress(OSError):
                        self._wake_w.send(b"\0")
                    with trio.CancelScope(shield=True):
                        await done.wait()
            if fd in woken:
                return

    def _drain(self) -> None:
        # Wake-up bytes left over from an earlier turn.
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(64):
                pass

    def close(self) -> None:
        self._wake_r.close()
        self._wake_w.close()


_Waiter = _EpollWaiter | _ThreadWaiter


def _make_waiter(fd: int, events: int) -> _Waiter:
    if _USE_EPOLL:
        return _EpollWaiter(fd, events)
    return _ThreadWaiter(fd, events)


def _poll_now(fd: int, events: int) -> int:
    """The socket's current ``poll`` events (zero timeout)."""
    p = select.poll()
    p.register(fd, events)
    for _fd, revents in p.poll(0):
        return revents
    return 0


# -- wait("error") ------------------------------------------------------------


async def wait_error(sock: Driver) -> None:
    """Wait until ``sock`` has an exceptional condition.

    That is: urgent data is pending (``POLLPRI``; with
    ``out_of_band_inline`` on too, until the urgent byte is read), a socket
    error is pending (``POLLERR``, e.g. after a reset), or the connection
    hung up (``POLLHUP``: both directions shut down, or never connected).
    A condition already present returns at once (after a full checkpoint).

    Raises:
      OperationAborted: ``cancel()``/``close()``/``release()`` from another
        task while waiting.
      OSError: ``EBADF`` if the socket is closed; ``EMFILE`` if no
        descriptor is left for the private epoll instance.
      trio.Cancelled: the task's own cancellation.
    """
    await checkpoint_if_cancelled()
    raw = sock._open_sock()
    waiter: _Waiter | None = None
    try:
        if raw is None:
            raise closed_error()
        waiter = _make_waiter(raw.fileno(), _ERROR_EVENTS)
        ready = waiter.ready()
    except BaseException:
        if waiter is not None:
            waiter.close()
        await cancel_shielded_checkpoint()
        raise
    try:
        if ready:
            await cancel_shielded_checkpoint()
            return
        # A fresh Waiters: see the module docstring.
        await sock._blocked(
            Waiters(), waiter.wait, None, (), wait_first=True, scoped=True
        )
    finally:
        waiter.close()


# -- receive(..., ["out_of_band"]) ---------------------------------------------


def _inline_error() -> OSError:
    return OSError(
        errno.EINVAL,
        "flags: out_of_band needs out_of_band_inline off; with it on, the "
        "urgent byte is in the normal stream (find it with at_mark)",
    )


def _no_more_urgent_data(raw: _stdlib_socket.socket) -> None:
    """The receive side is finished: raise what describes it best.

    Raises:
      OSError: a pending socket error (``ECONNRESET``...), or what a normal
        read would report (``ENOTCONN`` on a socket never connected).
      EndOfFile: the peer closed its side (or we shut down receiving) and
        no urgent data is pending, so none can come.
    """
    err = raw.getsockopt(_SOL_SOCKET, _SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))
    # Raises ENOTCONN on a socket that was never connected, as read_some.
    with contextlib.suppress(BlockingIOError):
        raw.recv_into(bytearray(1), 1, _MSG_PEEK)
    raise EndOfFile()


def _attempt(raw: _stdlib_socket.socket, buf: Buffer, flags: int) -> int:
    """One ``recv(MSG_OOB | ...)``; ``BlockingIOError`` means "wait".

    Linux says ``EINVAL`` when no urgent data is pending (none announced,
    or it was already read) and ``EAGAIN`` when the urgent pointer has
    arrived but the byte has not: in both cases Emilua's ``receive`` waits.
    """
    try:
        n: int = raw.recv_into(buf, 0, flags)
    except BlockingIOError:
        pass
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        if raw.getsockopt(_SOL_SOCKET, _SO_OOBINLINE):
            # Urgent data never leaves the stream then: waiting would
            # hang, so pass the kernel's refusal on with an explanation.
            raise _inline_error() from None
    else:
        return n
    revents = _poll_now(raw.fileno(), _URGENT_EVENTS)
    if not revents & _POLLPRI:
        if revents & (_POLLHUP | _POLLRDHUP):
            _no_more_urgent_data(raw)
        if revents & _POLLERR:
            err = raw.getsockopt(_SOL_SOCKET, _SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            # POLLERR without SO_ERROR is the error queue (timestamps,
            # zero-copy notifications), which says nothing about urgent
            # data.  The wait then wakes at once each time; every turn is
            # still a Trio schedule point, so other tasks run.
    raise BlockingIOError


async def receive_urgent(sock: Socket, buf: Buffer, flags: int) -> int:
    """``recv(MSG_OOB | flags)``, waiting for urgent data to arrive.

    ``Socket.receive`` calls this when ``flags`` has ``out_of_band``.  With
    no urgent data pending it waits (Emilua's semantics) for the urgent
    byte, which TCP delivers one at a time; ``peek`` leaves it pending.

    Args:
      sock: the socket.
      buf: a writable buffer; an empty one returns 0 at once.
      flags: the ``recv`` flags, ``MSG_OOB`` included.

    Returns:
      The number of bytes received: 1 (0 for an empty ``buf``).

    Raises:
      OSError: ``EINVAL`` if ``out_of_band_inline`` is on (the urgent byte
        is then in the normal stream); ``EBADF`` if closed; ``ENOTCONN``
        if not connected; a pending error such as ``ECONNRESET``.
      EndOfFile: the peer closed its side with no urgent data pending.
      OperationAborted: ``cancel()``/``close()``/``release()`` from another
        task while waiting.
      TypeError: ``buf`` is not a writable buffer.
      trio.Cancelled: the task's own cancellation.
    """
    await checkpoint_if_cancelled()
    raw = sock._open_sock()
    try:
        if raw is None:
            raise closed_error()
        # Asio issues no syscall for an empty buffer on a stream socket
        # (and recv(MSG_OOB) into 0 bytes would say nothing useful).
        n = _attempt(raw, buf, flags) if _writable_nbytes(buf) else 0
    except BlockingIOError:
        assert raw is not None
    except BaseException as exc:
        await cancel_shielded_checkpoint()
        if (replacement := sock._replacement(exc)) is not None:
            raise replacement from None
        raise
    else:
        await cancel_shielded_checkpoint()
        return _result(sock, n, buf)
    try:
        waiter = _make_waiter(raw.fileno(), _URGENT_EVENTS)
    except BaseException:
        await cancel_shielded_checkpoint()
        raise
    try:
        n = await sock._blocked(
            Waiters(),
            waiter.wait,
            _attempt,
            (raw, buf, flags),
            wait_first=True,
            scoped=True,
        )
    except OSError as exc:
        if (replacement := sock._replacement(exc)) is None:
            raise
        raise replacement from None
    finally:
        waiter.close()
    return _result(sock, n, buf)


def _result(sock: Socket, n: int, buf: Buffer) -> int:
    # recv(MSG_OOB) returns 0 when the byte was announced but the
    # connection closed before it came: the end of the urgent stream (or
    # the error another operation saw end the connection).
    if n == 0 and _writable_nbytes(buf) != 0:
        raise sock._eof()
    return n


def _writable_nbytes(buf: Buffer) -> int:
    """``buf``'s size in bytes.

    Raises:
      TypeError: ``buf`` is not a writable C-contiguous buffer.
      ValueError: ``buf`` is a released ``memoryview``.
    """
    try:
        return nbytes(buf, writable=True)
    except (TypeError, ValueError):
        raise read_buffer_error(buf) from None
