"""Reliability under faults (SPEC §4).

Three parts:

* the fault matrix: every blocking operation, blocked, meets every fault
  that means something for it, and ends with the exact exception the table
  says, losing and duplicating no byte;
* cancellation at every checkpoint of ``stream.write_all``/``read_all``,
  each time followed by finishing the transfer on the same socket from
  ``bytes_transferred``;
* ResourceWarning: what a forgotten Socket/Acceptor does when collected, and
  that no path of the library leaves one behind.
"""

from __future__ import annotations

import errno
import gc
import itertools
import os
import random
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import wait_all_tasks_blocked

from trio_emtcp import EndOfFile, OperationAborted, _urgent, ip, socket_pair, stream
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import blackhole, listening, open_fds

LOOPBACK = "127.0.0.1"

# Each of the four buffers of a _small_pair, in bytes (Linux doubles it and
# keeps it fixed: no autotuning).  Together they hold about 10 KiB, so any
# transfer of a few dozen KiB blocks, many times.
SMALL_BUFFER = 4096

# Far more than a _small_pair's buffers hold: a write of this much always
# blocks part-way, after it has moved some bytes.
BIG = 128 * 1024

# The deadline of the "deadline" fault, in seconds of the autojump clock.
DEADLINE = 1.0

# Mock seconds after which a test that hangs (an operation that its fault did
# not end) fails instead.  The autojump clock gets there at once when every
# task is blocked, and never while the I/O makes progress.
WATCHDOG = 60.0


async def _small_pair() -> tuple[Socket, Socket]:
    """A connected loopback pair ``(client, server)`` with small, fixed buffers.

    The sizes are set before the handshake (the accepted socket inherits the
    listener's), so the window is negotiated small from the start.  Shrinking
    the receive buffer of a connected socket instead can leave the kernel
    short of room it already advertised, and a segment it drops is
    retransmitted after 200 ms of real time: ``wait_all_tasks_blocked()``
    would then no longer mean "the I/O has settled".
    """
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        listener = acceptor.trio_socket
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        acceptor.bind(LOOPBACK, 0)
        acceptor.listen(1)
        client = Socket()
        try:
            client.open("v4")
            client.set_option("send_buffer_size", SMALL_BUFFER)
            client.set_option("receive_buffer_size", SMALL_BUFFER)
            await client.connect(LOOPBACK, acceptor.local_port)
            server = await acceptor.accept()
        except BaseException:
            client.close()
            raise
    if server.remote_port != client.local_port:  # pragma: no cover - a stranger
        client.close()
        server.close()
        raise AssertionError("a stranger connected to the test listener")
    return client, server


def _fill(sock: Socket, rng: random.Random) -> bytes:
    """Queue random bytes until the kernel refuses more; return them.

    The stdlib socket's own non-blocking ``send``, so nothing waits.
    """
    raw = sock._sock
    assert raw is not None
    queued = bytearray()
    for _ in range(10_000):
        chunk = rng.randbytes(4096)
        try:
            n = raw.send(chunk)
        except BlockingIOError:
            return bytes(queued)
        queued += chunk[:n]
    raise AssertionError("the send buffer never filled")


async def _read_to_end(sock: Socket) -> bytes:
    """Everything ``sock`` receives until the peer's FIN."""
    got = bytearray()
    buf = bytearray(65536)
    while True:
        try:
            n = await sock.read_some(buf)
        except EndOfFile:
            return bytes(got)
        got += buf[:n]


# -- the fault matrix ---------------------------------------------------------

