"""Relaxed schedule points (SPEC §8): opt-in, per task, never the cancel point.

Every trio_emtcp operation ends with a schedule point, so that other tasks
run between two operations even when the kernel never makes one wait.  A
task that moves many small buffers pays for a pass through Trio's run loop
each time.  Inside :func:`relaxed_schedule_points`, an operation of the
current task whose system call did not block skips that closing schedule
point when the task made one less than ``interval`` seconds ago (Trio's
clock), in the spirit of Trio's issue #1757.  The cancel point at the start
of every operation stays, so a cancelled task still stops at its next
operation, and ``close()``/``cancel()`` abort as always.

The state is keyed by the task object, not kept in a context variable: a
child task copies its parent's context, and must not inherit the mode.

The fast paths read :data:`RELAXED` (empty unless some task is inside the
context) before anything else, so that the default mode costs a global
lookup and a truth test per operation.
"""

from __future__ import annotations

from typing import final

import trio

from ._args import number_arg

__all__ = [
    "RELAXED",
    "RelaxedSchedulePoints",
    "relaxed_schedule_points",
    "skip_schedule_point",
    "yield_before_wait",
]

_current_task = trio.lowlevel.current_task
_current_time = trio.current_time


@final
class _Relaxed:
    """One task's setting, and when it last made a schedule point."""

    __slots__ = ("interval", "last")

    def __init__(self, interval: float, last: float) -> None:
        self.interval = interval
        self.last = last


#: The tasks inside :func:`relaxed_schedule_points`, each with its setting.
RELAXED: dict[trio.lowlevel.Task, _Relaxed] = {}


def skip_schedule_point() -> bool:
    """Whether the current task may skip the schedule point it owes now.

    Call only where an operation would make its closing schedule point, and
    only when :data:`RELAXED` is not empty.  Returns ``False`` (make it)
    for a task outside the context, or when ``interval`` has passed since
    the task's last one, which is then counted from now.
    """
    state = RELAXED.get(_current_task())
    if state is None:
        return False
    now = _current_time()
    if now - state.last < state.interval:
        return True
    state.last = now
    return False


def yield_before_wait() -> bool:
    """Whether the current task, about to wait, yields and retries first.

    A relaxed task has skipped schedule points; before it waits it makes
    one, so that the tasks it kept waiting (the peer of a ping-pong, often)
    run and may answer.  The interval then counts from now.  Call only when
    :data:`RELAXED` is not empty.
    """
    state = RELAXED.get(_current_task())
    if state is None:
        return False
    state.last = _current_time()
    return True


def relaxed_schedule_points(interval: float = 0.001) -> RelaxedSchedulePoints:
    """Let this task's operations skip schedule points for ``interval`` seconds.

    Inside the ``with`` block, in the current task only, a trio_emtcp
    operation whose system call did not block does not yield to other tasks
    if this task's last trio_emtcp schedule point was less than ``interval``
    seconds ago (measured with :func:`trio.current_time`).  Every operation
    still starts with a cancel point: a cancelled task gets
    :class:`trio.Cancelled` from its next operation, and a socket's
    ``close()``/``cancel()`` end what it has pending as always.  An
    operation that would wait first makes the schedule point the task has
    been skipping and tries once more (the peer task it let run may have
    answered), then waits as always.

    What it trades: other tasks may wait up to about ``interval`` (plus one
    operation) while this task finds data ready every time, and
    :func:`trio.testing.assert_checkpoints` no longer holds inside it.  It
    pays off for bulk transfers and many small writes; see
    :doc:`/performance`.

    Child tasks started inside the block do not inherit the mode; they may
    enter it themselves.  Nested blocks use the innermost ``interval`` and
    restore the outer one on exit.  ``interval=0`` is the default behaviour.

    Args:
      interval: seconds, an ``int`` or ``float``, finite and >= 0.

    Returns:
      A context manager for ``with`` (not ``async with``: entering and
      leaving it are not checkpoints).

    Raises:
      TypeError: ``interval`` is not an ``int`` or ``float``.
      ValueError: ``interval`` is negative, infinite or NaN.
    """
    seconds = number_arg(
        interval, "interval", expected="seconds as an int or a float", finite=True
    )
    return RelaxedSchedulePoints(seconds)


@final
class RelaxedSchedulePoints:
    """What :func:`relaxed_schedule_points` returns: a ``with`` block.

    Args:
      interval: seconds, already checked.
    """

    __slots__ = ("_interval", "_outer", "_task")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._task: trio.lowlevel.Task | None = None
        self._outer: _Relaxed | None = None

    def __enter__(self) -> None:
        """Start relaxing the current task's schedule points.

        Raises:
          RuntimeError: outside a Trio run, or the block is already entered.
        """
        if self._task is not None:
            raise RuntimeError("relaxed_schedule_points: this block is already in use")
        task = _current_task()
        outer = RELAXED.get(task)
        # The task's last schedule point is not known: count from now, so
        # that the first interval is a whole one.
        last = outer.last if outer is not None else _current_time()
        RELAXED[task] = _Relaxed(self._interval, last)
        self._task, self._outer = task, outer

    def __exit__(self, *exc_info: object) -> None:
        task, outer = self._task, self._outer
        assert task is not None
        self._task = self._outer = None
        inner = RELAXED.pop(task)
        if outer is not None:
            outer.last = inner.last
            RELAXED[task] = outer
