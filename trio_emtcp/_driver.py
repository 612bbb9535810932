"""The one cancellation mechanism every blocking operation goes through.

An operation has two paths.

*Fast path* (the syscall does not block): ``checkpoint_if_cancelled()``,
the non-blocking syscall, ``cancel_shielded_checkpoint()``.  That is the
same full checkpoint trio.socket makes, and nothing else: no cancel scope,
no lock, no allocation.  :meth:`Driver._attempt` is its one definition
(accept, ``receive_some``); ``Socket.read_some``/``write_some`` write it
inline, because a function call per operation is measurable there, and the
composed transfers (_transfer.py) keep its rules across many syscalls
under one checkpoint.

*Slow path* (the syscall said ``EAGAIN``, or other tasks are already queued
in that direction): :meth:`Driver._blocked`.  Only now is a
:class:`trio.CancelScope` created and registered on the object, then the task
queues FIFO behind the tasks already waiting in that direction, waits with
``trio.lowlevel.wait_readable``/``wait_writable`` and retries.

There is one exception, for speed: the *head* waiter of an uncontended
direction blocked in the socket's own fd wait (the common case: one reader,
one writer) registers no scope.  ``cancel()`` reaches it through
``trio.lowlevel.notify_closing(sock)``, which wakes every Trio waiter on the
descriptor with ``ClosedResourceError`` and leaves the descriptor open (the
next wait registers it again).  A CancelScope costs about as much as a
schedule point (see the research notes), so this makes a blocked operation
as cheap as trio.socket's.  The head then checks ``checkpoint_if_cancelled``
before it reports ``OperationAborted``, so an outer cancellation that landed
in the same tick still wins, and a per-object abort counter catches the
head that was already woken by readiness when ``cancel()`` ran.

``cancel()``, ``close()`` and ``release()`` cancel the registered scopes.
A scope that catches its own cancellation (``cancelled_caught``) turns into
:class:`~trio_emtcp.OperationAborted`; when an enclosing scope is cancelled
too, Trio hands the :class:`trio.Cancelled` to the outermost cancelled scope,
so the task sees ``trio.Cancelled``, as SPEC §4 wants.  ``cancel_called`` is
never used for that decision: it is also true when the operation completed
before the cancel reached it, and such an operation must return its result.

Trio lets only one task wait per direction per descriptor (a second one gets
``BusyResourceError``); Emilua queues them.  So each direction has a
:class:`Waiters` record: the first blocked task is the *head* and is the only
one in ``wait_readable``; the others park in a FIFO ``ParkingLot``, inside
their own scopes, so ``cancel()`` reaches them too.  The head hands over to
the next parked task when it leaves, whatever the outcome; a task handed the
direction runs the same head loop (:meth:`Driver._blocked_head`), inside its
scope.
"""

from __future__ import annotations

import contextlib
import errno
import socket as _stdlib_socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import trio
from trio.lowlevel import ParkingLot

from ._errors import ClosedSocketError, OperationAborted, closed_error
from ._relaxed import RELAXED, skip_schedule_point, yield_before_wait

T = TypeVar("T")

# Re-bound as module globals: the fast paths call them on every operation,
# and a global lookup is cheaper than two attribute lookups.
checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
cancel_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint
wait_readable = trio.lowlevel.wait_readable
wait_writable = trio.lowlevel.wait_writable
checkpoint = trio.lowlevel.checkpoint

WaitFn = Callable[[_stdlib_socket.socket], Awaitable[None]]


async def _closed() -> Any:
    """What a blocked operation on a closed object does: checkpoint, EBADF."""
    await checkpoint()
    raise closed_error()