PEER_FAULTS = ("peer_reset", "peer_half_close", "peer_close")
ABORTS = ("close", "cancel", "release")
TRIO_CANCELS = ("outer", "deadline")
# After these the object is open and usable, and the test finishes the
# transfer on it.
KEEPS_OPEN = ("cancel", "outer", "deadline")


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix: an operation, a fault, the expected end."""

    op: str
    fault: str
    # What the blocked operation raises; None: it returns.
    raises: type[BaseException] | None
    # wait("read") only: what the read_some after it raises.
    then: type[BaseException] | None = None


_LOCAL: dict[str, type[BaseException]] = {
    **dict.fromkeys(ABORTS, OperationAborted),
    **dict.fromkeys(TRIO_CANCELS, trio.Cancelled),
}
_READ = {
    "peer_reset": ConnectionResetError,
    "peer_half_close": EndOfFile,
    "peer_close": EndOfFile,
    **_LOCAL,
}
# A writer blocked on a full buffer: the peer's close with unread data in its
# receive buffer sends RST (RFC 2525 §2.17; Linux does), so a closing peer
# and a resetting one look the same to it.
_WRITE: dict[str, type[BaseException]] = {
    "peer_reset": ConnectionResetError,
    "peer_close": ConnectionResetError,
    **_LOCAL,
}

# The matrix.  Rows: the operation, blocked; columns: the fault.
#
#                 peer_reset  peer_half_close  peer_close  close/cancel/  outer/
#                                                          release        deadline
#   read_some     ECONNRESET  EndOfFile        EndOfFile   Aborted        Cancelled
#   read_all      ECONNRESET  EndOfFile        EndOfFile   Aborted        Cancelled
#   wait("read")  returns;    returns;         returns;    Aborted        Cancelled
#                 read_some:  read_some:       read_some:
#                 ECONNRESET  EndOfFile        EndOfFile
#   write_some    ECONNRESET  -                ECONNRESET  Aborted        Cancelled
#   write_all     ECONNRESET  -                ECONNRESET  Aborted        Cancelled
#   send_file     ECONNRESET  -                ECONNRESET  Aborted        Cancelled
#   accept        -           -                -           Aborted        Cancelled
#
# (Aborted: OperationAborted, errno ECANCELED; Cancelled: trio.Cancelled,
# caught by the scope that was cancelled.)  The read_all, write_all and
# send_file exceptions carry bytes_transferred.
#
# Left out, because the fault does not reach the operation:
# * peer_half_close on the writes: the peer's FIN closes our receiving
#   direction only; a write blocked on a full buffer stays blocked, which is
#   correct and not a fault.
# * every peer fault on accept: a listening socket has no peer.  A client
#   that resets while in the backlog does not fail accept on Linux: the
#   connection is handed out and its first read reports the reset (the
#   read_some/peer_reset cell).  The ECONNABORTED other systems report
#   there is tested with a scripted fake in test_acceptor.py.
MATRIX: dict[str, dict[str, type[BaseException] | None]] = {
    "read_some": dict(_READ),
    "read_all": dict(_READ),
    "wait_read": {
        "peer_reset": None,
        "peer_half_close": None,
        "peer_close": None,
        **_LOCAL,
    },
    "write_some": dict(_WRITE),
    "write_all": dict(_WRITE),
    "send_file": dict(_WRITE),
    "accept": dict(_LOCAL),
}
_WAIT_THEN = dict(_READ)

CELLS = [
    Cell(op, fault, raises, _WAIT_THEN[fault] if op == "wait_read" else None)
    for op, row in MATRIX.items()
    for fault, raises in row.items()
]


@dataclass
class _Outcome:
    """How the blocked operation ended."""

    exc: BaseException | None = None
    returned: bool = False
    value: Any = None
    scope: trio.CancelScope | None = None


def _inject(
    fault: str, victim: Socket | Acceptor, peer: Socket | None, outer: trio.CancelScope
) -> None:
    """Make ``fault`` happen, from a task other than the blocked one."""
    if fault in PEER_FAULTS:
        assert peer is not None
        if fault == "peer_reset":
            # SO_LINGER on with a zero timeout: close() sends RST.
            peer.set_option("linger", True, 0)
            peer.close()
        elif fault == "peer_half_close":
            peer.shutdown("send")
        else:
            peer.close()
    elif fault == "close":
        victim.close()
    elif fault == "cancel":
        victim.cancel()
    elif fault == "release":
        os.close(victim.release())
    elif fault == "outer":
        outer.cancel()
    else:
        # "deadline": nothing to do.  Once every task is blocked the
        # autojump clock moves to the victim's deadline.
        assert fault == "deadline"


async def _run_blocked(
    fault: str,
    victim: Socket | Acceptor,
    peer: Socket | None,
    op: Callable[[], Awaitable[Any]],
    before: Callable[[], Awaitable[None]] | None = None,
) -> _Outcome:
    """Run ``op`` in a task until it blocks, inject ``fault``, return its end.

    ``before`` runs in this task after ``op`` has started (e.g. the peer
    sends what the reader is to receive before the fault).
    """
    out = _Outcome()
    outer = trio.CancelScope()

    async def victim_task() -> None:
        scope = trio.move_on_after(DEADLINE) if fault == "deadline" else outer
        with scope:
            out.scope = scope
            try:
                out.value = await op()
                out.returned = True
            except trio.Cancelled as exc:
                out.exc = exc
                raise
            except Exception as exc:
                out.exc = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(victim_task)
        if before is not None:
            await before()
        await wait_all_tasks_blocked()
        assert out.exc is None, f"{out.exc!r} before the fault"
        assert not out.returned, "the operation did not block"
        _inject(fault, victim, peer, outer)
    return out


def _check(cell: Cell, out: _Outcome, victim: Socket | Acceptor) -> None:
    """The operation ended as the matrix says, and the object's state."""
    if cell.raises is None:
        assert out.exc is None
        assert out.returned
    else:
        assert type(out.exc) is cell.raises, f"expected {cell.raises}, got {out.exc!r}"
    if isinstance(out.exc, OperationAborted):
        assert out.exc.errno == errno.ECANCELED
    if isinstance(out.exc, trio.Cancelled):
        assert out.scope is not None
        assert out.scope.cancelled_caught
    assert victim.is_open == (cell.fault not in ("close", "release"))


