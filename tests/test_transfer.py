"""The transfer loop (``_transfer.run``) under scripted syscall outcomes.

The stream tests drive the loop through real sockets.  Some orders of
events are hard to make a kernel produce on demand (a partial send, then
"would block", then another partial send, then a reset), so here the
socket under a ``Socket`` is swapped for one whose syscalls follow a
script.  Each test checks a promise of the loop: the caller's buffers are
free the moment an operation raises (SPEC §7), and the end of the stream
is judged where the read met it (SPEC §10).
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest
import trio

from trio_emtcp import EndOfFile, socket_pair, stream
from trio_emtcp.ip.tcp import Socket

from .helpers import assert_not_exported


def _reset() -> ConnectionResetError:
    return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")


class ScriptedSocket(socket.socket):
    """A real socket whose writes and reads follow scripts.

    Each ``send``/``sendmsg`` takes the next step of ``writes``, each
    ``recv_into`` the next of ``reads``: a count to report (nothing really
    moves), or an exception to raise.  Once a script runs out, calls go to
    the kernel.
    """

    writes: list[int | BaseException]
    reads: list[int | BaseException]

    @staticmethod
    def _step(script: list[int | BaseException]) -> int:
        step = script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    def sendmsg(self, buffers: Any, *args: Any) -> int:
        if not self.writes:
            return super().sendmsg(buffers, *args)
        del buffers  # as in send()
        return self._step(self.writes)

    def send(self, data: Any, flags: int = 0) -> int:
        if not self.writes:
            return super().send(data, flags)
        # Not kept in this frame when the step raises: the traceback would
        # keep the caller's buffer exported, which a C-level send never does.
        del data
        return self._step(self.writes)

    def recv_into(self, buf: Any, nbytes: int = 0, flags: int = 0) -> int:
        if not self.reads:
            return super().recv_into(buf, nbytes, flags)
        del buf  # as in send()
        return self._step(self.reads)


async def _scripted(
    writes: list[int | BaseException], reads: list[int | BaseException] | None = None
) -> tuple[Socket, Socket]:
    a, b = await socket_pair()
    raw = a._sock
    assert raw is not None
    fake = ScriptedSocket(fileno=raw.detach())
    fake.setblocking(False)
    fake.writes = writes
    fake.reads = reads or []
    a._sock = fake
    return a, b


async def test_vectored_write_frees_every_buffer_when_a_reset_follows_a_wait() -> None:
    # Two bytes go, the send buffer is full, three more go after the wait
    # (the first buffer is finished, the second cut), then the peer resets.
    a, b = await _scripted([2, BlockingIOError(), 3, _reset()])
    async with a, b:
        first, second = bytearray(b"AAAA"), bytearray(b"BBBB")
        # The wait ends at once: the real socket is writable.
        try:
            await stream.write_all(a, [first, second])
        except ConnectionResetError as exc:
            # No checkpoint since the raise: nothing had a chance to collect
            # the frames the traceback keeps.
            assert_not_exported(first)
            assert_not_exported(second)
            assert exc.bytes_transferred == 5  # type: ignore[attr-defined]
        else:
            raise AssertionError("expected ConnectionResetError")


async def test_span_write_frees_the_buffer_when_a_reset_follows_a_wait() -> None:
    a, b = await _scripted([2, BlockingIOError(), 3, _reset()])
    async with a, b:
        data = bytearray(b"ABCDEFGH")
        try:
            await stream.write_all(a, data)
        except ConnectionResetError as exc:
            assert_not_exported(data)
            assert exc.bytes_transferred == 5  # type: ignore[attr-defined]
        else:
            raise AssertionError("expected ConnectionResetError")


async def _end_and_reset_in_one_tick() -> dict[str, type[BaseException]]:
    """A read meets the end while another task's write meets a reset."""
    a, b = await _scripted([_reset()], [0, 0])
    outcome: dict[str, type[BaseException]] = {}
    async with a, b:

        async def read() -> None:
            try:
                await stream.read_all(a, bytearray(4))
            except (EndOfFile, OSError) as exc:
                outcome["read"] = type(exc)

        async def write() -> None:
            try:
                await stream.write_all(a, b"x")
            except OSError as exc:
                outcome["write"] = type(exc)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                nursery.start_soon(write)
        # From then on the reset is what the stream ended with.
        with trio.fail_after(5), pytest.raises(ConnectionResetError):
            await stream.read_all(a, bytearray(4))
    return outcome


async def test_read_meeting_the_end_is_end_of_file_despite_a_reset_next() -> None:
    # The read reports what it met; the reset counts from when the write
    # raises it.  Trio runs the two tasks in either order, so this is tried
    # 20 times (judging the end after the read's closing schedule point
    # gave the reset about half the time).
    for _ in range(20):
        outcome = await _end_and_reset_in_one_tick()
        assert outcome == {"read": EndOfFile, "write": ConnectionResetError}