class Waiters:
    """The tasks blocked in one direction (read or write) of one object."""

    __slots__ = ("_lot", "busy")

    def __init__(self) -> None:
        # True while a task (the head) owns the direction's fd wait.  While
        # it is set, newcomers skip their fast path and queue, so that the
        # order is FIFO even when data arrives between two waiters.
        self.busy = False
        # Created on first contention: most sockets never need one.
        self._lot: ParkingLot | None = None

    async def queue(self) -> None:
        """Wait until the head hands the direction over to this task."""
        if self._lot is None:
            self._lot = ParkingLot()
        await self._lot.park()

    def hand_over(self) -> None:
        """Called by the head as it leaves: wake the next task, or free."""
        lot = self._lot
        if lot is not None and lot:
            # ``busy`` stays set: the woken task is the new head.  A parked
            # task whose scope was cancelled has already left the lot (the
            # abort callback runs synchronously), so it is never picked.
            lot.unpark()
        else:
            self.busy = False


class Driver:
    """State shared by every object whose operations go through the driver.

    Subclasses set ``_sock`` to the open stdlib socket (``None`` when
    closed).  All members are plain attributes, read on the fast path.
    """

    __slots__ = (
        "_aborts",
        "_fd_armed",
        "_fd_shared",
        "_readers",
        "_scopes",
        "_sock",
        "_writers",
    )

    _sock: _stdlib_socket.socket | None

    def __init__(self) -> None:
        self._sock = None
        # The scopes of queued waiters; created on first use, since most
        # sockets never queue (it is most of an idle socket's memory).
        self._scopes: set[trio.CancelScope] | None = None
        self._readers = Waiters()
        self._writers = Waiters()
        # Bumped by every cancel()/close()/release(): a head compares it
        # before each syscall with its value when the operation began.
        self._aborts = 0
        # Whether code other than ours may wait on the descriptor in Trio:
        # set once it is handed out (``trio_socket``) or came from outside
        # (``assign``); see _detach_sock.
        self._fd_shared = False
        # Whether a wait on the descriptor was cancelled: Trio then leaves
        # it in its epoll set armed for errors and hang-ups (see
        # _detach_sock).  Sticky until close.
        self._fd_armed = False

    def _open_sock(self) -> _stdlib_socket.socket | None:
        """The stdlib socket while its descriptor is open, else ``None``.

        The descriptor can be closed underfoot: ``trio_socket.close()`` (or a
        ``trio.SocketStream`` built on it and closed) closes the very stdlib
        socket this object holds.  The object is closed from then on, as if
        its own ``close()`` had run: this notices it and lets go, so that
        operations still pending end and ``open()`` works again.  Not on the
        fast paths: there a syscall on the dead descriptor fails with
        ``EBADF``, and only the error path looks here.
        """
        sock = self._sock
        if sock is not None and sock.fileno() < 0:
            # _detach_sock makes no syscall on a socket whose fileno() is -1.
            self._detach_sock()
            return None
        return sock

    def _live(self) -> _stdlib_socket.socket:
        """The open stdlib socket.

        Raises:
          ClosedSocketError: closed, also when the descriptor was closed
            underfoot (see :meth:`_open_sock`).
        """
        sock = self._open_sock()
        if sock is None:
            raise closed_error()
        return sock

    def _replacement(self, exc: BaseException) -> BaseException | None:
        """What an operation raises instead of ``exc``, or ``None`` for ``exc``.

        The one place where a syscall's error becomes the library's: here a
        syscall's ``EBADF`` on a descriptor closed underfoot becomes the
        closed-object error.  ``Socket`` adds the connection error it
        remembers (SPEC §10).  Called on the error paths only.
        """
        if self._underfoot(exc):
            return closed_error()
        return None

    def _underfoot(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a syscall's ``EBADF`` on a descriptor closed underfoot.

        For the fast paths' error branches, which then raise the same
        :class:`~trio_emtcp.ClosedSocketError` as any closed object does.
        """
        return (
            isinstance(exc, OSError)
            and exc.errno == errno.EBADF
            and not isinstance(exc, ClosedSocketError)
            and self._open_sock() is None
        )

    def _gone(self, sock: _stdlib_socket.socket) -> bool:
        """Whether a pending operation's ``sock`` is no longer this object's.

        ``close()``/``release()`` replaced it (``_sock`` is ``None`` or a
        new socket), or it was closed underfoot.
        """
        return self._sock is not sock or self._open_sock() is None

    # -- aborting ---------------------------------------------------------

    def _heads_may_wait(self) -> bool:
        """Whether a head may be waiting on the descriptor without a scope.

        A direction is busy while its head is in its wait loop (or has just
        been handed the direction).  Heads of private waits (urgent data)
        always have a scope and are not counted here.

        Conservative by one tick: in the tick a direction is handed over,
        the new head has not reached the descriptor yet, and ``cancel()``
        notifies anyway.  On a descriptor only this object uses that costs
        a syscall.  On one shared through ``trio_socket``, other code
        waiting on it is woken with ``ClosedResourceError``, as it would
        be by any ``cancel()`` while a head waits.
        """
        return self._readers.busy or self._writers.busy

    def _enroll(self, cs: trio.CancelScope) -> None:
        """Let ``cancel()``/``close()``/``release()`` cancel ``cs``.

        For an operation that waits in its own scope: a queued waiter, or
        a transfer pending on two objects at once (``stream.copy``).
        """
        if self._scopes is None:
            self._scopes = set()
        self._scopes.add(cs)

    def _leave(self, cs: trio.CancelScope) -> None:
        """Undo :meth:`_enroll`."""
        if self._scopes is not None:
            self._scopes.discard(cs)

    def _abort_pending(self) -> None:
        """End every pending operation with ``OperationAborted``."""
        self._aborts += 1
        # A copy: a woken task discards its scope only when it runs, but
        # cancel() may be called again from the same tick.
        for cs in list(self._scopes or ()):
            cs.cancel()
        sock = self._sock
        if sock is not None and self._heads_may_wait():
            # Wake the scope-less heads (see the module docstring); a scoped
            # one was already woken by its scope.  close() and release()
            # clear _sock first and notify on their own.
            #
            # This is notify_closing on a descriptor that stays open, which
            # its documentation does not describe: it is written for "about
            # to close".  What it does (trio/_core/_io_epoll.py, and the
            # kqueue and Windows managers alike) is wake every task Trio has
            # waiting on the descriptor with ClosedResourceError and drop
            # the descriptor from the epoll set; the next wait_readable/
            # wait_writable registers it again.  That is exactly a wake-up
            # for the head, which then reports OperationAborted (after its
            # own cancellation, if any).  The alternative, a cancel scope
            # per blocked head, cost about a schedule point per blocked
            # operation (see the research notes: 16 % of 1-byte ping-pong).
            # Checked on epoll; the tests run it on every cancel() case.
            trio.lowlevel.notify_closing(sock)

    def _detach_sock(self, *, releasing: bool = False) -> _stdlib_socket.socket | None:
        """Mark closed, abort pending operations, tell Trio; no checkpoint.

        Returns the stdlib socket so the caller can close or detach it.
        Trio's rule (``notify_closing``'s docstring): mark the object
        closed, notify, close, with no checkpoint in between.

        Args:
          releasing: the descriptor stays open (``release()``), so Trio
            must always be told to forget it.
        """
        sock = self._sock
        if sock is None:
            return None
        self._sock = None
        # Whether close() must tell Trio (notify_closing, which wakes every
        # Trio waiter on the descriptor and deletes it from Trio's epoll
        # set): when a wait on it may be in progress, ours (a scope-less
        # head or a queued waiter) or anyone's once the descriptor was
        # shared; or when a wait on it was cancelled, because Trio's abort
        # then leaves the epoll entry armed for EPOLLERR/EPOLLHUP.  Such an
        # entry outlives close() when another reference to the socket does
        # (a forked child's copy), and would then report the old
        # connection's reset under the same fd number, reused by a new
        # socket.  Otherwise every wait ended by readiness, and EPOLLONESHOT
        # left the entry disabled: nothing can fire, and the close drops
        # it.  Skipping notify_closing then saves an epoll_ctl per close,
        # twice per short connection (trio.socket's ``with`` block skips it
        # too).  A released descriptor stays open: Trio must forget it.
        #
        # Measured (2026-12, 2 x 9 paired rounds of the bench's connect
        # workload, this skip against always notifying): 1.076x and 1.072x
        # the connection rate, every one of the 18 rounds above 1.0.  That
        # is what _fd_shared and _fd_armed earn; the heads are not counted
        # but derived from the directions' busy flags.
        watched = (
            self._heads_may_wait() or self._scopes or self._fd_shared or self._fd_armed
        )
        self._fd_shared = self._fd_armed = False
        self._abort_pending()
        if (watched or releasing) and sock.fileno() != -1:
            # RuntimeError outside trio.run (a close() after the run ended,
            # or from another event loop): no Trio waiter can exist then,
            # and the caller must still close the descriptor.
            with contextlib.suppress(RuntimeError):
                trio.lowlevel.notify_closing(sock)
        return sock

    # -- the fast path ----------------------------------------------------

    async def _attempt(
        self,
        waiters: Waiters,
        wait_fn: WaitFn,
        fn: Callable[..., T],
        args: tuple[Any, ...] = (),
    ) -> T:
        """One operation: ``fn(sock, *args)``, the whole contract around it.

        Checkpoint (cancel point); join the queue if another task waits in
        this direction, else try the syscall at once; wait and retry on the
        slow path (:meth:`_blocked`) if it would block; closing checkpoint
        (schedule point) otherwise.  A full Trio checkpoint on every
        outcome, errors included, with no cancel scope, lock or allocation
        when the syscall does not block.  ``Socket.read_some`` and
        ``write_some`` write this inline (see ``Socket._recv``): a call
        less per operation is measurable there.

        Raises:
          OperationAborted, trio.Cancelled, OSError: as :meth:`_blocked`;
            errors pass through :meth:`_replacement`.
        """
        await checkpoint_if_cancelled()
        sock = self._sock
        try:
            if sock is None:
                raise closed_error()
            if waiters.busy:
                raise BlockingIOError
            result = fn(sock, *args)
        except BlockingIOError:
            assert sock is not None
        except BaseException as exc:
            await cancel_shielded_checkpoint()
            if (replacement := self._replacement(exc)) is None:
                raise
            raise replacement from None
        else:
            # The closing schedule point, unless relaxed (see _relaxed.py).
            if not RELAXED or not skip_schedule_point():
                await cancel_shielded_checkpoint()
            return result
        try:
            return await self._blocked(
                waiters, wait_fn, fn, (sock, *args), wait_first=not waiters.busy
            )
        except BaseException as exc:
            if (replacement := self._replacement(exc)) is None:
                raise
            raise replacement from None

    # -- the slow path ----------------------------------------------------

    def _blocked(
        self,
        waiters: Waiters,
        wait_fn: WaitFn,
        fn: Callable[..., T] | None,
        args: tuple[Any, ...],
        *,
        wait_first: bool,
        queued_after_try: bool = False,
        scoped: bool = False,
    ) -> Coroutine[Any, Any, T]:
        """Run ``fn(*args)`` until it stops raising ``BlockingIOError``.

        Not itself a coroutine: it picks the coroutine to await, so that a
        blocked operation resumes through one frame fewer (every wake-up
        passes through each frame of the await chain).

        Args:
          waiters: the direction to queue in.
          wait_fn: ``wait_readable`` or ``wait_writable``.
          fn: the non-blocking syscall; ``None`` for a pure readiness wait
            (``wait("read")``), which then returns ``None``.
          args: arguments for ``fn``.
          wait_first: the caller has just tried ``fn`` and got ``EAGAIN``,
            so wait before trying again.
          queued_after_try: the operation's own syscall already ran even if
            the task has to queue (``connect``: ``fn`` only reads the
            result), so a task handed the direction waits before ``fn``.
          scoped: the wait cannot be reached through the descriptor
            (``wait_fn`` is not Trio's own wait on it, e.g. a private epoll
            for urgent data), so the operation always runs in a cancel
            scope that ``cancel()``/``close()`` cancel.

        Raises:
          OperationAborted: ``cancel()``/``close()``/``release()`` reached the
            operation before it transferred anything.
          OSError: the syscall failed, or the object is closed.
          trio.Cancelled: the task's own cancellation.
        """
        sock = self._open_sock()
        if sock is None:
            return _closed()
        if not waiters.busy and not scoped:
            # A relaxed task (see _relaxed.py) first makes the schedule point
            # its operations skipped, and tries once more: the peer task it
            # let run may have answered.  Waiting straight away would cost a
            # registration with the I/O manager where the default mode's
            # schedule point had found the data there.
            # Not for connect (``queued_after_try``): its ``fn`` only reads
            # the result, which says nothing before writability.
            yield_first = (
                bool(RELAXED)
                and fn is not None
                and wait_first
                and not queued_after_try
                and yield_before_wait()
            )
            return self._blocked_head(
                sock, waiters, wait_fn, fn, args, wait_first, self._aborts, yield_first
            )
        return self._blocked_queued(
            sock, waiters, wait_fn, fn, args, wait_first, queued_after_try
        )

    async def _blocked_queued(
        self,
        sock: _stdlib_socket.socket,
        waiters: Waiters,
        wait_fn: WaitFn,
        fn: Callable[..., T] | None,
        args: tuple[Any, ...],
        wait_first: bool,
        queued_after_try: bool,
    ) -> T:
        """:meth:`_blocked` in a cancel scope: queue, then run as the head."""
        cs = trio.CancelScope()
        self._enroll(cs)
        # Taken as the scope is registered, so that the head loop also sees
        # a cancel()/close() that lands in the tick the task is handed the
        # direction (its Cancelled is then pending but not yet delivered).
        aborts = self._aborts
        try:
            with cs:
                if waiters.busy:
                    await waiters.queue()
                    # Handed over: the syscall was never tried for us
                    # (unless the caller says it was).
                    wait_first = fn is None or queued_after_try
                # The head's loop checks for aborts before each syscall; its
                # checkpoint delivers the pending Cancelled: ``cs`` swallows
                # its own (-> OperationAborted below), an enclosing scope's
                # wins.
                return await self._blocked_head(
                    sock, waiters, wait_fn, fn, args, wait_first, aborts
                )
        finally:
            self._leave(cs)
        # Only reached when ``cs`` swallowed its own Cancelled.
        raise OperationAborted()

    async def _blocked_head(
        self,
        sock: _stdlib_socket.socket,
        waiters: Waiters,
        wait_fn: WaitFn,
        fn: Callable[..., T] | None,
        args: tuple[Any, ...],
        wait_first: bool,
        aborts: int,
        yield_first: bool = False,
    ) -> T:
        """Wait and retry as the direction's head; hand over on the way out.

        Called directly, without a cancel scope, for the uncontended head
        (the common case), and by :meth:`_blocked_queued` inside its scope.

        Args:
          aborts: ``_aborts`` when the operation became abortable; a change
            means ``cancel()``/``close()``/``release()`` reached it.
          yield_first: make a schedule point and try ``fn`` again before
            the first wait (a relaxed task, see :meth:`_blocked`).
        """
        waiters.busy = True
        try:
            while True:
                if yield_first:
                    yield_first = False
                    await cancel_shielded_checkpoint()
                elif wait_first:
                    if self._aborts != aborts or self._gone(sock):
                        # Handed the direction in the tick that another task
                        # aborted the operation or let go of the descriptor:
                        # waiting on it now would wait on a dead descriptor.
                        await checkpoint_if_cancelled()
                        raise OperationAborted()
                    try:
                        await wait_fn(sock)
                    except trio.ClosedResourceError:
                        # notify_closing from cancel()/close()/release().
                        # The task's own cancellation, if any, goes first.
                        await checkpoint_if_cancelled()
                        raise OperationAborted() from None
                    except BaseException:
                        # Cancelled: Trio's abort re-armed the fd's epoll
                        # entry (see _detach_sock).
                        self._fd_armed = True
                        raise
                    if fn is None:
                        return None  # type: ignore[return-value]
                wait_first = True
                if self._aborts != aborts or self._gone(sock):
                    # Woken (by readiness, or handed the direction) in the
                    # same tick as cancel()/close(): the operation had not
                    # run, so it is aborted, not half-done.
                    await checkpoint_if_cancelled()
                    raise OperationAborted()
                try:
                    return fn(*args)  # type: ignore[misc]
                except BlockingIOError:
                    pass
        finally:
            waiters.hand_over()