def _transferred(out: _Outcome) -> int:
    n = getattr(out.exc, "bytes_transferred", None)
    assert isinstance(n, int), f"{out.exc!r} has no bytes_transferred"
    return n


async def _finish_and_drain(
    writer: Socket, reader: Socket, resume: Callable[[], Awaitable[object]] | None
) -> bytes:
    """Finish the write (if the writer is usable), then read to the end.

    Returns every byte ``reader`` received from the start of the test on.
    """
    received = bytearray()

    async def drain() -> None:
        received.extend(await _read_to_end(reader))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        if writer.is_open:
            if resume is not None:
                await resume()
            writer.shutdown("send")
    return bytes(received)


async def _cell_read_some(cell: Cell, rng: random.Random, tmp_path: Path) -> None:
    a, b = await _small_pair()
    async with a, b:
        prefix = rng.randbytes(rng.randrange(1, 2 * SMALL_BUFFER))
        got = bytearray()
        buf = bytearray(65536)

        async def op() -> None:
            while True:
                n = await b.read_some(buf)
                got.extend(buf[:n])

        async def send_prefix() -> None:
            await stream.write_all(a, prefix)

        out = await _run_blocked(cell.fault, b, a, op, send_prefix)
        _check(cell, out, b)
        # Everything sent before the fault was read, once.
        assert got == prefix
        if cell.fault in KEEPS_OPEN:
            # Nothing lost after it either: the next bytes come next.
            more = rng.randbytes(1000)
            await stream.write_all(a, more)
            rest = bytearray(len(more))
            assert await stream.read_all(b, rest) == len(more)
            assert rest == more


async def _cell_read_all(cell: Cell, rng: random.Random, tmp_path: Path) -> None:
    a, b = await _small_pair()
    async with a, b:
        prefix = rng.randbytes(rng.randrange(1, 2 * SMALL_BUFFER))
        suffix = rng.randbytes(rng.randrange(1, 2 * SMALL_BUFFER))
        buf = bytearray(len(prefix) + len(suffix))

        async def send_prefix() -> None:
            await stream.write_all(a, prefix)

        out = await _run_blocked(
            cell.fault, b, a, lambda: stream.read_all(b, buf), send_prefix
        )
        _check(cell, out, b)
        assert _transferred(out) == len(prefix)
        assert buf[: len(prefix)] == prefix
        if cell.fault in KEEPS_OPEN:
            await stream.write_all(a, suffix)
            assert await stream.read_all(b, memoryview(buf)[len(prefix) :]) == len(
                suffix
            )
            assert buf == prefix + suffix


async def _cell_wait_read(cell: Cell, rng: random.Random, tmp_path: Path) -> None:
    a, b = await _small_pair()
    async with a, b:
        out = await _run_blocked(cell.fault, b, a, lambda: b.wait("read"))
        _check(cell, out, b)
        if cell.then is not None and cell.raises is None:
            # wait() saw the condition; the read reports it.
            with pytest.raises(cell.then):
                await b.read_some(bytearray(16))
        if cell.fault in KEEPS_OPEN:
            await a.write_some(b"z")
            await b.wait("read")
            buf = bytearray(16)
            assert await b.read_some(buf) == 1
            assert buf[:1] == b"z"


async def _cell_write_some(cell: Cell, rng: random.Random, tmp_path: Path) -> None:
    a, b = await _small_pair()
    async with a, b:
        queued = _fill(a, rng)
        data = rng.randbytes(1000)
        out = await _run_blocked(cell.fault, a, b, lambda: a.write_some(data))
        _check(cell, out, a)
        if cell.fault in PEER_FAULTS:
            return  # the peer is gone: it received nothing we can compare

        # An aborted or cancelled write_some wrote nothing: the peer gets the
        # queued bytes, then (if the socket is still usable) ``data`` written
        # again, and nothing else.
        async def resume() -> None:
            await stream.write_all(a, data)

        received = await _finish_and_drain(a, b, resume)
        expected = queued + data if cell.fault in KEEPS_OPEN else queued
        assert received == expected


async def _cell_write_all(cell: Cell, rng: random.Random, tmp_path: Path) -> None:
    a, b = await _small_pair()
    async with a, b:
        payload = rng.randbytes(BIG)
        out = await _run_blocked(cell.fault, a, b, lambda: stream.write_all(a, payload))
        _check(cell, out, a)
        done = _transferred(out)
        assert 0 < done < len(payload)
        if cell.fault in PEER_FAULTS:
            return

        async def resume() -> None:
            assert await stream.write_all(a, memoryview(payload)[done:]) == (
                len(payload) - done
            )

        received = await _finish_and_drain(a, b, resume)
        # What the peer got is exactly what write_all said it wrote, plus
        # the rest when the transfer could go on.
        assert received == (payload if cell.fault in KEEPS_OPEN else payload[:done])


async def _cell_send_file(cell: Cell, rng: random.Random, tmp_path: Path) -> None:
    content = rng.randbytes(BIG + 2000)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    head = rng.randbytes(100)
    tail = rng.randbytes(100)
    offset = rng.randrange(1000)
    size = BIG
    whole = head + content[offset : offset + size] + tail
    a, b = await _small_pair()
    async with a, b:
        with path.open("rb") as f:
            out = await _run_blocked(
                cell.fault,
                a,
                b,
                lambda: a.send_file(f, offset, size, head=head, tail=tail),
            )
            _check(cell, out, a)
            done = _transferred(out)
            # Blocked in the file part: the head and some of the file went out.
            assert len(head) < done < len(head) + size
            if cell.fault in PEER_FAULTS:
                return

            async def resume() -> None:
                # As the docstring says: resume the file part at
                # offset + bytes_transferred - len(head).
                file_done = done - len(head)
                assert (
                    await a.send_file(
                        f, offset + file_done, size - file_done, tail=tail
                    )
                    == size - file_done
                )

            received = await _finish_and_drain(a, b, resume)
        assert received == (whole if cell.fault in KEEPS_OPEN else whole[:done])


async def _cell_accept(cell: Cell, rng: random.Random, tmp_path: Path) -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
        out = await _run_blocked(cell.fault, acceptor, None, acceptor.accept)
        _check(cell, out, acceptor)
        if cell.fault in KEEPS_OPEN:
            # No connection lost or taken by the aborted accept: the next one
            # is this client's.
            async with Socket() as client:
                await client.connect(LOOPBACK, acceptor.local_port)
                async with await acceptor.accept() as server:
                    assert server.remote_port == client.local_port


SCENARIOS: dict[str, Callable[[Cell, random.Random, Path], Awaitable[None]]] = {
    "read_some": _cell_read_some,
    "read_all": _cell_read_all,
    "wait_read": _cell_wait_read,
    "write_some": _cell_write_some,
    "write_all": _cell_write_all,
    "send_file": _cell_send_file,
    "accept": _cell_accept,
}


def test_fault_matrix_covers_every_operation_and_fault() -> None:
    assert set(MATRIX) == set(SCENARIOS)
    faults = {cell.fault for cell in CELLS}
    assert faults == set(PEER_FAULTS + ABORTS + TRIO_CANCELS)
    # Every operation meets every local fault.
    for op in MATRIX:
        assert set(_LOCAL) <= set(MATRIX[op])
    assert len(CELLS) == 50


@pytest.mark.parametrize("cell", CELLS, ids=[f"{c.op}-{c.fault}" for c in CELLS])
async def test_fault_matrix_cell_ends_as_the_table_says(
    cell: Cell, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    before = open_fds()
    # A string seed is hashed with SHA-512: the same bytes on every run.
    rng = random.Random(f"{cell.op}-{cell.fault}")
    # A watchdog: an operation that a fault failed to end would otherwise
    # hang the run.  Mock time moves only when every task is blocked.
    with trio.fail_after(WATCHDOG):
        await SCENARIOS[cell.op](cell, rng, tmp_path)
    assert open_fds() == before


# -- cancellation at every checkpoint ------------------------------------------

# Random payloads per operation: each is cancelled at every one of its
# checkpoints in turn, so each costs a few dozen transfers.
PAYLOADS_PER_OP = 3


class _AtCheckpoint(trio.abc.Instrument):
    """Run ``action`` while ``task`` is suspended at its ``k``-th checkpoint.

    Counts the steps of ``task``: each ends where it yielded.  After the
    ``k``-th, ``action`` runs at the next ``before_io_wait``: after the rest
    of that batch of tasks, before ``task`` can run again, and from outside
    any task, as another task's call would.  (Running it in
    ``after_task_step`` would not do for ``Socket.cancel()``: Trio still
    counts the stepped task as the current one there, and
    ``notify_closing`` will not wake the current task.)  ``k`` counts this
    task's own suspensions only, so k = 1, 2, ... reaches every checkpoint of
    the call, whatever order Trio runs the other tasks in.
    """

    def __init__(
        self, task: trio.lowlevel.Task, k: int, action: Callable[[], object]
    ) -> None:
        self.task = task
        self.k = k
        self.action = action
        self.steps = 0
        self.armed = False

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1
            if self.steps == self.k:
                self.armed = True

    def before_io_wait(self, timeout: float) -> None:
        if self.armed:
            self.armed = False
            self.action()


async def _cancelled_at(k: int, op: str, how: str, payload: bytes) -> str:
    """One transfer of ``payload`` whose ``op`` is cancelled at checkpoint k.

    The transfer is then finished on the same socket from
    ``bytes_transferred``.  Returns how the cancelled call ended:
    ``"Cancelled"``, ``"OperationAborted"`` or ``"done"`` (it had fewer
    than ``k`` checkpoints).
    """
    a, b = await _small_pair()
    async with a, b:
        received = bytearray(len(payload))
        victim = b if op == "read_all" else a
        view = memoryview(payload)
        ended = "done"
        done = len(payload)
        async with trio.open_nursery() as nursery:
            if op == "read_all":
                nursery.start_soon(stream.write_all, a, payload)
            else:
                nursery.start_soon(stream.read_all, b, received)
            scope = trio.CancelScope()
            instrument = _AtCheckpoint(
                trio.lowlevel.current_task(),
                k,
                scope.cancel if how == "trio" else victim.cancel,
            )
            trio.lowlevel.add_instrument(instrument)
            try:
                with scope:
                    try:
                        if op == "read_all":
                            assert await stream.read_all(b, received) == len(payload)
                        elif op == "write_all":
                            assert await stream.write_all(a, payload) == len(payload)
                        else:
                            # Vectored: the payload in 8 pieces.
                            cuts = sorted(
                                random.Random(k).sample(range(1, len(payload)), 7)
                            )
                            pieces = [
                                view[i:j]
                                for i, j in itertools.pairwise([0, *cuts, len(payload)])
                            ]
                            assert await stream.write_all(a, pieces) == len(payload)
                    except (trio.Cancelled, OperationAborted) as exc:
                        ended = type(exc).__name__
                        done = getattr(exc, "bytes_transferred", -1)
                        if isinstance(exc, trio.Cancelled):
                            raise
            finally:
                trio.lowlevel.remove_instrument(instrument)
            assert 0 <= done <= len(payload)
            if ended != "done":
                assert scope.cancelled_caught == (how == "trio")
                # Finish from where the cancelled call stopped.
                if op == "read_all":
                    assert await stream.read_all(b, memoryview(received)[done:]) == (
                        len(payload) - done
                    )
                else:
                    assert await stream.write_all(a, view[done:]) == len(payload) - done
        assert received == payload
        # And nothing more: the byte stream ends where the payload does.
        a.shutdown("send")
        with pytest.raises(EndOfFile):
            await b.read_some(bytearray(1))
    return ended


@pytest.mark.parametrize("how", ["trio", "socket"])
@pytest.mark.parametrize("op", ["write_all", "write_all_vectored", "read_all"])
async def test_stream_cancelled_at_every_checkpoint_finishes_intact(
    op: str, how: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Cancel at checkpoint k for k = 1, 2, ... until the call has fewer.

    ``how``: the task's own cancel scope (``trio.Cancelled``) or the
    socket's ``cancel()`` from outside the task (``OperationAborted``).
    """
    rng = random.Random(f"every-checkpoint-{op}")
    expected = "Cancelled" if how == "trio" else "OperationAborted"
    for _ in range(PAYLOADS_PER_OP):
        payload = rng.randbytes(rng.randrange(64 * 1024, 192 * 1024))
        ends = []
        for k in itertools.count(1):
            with trio.fail_after(WATCHDOG):
                ends.append(await _cancelled_at(k, op, how, payload))
            if ends[-1] == "done":
                break
            assert ends[-1] == expected
            assert k < 2000, "the transfer never ran out of checkpoints"
        # The payload is far larger than the buffers: the call blocked many
        # times, and every one of those checkpoints was tried.
        assert len(ends) > 8


# -- ResourceWarning ------------------------------------------------------------


def _resource_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ResourceWarning)]


def _fd_of(sock: Socket | Acceptor) -> int:
    raw = sock._sock
    assert raw is not None
    return raw.fileno()


def _drop(forgotten: list[object]) -> None:
    """Let go of the last references, then run the collector too."""
    forgotten.clear()
    gc.collect()


def _assert_closed(fd: int) -> None:
    with pytest.raises(OSError) as exc_info:
        os.fstat(fd)
    assert exc_info.value.errno == errno.EBADF


# What the stdlib socket's finalizer says (3.10 to 3.13 print the family and
# type differently; the start is the same).
_UNCLOSED = r"^unclosed <socket\.socket fd=\d+, "


async def test_Socket_forgotten_is_closed_by_gc_with_a_ResourceWarning() -> None:
    """A Socket the program never closed: what happens when it is collected.

    Socket and Acceptor have no finalizer of their own.  The stdlib socket
    each owns has one: it closes the descriptor and emits ResourceWarning
    ("unclosed <socket.socket ...>"), the honest signal that a close() was
    forgotten.  Nothing leaks, but under ``-X dev`` with warnings as errors
    the warning becomes an exception raised in a finalizer, which pytest
    reports (as an unraisable exception) in whatever test the collection
    happened to run: close sockets, or use ``async with``.
    """
    a, b = await socket_pair()
    fds = [_fd_of(a), _fd_of(b)]
    forgotten: list[object] = [a, b]
    del a, b
    gc.collect()
    with pytest.warns(ResourceWarning, match=_UNCLOSED) as record:
        _drop(forgotten)
    assert len(_resource_warnings(record.list)) == 2
    for fd in fds:
        _assert_closed(fd)


async def test_Acceptor_forgotten_is_closed_by_gc_with_a_ResourceWarning() -> None:
    acceptor = ip.tcp.listen(LOOPBACK, 0)
    fd = _fd_of(acceptor)
    forgotten: list[object] = [acceptor]
    del acceptor
    gc.collect()
    with pytest.warns(ResourceWarning, match=_UNCLOSED) as record:
        _drop(forgotten)
    assert len(_resource_warnings(record.list)) == 1
    _assert_closed(fd)


@asynccontextmanager
async def _no_resource_warning() -> AsyncIterator[None]:
    """Fail if the block leaves a ResourceWarning or a descriptor behind."""
    # What earlier tests left for the collector is not this block's doing.
    gc.collect()
    before = open_fds()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert _resource_warnings(record) == []
    assert open_fds() == before


class _DeadPort:
    """A loopback port where nothing listens: held bound, so nobody can."""

    def __enter__(self) -> int:
        self._holder = socket.socket()
        self._holder.bind((LOOPBACK, 0))
        port: int = self._holder.getsockname()[1]
        return port

    def __exit__(self, *exc_info: object) -> None:
        self._holder.close()


async def _path_accept(tmp_path: Path) -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor, Socket() as client:
        await client.connect(LOOPBACK, acceptor.local_port)
        async with await acceptor.accept() as server:
            await stream.write_all(client, b"x")
            assert await stream.read_all(server, bytearray(1)) == 1


async def _path_accept_aborted(tmp_path: Path) -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor, trio.open_nursery() as nursery:
        nursery.start_soon(_abort_when_blocked, acceptor, "close")
        with pytest.raises(OperationAborted):
            await acceptor.accept()


async def _path_socket_pair(tmp_path: Path) -> None:
    a, b = await socket_pair()
    async with a, b:
        await stream.write_all(a, b"ping")
        assert await stream.read_all(b, bytearray(4)) == 4


async def _path_dial(tmp_path: Path) -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
        sock = await ip.dial(LOOPBACK, acceptor.local_port)
        async with sock, await acceptor.accept():
            pass


async def _path_dial_refused(tmp_path: Path) -> None:
    with _DeadPort() as port, pytest.raises(ConnectionRefusedError):
        await ip.dial(LOOPBACK, port)


async def _path_connect_refused(tmp_path: Path) -> None:
    with _DeadPort() as port:
        async with Socket() as sock:
            with pytest.raises(ConnectionRefusedError):
                await sock.connect(LOOPBACK, port)
            # ip.connect closes the failed attempt's socket before each
            # next one: two entries, two descriptors made and closed.
            with pytest.raises(ConnectionRefusedError):
                await ip.connect(sock, [(LOOPBACK, port), (LOOPBACK, port)])


async def _path_listen_in_use(tmp_path: Path) -> None:
    async with ip.tcp.listen(LOOPBACK, 0) as acceptor:
        with pytest.raises(OSError) as exc_info:
            ip.tcp.listen(LOOPBACK, acceptor.local_port)
        assert exc_info.value.errno == errno.EADDRINUSE


async def _path_send_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    content = random.Random(5).randbytes(BIG)
    path.write_bytes(content)
    a, b = await _small_pair()
    async with a, b:
        with path.open("rb") as f:
            received = bytearray()

            async def drain() -> None:
                received.extend(await _read_to_end(b))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                assert await a.send_file(f, 0, len(content), head=b"h") == len(content)
                a.shutdown("send")
            assert received == b"h" + content
            # And one aborted midway by close().
            c, d = await _small_pair()
            async with c, d, trio.open_nursery() as nursery:
                nursery.start_soon(_abort_when_blocked, c, "close")
                with pytest.raises(OperationAborted):
                    await c.send_file(f, 0, len(content))


_URGENT_WAITS: list[Callable[[Socket], Awaitable[object]]] = [
    lambda s: s.wait("error"),
    lambda s: s.receive(bytearray(1), ["out_of_band"]),
]


async def _path_urgent(tmp_path: Path) -> None:
    a, b = await socket_pair()
    async with a, b:
        await a.send(b"!", ["out_of_band"])
        await b.wait("error")
        buf = bytearray(1)
        assert await b.receive(buf, ["out_of_band"]) == 1
        assert buf == b"!"
    # Both urgent waits, blocked, then aborted by close() and by cancel().
    for wait in _URGENT_WAITS:
        for abort in ("close", "cancel"):
            c, d = await socket_pair()
            async with c, d, trio.open_nursery() as nursery:
                nursery.start_soon(_abort_when_blocked, d, abort)
                with pytest.raises(OperationAborted):
                    await wait(d)


async def _path_urgent_without_epoll(tmp_path: Path) -> None:
    # The portable fallback: poll() in a thread, woken by a private
    # socketpair.
    saved = _urgent._USE_EPOLL
    _urgent._USE_EPOLL = False
    try:
        await _path_urgent(tmp_path)
    finally:
        _urgent._USE_EPOLL = saved


async def _abort_when_blocked(obj: Socket | Acceptor, how: str) -> None:
    await wait_all_tasks_blocked()
    obj.close() if how == "close" else obj.cancel()


async def _path_scanner(tmp_path: Path) -> None:
    a, b = await socket_pair()
    async with a, b:
        await stream.write_all(a, b"one\r\ntwo\r\nthree")
        a.shutdown("send")
        scanner = stream.Scanner(b, b"\r\n")
        assert [line async for line in scanner] == [b"one", b"two", b"three"]


async def _path_aborted_and_cancelled_reads(tmp_path: Path) -> None:
    a, b = await socket_pair()
    async with a, b:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_abort_when_blocked, b, "close")
            with pytest.raises(OperationAborted):
                await b.read_some(bytearray(8))
        with trio.CancelScope() as scope:
            scope.cancel()
            await a.read_some(bytearray(8))
        assert scope.cancelled_caught


LIBRARY_PATHS: dict[str, Callable[[Path], Awaitable[None]]] = {
    "accept": _path_accept,
    "accept_aborted": _path_accept_aborted,
    "socket_pair": _path_socket_pair,
    "dial": _path_dial,
    "dial_refused": _path_dial_refused,
    "connect_refused": _path_connect_refused,
    "listen_in_use": _path_listen_in_use,
    "send_file": _path_send_file,
    "urgent": _path_urgent,
    "urgent_without_epoll": _path_urgent_without_epoll,
    "scanner": _path_scanner,
    "aborted_reads": _path_aborted_and_cancelled_reads,
}


@pytest.mark.parametrize("path", list(LIBRARY_PATHS))
async def test_library_path_leaves_no_ResourceWarning(
    path: str, tmp_path: Path
) -> None:
    async with _no_resource_warning():
        await LIBRARY_PATHS[path](tmp_path)


# -- dead peers (SPEC §10): the kernel's own timers, on the real clock ---------------


async def _connected(acceptor: Acceptor) -> tuple[Socket, Socket]:
    client = Socket()
    await client.connect(Address.loopback_v4(), acceptor.local_port)
    return client, await acceptor.accept()


async def test_keep_alive_timers_find_a_vanished_peer_under_an_idle_read() -> None:
    async with listening() as acceptor:
        client, server = await _connected(acceptor)
        async with client, server:
            client.set_option("keep_alive", True)
            client.set_option("keep_alive_idle", 1)
            client.set_option("keep_alive_interval", 1)
            client.set_option("keep_alive_count", 1)
            with blackhole(acceptor.local_port):
                start = trio.current_time()
                # The bound: 1 s of silence, 1 probe 1 s apart, then the
                # kernel gives up; a margin for a loaded machine.
                with trio.fail_after(8), pytest.raises(TimeoutError) as info:
                    await client.read_some(bytearray(16))
                elapsed = trio.current_time() - start
    assert info.value.errno == errno.ETIMEDOUT
    assert 1.5 <= elapsed < 8


async def _write_for_ever(sock: Socket) -> None:
    while True:
        await sock.write_some(b"x" * 65536)


async def test_user_timeout_finds_a_vanished_peer_under_a_blocked_write() -> None:
    async with listening() as acceptor:
        client, server = await _connected(acceptor)
        async with client, server:
            client.set_option("user_timeout", 1)
            with blackhole(acceptor.local_port):
                start = trio.current_time()
                # Nothing written is acknowledged any more: writes fill the
                # buffers and block, and after 1 s unacknowledged the
                # kernel drops the connection.
                with trio.fail_after(8), pytest.raises(TimeoutError) as info:
                    await _write_for_ever(client)
                elapsed = trio.current_time() - start
    assert info.value.errno == errno.ETIMEDOUT
    assert 0.9 <= elapsed < 8


async def test_a_timeout_seen_by_the_writer_is_not_a_clean_end_for_the_reader() -> None:
    # The kernel reports ETIMEDOUT to one syscall; without the socket's
    # memory the reader, woken at the same instant, got a plain end of
    # stream (SPEC §10).
    async with listening() as acceptor:
        client, server = await _connected(acceptor)
        async with client, server:
            client.set_option("user_timeout", 1)
            caught: dict[str, BaseException] = {}

            async def run(name: str, op: Callable[[], Awaitable[object]]) -> None:
                try:
                    await op()
                except BaseException as exc:
                    caught[name] = exc

            with blackhole(acceptor.local_port), trio.fail_after(8):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        run, "reader", lambda: client.read_some(bytearray(8))
                    )
                    nursery.start_soon(run, "writer", lambda: _write_for_ever(client))
    assert type(caught["writer"]) is TimeoutError
    assert type(caught["reader"]) is TimeoutError
