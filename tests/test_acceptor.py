"""Tests for ip.tcp.Acceptor (trio_emtcp/_acceptor.py, _base.py)."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import assert_checkpoints, wait_all_tasks_blocked

from trio_emtcp import AlreadyOpenError, EndOfFile, OperationAborted
from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket

from .helpers import ABORTS, LOOPBACK, no_fd_leak, open_fds
from .helpers import listening as _listening

LOOPBACK_V6 = Address.loopback_v6()


async def _connect(acceptor: Acceptor) -> Socket:
    client = Socket()
    await client.connect(acceptor.local_address, acceptor.local_port)
    return client


class _ScriptedSocket(socket.socket):
    """A listening stdlib socket whose first ``_accept`` calls fail.

    ``Acceptor.accept`` calls ``_accept`` (the primitive under
    ``socket.accept``); this replays the errors of a connection that died
    in the backlog, which loopback cannot produce on demand.
    """

    def __init__(self, fd: int, errors: list[int]) -> None:
        super().__init__(fileno=fd)
        self.errors = errors
        self.calls = 0

    def _accept(self) -> tuple[int, Any]:
        self.calls += 1
        if self.errors:
            code = self.errors.pop(0)
            raise OSError(code, os.strerror(code))
        result: tuple[int, Any] = super()._accept()  # type: ignore[misc]
        return result


def _script(acceptor: Acceptor, errors: list[int]) -> _ScriptedSocket:
    """Swap the acceptor's descriptor for a scripted one (same fd)."""
    fd = acceptor.release()
    scripted = _ScriptedSocket(fd, errors)
    scripted.setblocking(False)
    acceptor._sock = scripted
    return scripted


# -- life cycle -----------------------------------------------------------------


async def test_Acceptor_new_is_closed() -> None:
    acceptor = Acceptor()
    assert not acceptor.is_open
    assert repr(acceptor) == "<trio_emtcp.ip.tcp.Acceptor closed>"


@pytest.mark.parametrize(
    ("family", "af"),
    [("v4", socket.AF_INET), ("v6", socket.AF_INET6), (LOOPBACK_V6, socket.AF_INET6)],
)
async def test_Acceptor_open_families(family: Any, af: int) -> None:
    async with Acceptor() as acceptor:
        acceptor.open(family)
        assert acceptor.is_open
        assert acceptor.trio_socket.family == af
        assert acceptor.trio_socket.type == socket.SOCK_STREAM
        name = "v4 0.0.0.0:0" if af == socket.AF_INET else "v6 [::]:0"
        assert repr(acceptor) == f"<trio_emtcp.ip.tcp.Acceptor {name}, not listening>"
    assert not acceptor.is_open


async def test_Acceptor_open_twice_raises_already_open() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        fd = acceptor.trio_socket.fileno()
        with pytest.raises(AlreadyOpenError, match=r"^already open$"):
            acceptor.open("v6")
        assert acceptor.trio_socket.fileno() == fd


@pytest.mark.parametrize(
    ("family", "exc"),
    [("v5", ValueError), ("", ValueError), (4, TypeError), (None, TypeError)],
)
async def test_Acceptor_open_bad_family(family: Any, exc: type[Exception]) -> None:
    acceptor = Acceptor()
    with pytest.raises(exc, match=r"^family: "):
        acceptor.open(family)
    assert not acceptor.is_open


async def test_Acceptor_close_is_idempotent_and_aclose_checkpoints() -> None:
    with no_fd_leak():
        acceptor = _listening()
        acceptor.close()
        acceptor.close()
        assert not acceptor.is_open
        acceptor = _listening()
        with assert_checkpoints():
            await acceptor.aclose()
        assert not acceptor.is_open
        with assert_checkpoints():
            await acceptor.aclose()  # closed already: still a checkpoint


async def test_Acceptor_aclose_closes_even_when_cancelled() -> None:
    acceptor = _listening()
    with trio.CancelScope() as scope:
        scope.cancel()
        await acceptor.aclose()
    assert scope.cancelled_caught
    assert not acceptor.is_open


async def test_Acceptor_async_with_closes_on_error() -> None:
    with no_fd_leak():
        with pytest.raises(RuntimeError, match=r"^boom$"):
            async with _listening() as acceptor:
                raise RuntimeError("boom")
        assert not acceptor.is_open


@pytest.mark.parametrize(
    "member",
    [
        lambda a: a.cancel(),
        lambda a: a.release(),
        lambda a: a.bind(LOOPBACK, 0),
        lambda a: a.listen(),
        lambda a: a.listen(5),
        lambda a: a.set_option("reuse_address", True),
        lambda a: a.set_option("enable_connection_aborted", True),
        lambda a: a.get_option("reuse_address"),
        lambda a: a.get_option("enable_connection_aborted"),
        lambda a: a.local_address,
        lambda a: a.local_port,
        lambda a: a.trio_socket,
    ],
    ids=[
        "cancel",
        "release",
        "bind",
        "listen",
        "listen_backlog",
        "set_option",
        "set_option_flag",
        "get_option",
        "get_option_flag",
        "local_address",
        "local_port",
        "trio_socket",
    ],
)
@pytest.mark.parametrize("state", ["new", "closed"])
async def test_Acceptor_closed_members_raise_ebadf(
    member: Callable[[Acceptor], object], state: str
) -> None:
    acceptor = Acceptor()
    if state == "closed":
        acceptor.open("v4")
        acceptor.close()
    with pytest.raises(
        OSError, match=r"^\[Errno 9\] Bad file descriptor: the socket is closed$"
    ) as info:
        member(acceptor)
    assert info.value.errno == errno.EBADF
    assert not acceptor.is_open


async def test_Acceptor_accept_on_closed_raises_ebadf_after_checkpoint() -> None:
    acceptor = Acceptor()
    with (
        assert_checkpoints(),
        pytest.raises(OSError, match=r"^\[Errno 9\] ") as info,
    ):
        await acceptor.accept()
    assert info.value.errno == errno.EBADF


async def test_Acceptor_accept_on_closed_honours_cancellation() -> None:
    acceptor = Acceptor()
    with trio.CancelScope() as scope:
        scope.cancel()
        await acceptor.accept()
    assert scope.cancelled_caught


# -- bind and listen ------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "text"), [("v4", "0.0.0.0"), ("v6", "::")], ids=["v4", "v6"]
)
async def test_Acceptor_unbound_local_endpoint(family: str, text: str) -> None:
    async with Acceptor() as acceptor:
        acceptor.open(family)
        assert acceptor.local_address == Address(text)
        assert acceptor.local_port == 0


@pytest.mark.parametrize("address", ["127.0.0.1", LOOPBACK, "::1", LOOPBACK_V6])
async def test_Acceptor_bind_sets_local_endpoint(address: str | Address) -> None:
    async with Acceptor() as acceptor:
        acceptor.open(Address(address))
        acceptor.bind(address, 0)
        assert acceptor.local_address == Address(address)
        assert 0 < acceptor.local_port <= 0xFFFF


@pytest.mark.parametrize(
    ("address", "port", "exc", "pattern"),
    [
        ("localhost", 0, ValueError, r"^address: 'localhost' is not a numeric IP "),
        (b"127.0.0.1", 0, TypeError, r"^address: expected an ip\.Address "),
        (LOOPBACK, 65536, ValueError, r"^port: must be in 0\.\.65535, got 65536$"),
        (LOOPBACK, -1, ValueError, r"^port: must be in 0\.\.65535, got -1$"),
        (LOOPBACK, "80", TypeError, r"^port: expected an int, got str$"),
        (LOOPBACK, True, TypeError, r"^port: expected an int, got bool$"),
        ("::1", 0, ValueError, r"^address: ::1 is not an IPv4 address"),
    ],
)
async def test_Acceptor_bind_bad_arguments(
    address: Any, port: Any, exc: type[Exception], pattern: str
) -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        with pytest.raises(exc, match=pattern):
            acceptor.bind(address, port)
        assert acceptor.local_port == 0


async def test_Acceptor_bind_in_use_leaks_nothing() -> None:
    async with _listening() as first:
        with no_fd_leak():
            acceptor = Acceptor()
            acceptor.open("v4")
            port = first.local_port
            pattern = rf"^\[Errno 98\] Address already in use: '127\.0\.0\.1:{port}'$"
            with pytest.raises(OSError, match=pattern) as info:
                acceptor.bind(LOOPBACK, port)
            assert type(info.value) is OSError
            assert info.value.errno == errno.EADDRINUSE
            # The failed bind leaves the acceptor open and unbound.
            assert acceptor.is_open
            assert acceptor.local_port == 0
            acceptor.close()


# -- bind/listen errors name the endpoint (SPEC §12) ---------------------------


async def test_Acceptor_bind_in_use_names_the_v6_endpoint() -> None:
    async with _listening(Address.loopback_v6()) as first, Acceptor() as acceptor:
        acceptor.open("v6")
        port = first.local_port
        with pytest.raises(OSError) as info:
            acceptor.bind("::1", port)
        exc = info.value
        assert type(exc) is OSError
        assert exc.errno == errno.EADDRINUSE
        # The system's words stay in strerror; the endpoint is the object of
        # the error, where Python puts a file's name.
        assert exc.strerror == os.strerror(errno.EADDRINUSE)
        assert exc.filename == f"[::1]:{port}"
        assert str(exc) == f"[Errno 98] Address already in use: '[::1]:{port}'"


async def test_Acceptor_bind_address_not_here_names_the_endpoint() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        # TEST-NET-1 (RFC 5737): no interface of this machine has it.
        with pytest.raises(OSError) as info:
            acceptor.bind("192.0.2.1", 8080)
        assert info.value.errno == errno.EADDRNOTAVAIL
        assert str(info.value) == (
            f"[Errno {errno.EADDRNOTAVAIL}] Cannot assign requested address: "
            "'192.0.2.1:8080'"
        )


class _RefusingSock:
    """A stdlib socket stand-in whose bind/listen fail with a scripted errno."""

    family = socket.AF_INET

    def __init__(self, error: OSError) -> None:
        self.error = error

    def bind(self, sockaddr: object) -> None:
        raise self.error

    def listen(self, backlog: int) -> None:
        raise self.error

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 80)


@pytest.mark.parametrize(
    ("error", "named"),
    [
        # What an unprivileged process gets for a port below 1024 (the tests
        # may run as root, hence the stand-in).
        (PermissionError(errno.EACCES, os.strerror(errno.EACCES)), True),
        (OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL)), True),
        # Not about the address: left as the system said it.
        (OSError(errno.EINVAL, os.strerror(errno.EINVAL)), False),
    ],
    ids=["EACCES", "EADDRNOTAVAIL", "EINVAL"],
)
async def test_Acceptor_bind_refused_names_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, error: OSError, named: bool
) -> None:
    monkeypatch.setattr(Acceptor, "_live", lambda self: _RefusingSock(error))
    with pytest.raises(type(error)) as info:
        Acceptor().bind(LOOPBACK, 80)
    assert info.value is error  # the same exception, class and errno
    assert info.value.strerror == os.strerror(error.errno or 0)
    assert info.value.filename == ("127.0.0.1:80" if named else None)


async def test_Acceptor_listen_refused_stays_the_system_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
    sock = _RefusingSock(error)
    monkeypatch.setattr(Acceptor, "_live", lambda self: sock)
    with pytest.raises(OSError) as info:
        Acceptor().listen()
    assert info.value is error
    assert info.value.filename == "127.0.0.1:80"
    # Should the endpoint be unknowable, the system's error still comes out.
    error.filename = None

    def getsockname() -> tuple[str, int]:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.setattr(sock, "getsockname", getsockname)
    with pytest.raises(OSError) as info:
        Acceptor().listen()
    assert info.value is error
    assert info.value.filename is None


async def test_Acceptor_listen_in_use_names_the_endpoint() -> None:
    # Both bound with reuse_address: the second bind succeeds, and the
    # kernel refuses the second listen instead.
    async with Acceptor() as first, Acceptor() as second:
        for acceptor in (first, second):
            acceptor.open("v4")
            acceptor.set_option("reuse_address", True)
        first.bind(LOOPBACK, 0)
        port = first.local_port
        second.bind(LOOPBACK, port)
        first.listen()
        with pytest.raises(OSError) as info:
            second.listen()
        exc = info.value
        assert type(exc) is OSError
        assert exc.errno == errno.EADDRINUSE
        assert str(exc) == f"[Errno 98] Address already in use: '127.0.0.1:{port}'"


async def test_Acceptor_bind_twice_is_einval() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        acceptor.bind(LOOPBACK, 0)
        with pytest.raises(OSError, match=r"^\[Errno 22\] ") as info:
            acceptor.bind(LOOPBACK, 0)
        assert info.value.errno == errno.EINVAL


async def test_Acceptor_listen_without_bind_takes_ephemeral_port() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        acceptor.listen()
        assert acceptor.local_address == Address.any_v4()
        assert acceptor.local_port != 0
        async with (
            await _connect_to(LOOPBACK, acceptor.local_port),
            await acceptor.accept() as server,
        ):
            assert server.local_port == acceptor.local_port


async def _connect_to(address: Address, port: int) -> Socket:
    client = Socket()
    await client.connect(address, port)
    return client


@pytest.mark.parametrize(
    ("backlog", "exc", "pattern"),
    [
        (-1, ValueError, r"^backlog: must be in 0..2147483647, got -1$"),
        ("5", TypeError, r"^backlog: expected an int or None, got str$"),
        (True, TypeError, r"^backlog: expected an int or None, got bool$"),
        (1.5, TypeError, r"^backlog: expected an int or None, got float$"),
    ],
)
async def test_Acceptor_listen_bad_backlog(
    backlog: Any, exc: type[Exception], pattern: str
) -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        acceptor.bind(LOOPBACK, 0)
        with pytest.raises(exc, match=pattern):
            acceptor.listen(backlog)
        # Not listening: accept says so.
        with pytest.raises(OSError, match=r"^\[Errno 22\] "):
            await acceptor.accept()


async def test_Acceptor_listen_on_closed_is_ebadf() -> None:
    acceptor = Acceptor()
    acceptor.open("v4")
    acceptor.close()
    with pytest.raises(OSError, match=r"^\[Errno 9\] ") as info:
        acceptor.listen()
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize("backlog", [None, 0, 1, 128])
async def test_Acceptor_listen_backlogs_accept(backlog: int | None) -> None:
    async with (
        _listening(backlog=backlog) as acceptor,
        await _connect(acceptor) as client,
        await acceptor.accept() as server,
    ):
        assert server.remote_port == client.local_port


# -- accept ---------------------------------------------------------------------


@pytest.mark.parametrize("address", [LOOPBACK, LOOPBACK_V6], ids=["v4", "v6"])
async def test_Acceptor_accept_fast_path(address: Address) -> None:
    async with _listening(address) as acceptor, await _connect(acceptor) as client:
        # The connection is queued: accept does not block, yet it is a
        # full checkpoint.
        with assert_checkpoints():
            server = await acceptor.accept()
        async with server:
            assert isinstance(server, Socket)
            assert server.is_open
            assert server.trio_socket.family == address.family
            assert server.local_address == address
            assert server.local_port == acceptor.local_port
            assert server.remote_address == client.local_address
            assert server.remote_port == client.local_port
            # Non-blocking and usable in both directions.
            assert not os.get_blocking(server.trio_socket.fileno())
            assert await client.write_some(b"ping") == 4
            buf = bytearray(8)
            assert await server.read_some(buf) == 4
            assert buf[:4] == b"ping"
            assert await server.write_some(b"pong") == 4
            assert await client.read_some(buf) == 4
            assert buf[:4] == b"pong"


async def test_Acceptor_accept_slow_path() -> None:
    async with _listening() as acceptor:
        accepted: list[Socket] = []

        async def accepter() -> None:
            with assert_checkpoints():
                accepted.append(await acceptor.accept())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accepter)
            await wait_all_tasks_blocked()
            assert not accepted
            client = await _connect(acceptor)
        async with client, accepted[0] as server:
            assert server.remote_port == client.local_port


async def test_Acceptor_accept_on_non_listening_is_einval() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        with (
            assert_checkpoints(),
            pytest.raises(OSError, match=r"^\[Errno 22\] Invalid argument$") as info,
        ):
            await acceptor.accept()
        assert info.value.errno == errno.EINVAL
        acceptor.bind(LOOPBACK, 0)
        with pytest.raises(OSError, match=r"^\[Errno 22\] "):
            await acceptor.accept()
        # Still usable once it listens.
        acceptor.listen()
        async with await _connect(acceptor), await acceptor.accept():
            pass


@pytest.mark.parametrize("how", list(ABORTS))
async def test_Acceptor_accept_aborted_from_another_task(how: str) -> None:
    with no_fd_leak():
        acceptor = _listening()
        outcome: list[BaseException] = []

        async def accepter() -> None:
            try:
                await acceptor.accept()
            except BaseException as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accepter)
            await wait_all_tasks_blocked()
            ABORTS[how](acceptor)
        assert len(outcome) == 1
        exc = outcome[0]
        assert isinstance(exc, OperationAborted)
        assert exc.errno == errno.ECANCELED
        assert str(exc) == f"[Errno {errno.ECANCELED}] operation aborted"
        assert acceptor.is_open == (how == "cancel")
        if how == "cancel":
            # The acceptor still works, and nothing queued was lost.
            async with (
                await _connect(acceptor) as client,
                await acceptor.accept() as server,
            ):
                assert server.remote_port == client.local_port
        acceptor.close()


async def test_Acceptor_release_hands_back_a_listening_fd() -> None:
    with no_fd_leak():
        acceptor = _listening()
        port = acceptor.local_port
        outcome: list[BaseException] = []

        async def accepter() -> None:
            try:
                await acceptor.accept()
            except OperationAborted as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accepter)
            await wait_all_tasks_blocked()
            fd = acceptor.release()
        assert len(outcome) == 1
        assert not acceptor.is_open
        # The fd was not closed: adopt it again and accept through it.
        again = Acceptor()
        again.assign("v4", fd)
        async with again:
            assert again.local_port == port
            async with await _connect(again) as client, await again.accept() as server:
                assert server.remote_port == client.local_port


async def test_Acceptor_outer_cancel_is_trio_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _listening() as acceptor:
        with trio.move_on_after(1) as scope:
            await acceptor.accept()
        assert scope.cancelled_caught
        assert acceptor.is_open
        # Nothing registered is left behind: the next accept works.
        async with (
            await _connect(acceptor) as client,
            await acceptor.accept() as server,
        ):
            assert server.remote_port == client.local_port


@pytest.mark.parametrize("how", list(ABORTS))
@pytest.mark.parametrize("order", ["outer_first", "acceptor_first"])
async def test_Acceptor_both_cancels_in_one_tick_give_trio_cancelled(
    how: str, order: str
) -> None:
    acceptor = _listening()
    outcome: list[BaseException] = []
    scope = trio.CancelScope()

    async def accepter() -> None:
        with scope:
            try:
                await acceptor.accept()
            except BaseException as exc:
                outcome.append(exc)
                raise

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accepter)
        await wait_all_tasks_blocked()
        if order == "outer_first":
            scope.cancel()
            ABORTS[how](acceptor)
        else:
            ABORTS[how](acceptor)
            scope.cancel()
    acceptor.close()
    assert len(outcome) == 1
    assert isinstance(outcome[0], trio.Cancelled)


async def test_Acceptor_fifo_of_two_accepters() -> None:
    async with _listening() as acceptor:
        order: list[tuple[str, int]] = []

        async def accepter(name: str) -> None:
            server = await acceptor.accept()
            order.append((name, server.remote_port))
            server.close()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accepter, "first")
            await wait_all_tasks_blocked()
            nursery.start_soon(accepter, "second")
            await wait_all_tasks_blocked()
            async with await _connect(acceptor) as c1:
                await wait_all_tasks_blocked()
                async with await _connect(acceptor) as c2:
                    await wait_all_tasks_blocked()
                    ports = [c1.local_port, c2.local_port]
        assert order == [("first", ports[0]), ("second", ports[1])]


async def test_Acceptor_fifo_when_both_connections_are_queued() -> None:
    # Both accepters queue while nothing is pending; then two connections
    # arrive in one tick.  The head takes the first, hands over, and the
    # second accepter takes the second: no BusyResourceError, no loss.
    async with _listening() as acceptor:
        got: dict[str, int] = {}

        async def accepter(name: str) -> None:
            async with await acceptor.accept() as server:
                got[name] = server.remote_port

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accepter, "first")
            await wait_all_tasks_blocked()
            nursery.start_soon(accepter, "second")
            await wait_all_tasks_blocked()
            raw = [socket.socket(), socket.socket()]
            try:
                for sock in raw:
                    sock.connect(("127.0.0.1", acceptor.local_port))
                ports = [sock.getsockname()[1] for sock in raw]
                await wait_all_tasks_blocked()
            finally:
                for sock in raw:
                    sock.close()
        assert sorted(got.values()) == sorted(ports)
        assert got["first"] == ports[0]


async def test_Acceptor_cancel_aborts_queued_accepters_too() -> None:
    async with _listening() as acceptor:
        outcome: list[BaseException] = []

        async def accepter() -> None:
            try:
                await acceptor.accept()
            except BaseException as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accepter)
            nursery.start_soon(accepter)
            await wait_all_tasks_blocked()
            acceptor.cancel()
        assert len(outcome) == 2
        assert all(isinstance(exc, OperationAborted) for exc in outcome)
        # The queue was left clean: one accepter now gets the fast path.
        async with (
            await _connect(acceptor) as client,
            await acceptor.accept() as server,
        ):
            assert server.remote_port == client.local_port


async def test_Acceptor_cancel_with_nothing_pending_keeps_queued_connection() -> None:
    async with _listening() as acceptor, await _connect(acceptor) as client:
        acceptor.cancel()
        async with await acceptor.accept() as server:
            assert server.remote_port == client.local_port


@pytest.mark.parametrize("code", [errno.ECONNABORTED, errno.EPROTO])
async def test_Acceptor_accept_retries_connection_aborted(code: int) -> None:
    async with _listening() as acceptor:
        scripted = _script(acceptor, [code, code])
        async with await _connect(acceptor) as client:
            with assert_checkpoints():
                server = await acceptor.accept()
            async with server:
                assert server.remote_port == client.local_port
        assert scripted.calls == 3


@pytest.mark.parametrize("code", [errno.ECONNABORTED, errno.EPROTO])
async def test_Acceptor_enable_connection_aborted_reports_them(code: int) -> None:
    async with _listening() as acceptor:
        acceptor.set_option("enable_connection_aborted", True)
        scripted = _script(acceptor, [code])
        async with await _connect(acceptor) as client:
            with (
                assert_checkpoints(),
                pytest.raises(OSError, match=rf"^\[Errno {code}\] ") as info,
            ):
                await acceptor.accept()
            assert info.value.errno == code
            # The connection is still queued for the next accept.
            async with await acceptor.accept() as server:
                assert server.remote_port == client.local_port
        assert scripted.calls == 2


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS])
async def test_Acceptor_capacity_errors_propagate(code: int) -> None:
    async with _listening() as acceptor:
        scripted = _script(acceptor, [code])
        async with await _connect(acceptor) as client:
            with pytest.raises(OSError, match=rf"^\[Errno {code}\] ") as info:
                await acceptor.accept()
            assert info.value.errno == code
            async with await acceptor.accept() as server:
                assert server.remote_port == client.local_port
        assert scripted.calls == 2


async def test_Acceptor_retry_on_slow_path() -> None:
    # The scripted errors hit after the wait: the retry loop runs there too.
    async with _listening() as acceptor:
        # EAGAIN first: the fast path gives up and waits; EAGAIN again after
        # the wake-up: a spurious wake-up, wait again; then a dead
        # connection, retried at once.
        scripted = _script(acceptor, [errno.EAGAIN, errno.EAGAIN, errno.ECONNABORTED])
        result: list[Socket] = []

        async def accepter() -> None:
            result.append(await acceptor.accept())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accepter)
            await wait_all_tasks_blocked()
            client = await _connect(acceptor)
        async with client, result[0] as server:
            assert server.remote_port == client.local_port
        assert scripted.calls == 4


async def test_Acceptor_many_concurrent_connects_all_accepted() -> None:
    count = 200
    with no_fd_leak():
        async with _listening() as acceptor:
            clients: list[Socket] = []
            servers: list[Socket] = []
            try:

                async def client() -> None:
                    sock = Socket()
                    clients.append(sock)
                    await sock.connect(LOOPBACK, acceptor.local_port)

                async def server() -> None:
                    while len(servers) < count:
                        servers.append(await acceptor.accept())

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(server)
                    for _ in range(count):
                        nursery.start_soon(client)
                assert len(servers) == count
                assert sorted(s.remote_port for s in servers) == sorted(
                    c.local_port for c in clients
                )
            finally:
                for sock in clients + servers:
                    sock.close()


async def test_Acceptor_accept_close_cycles_leak_nothing() -> None:
    async with _listening() as acceptor:
        before = open_fds()
        for _ in range(1000):
            client = Socket()
            await client.connect(LOOPBACK, acceptor.local_port)
            server = await acceptor.accept()
            server.close()
            client.close()
        assert open_fds() == before


# -- wait -----------------------------------------------------------------------


async def test_Acceptor_wait_read_returns_when_a_connection_is_pending() -> None:
    async with _listening() as acceptor:
        woke: list[bool] = []

        async def waiter() -> None:
            await acceptor.wait("read")
            woke.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            assert woke == []
            client = await _connect(acceptor)
        assert woke == [True]
        # The wait consumed nothing: the connection is still there to accept,
        # and a second wait returns at once (after a checkpoint).
        with assert_checkpoints():
            await acceptor.wait("read")
        async with client, await acceptor.accept() as server:
            assert server.remote_port == client.local_port


async def test_Acceptor_wait_read_waiters_queue_fifo() -> None:
    async with _listening() as acceptor:
        order: list[int] = []

        async def waiter(n: int) -> None:
            await acceptor.wait("read")
            order.append(n)

        async with trio.open_nursery() as nursery:
            for n in range(3):
                nursery.start_soon(waiter, n)
                await wait_all_tasks_blocked()
            client = await _connect(acceptor)
        assert order == [0, 1, 2]
        await client.aclose()


@pytest.mark.parametrize("kind", ["write", "error"])
async def test_Acceptor_wait_write_and_error_block_on_a_listening_acceptor(
    kind: str,
) -> None:
    # A listening socket is never writable and has no exceptional condition:
    # not even a pending connection ends the wait.
    async with _listening() as acceptor, await _connect(acceptor) as client:
        woke: list[bool] = []

        async def waiter() -> None:
            await acceptor.wait(kind)  # type: ignore[arg-type]
            woke.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert woke == []
        async with await acceptor.accept() as server:
            assert server.remote_port == client.local_port


@pytest.mark.parametrize("kind", ["write", "error"])
async def test_Acceptor_wait_write_and_error_on_an_unbound_acceptor(kind: str) -> None:
    # Open but neither listening nor connected: the kernel reports it
    # writable and hung up at once.
    acceptor = Acceptor()
    acceptor.open("v4")
    with assert_checkpoints():
        await acceptor.wait(kind)  # type: ignore[arg-type]
    acceptor.close()


@pytest.mark.parametrize("how", list(ABORTS))
@pytest.mark.parametrize("kind", ["read", "write", "error"])
async def test_Acceptor_wait_aborted_from_another_task(how: str, kind: str) -> None:
    with no_fd_leak():
        acceptor = _listening()
        outcome: list[BaseException] = []

        async def waiter() -> None:
            try:
                await acceptor.wait(kind)  # type: ignore[arg-type]
            except BaseException as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await wait_all_tasks_blocked()
            assert outcome == []
            ABORTS[how](acceptor)
        assert len(outcome) == 1
        assert isinstance(outcome[0], OperationAborted)
        assert outcome[0].errno == errno.ECANCELED
        if how == "cancel":
            # Still listening: a connection queued now is accepted.
            async with await _connect(acceptor), await acceptor.accept():
                pass
        acceptor.close()


@pytest.mark.parametrize("kind", ["read", "write", "error"])
async def test_Acceptor_wait_outer_cancel_is_trio_cancelled(kind: str) -> None:
    with no_fd_leak():
        async with _listening() as acceptor:
            with trio.CancelScope() as scope:

                async def cancel_soon() -> None:
                    await wait_all_tasks_blocked()
                    scope.cancel()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cancel_soon)
                    await acceptor.wait(kind)  # type: ignore[arg-type]
            assert scope.cancelled_caught
            # Nothing was left queued: the next wait and accept work.
            async with await _connect(acceptor) as client:
                await acceptor.wait("read")
                async with await acceptor.accept() as server:
                    assert server.remote_port == client.local_port


@pytest.mark.parametrize("kind", ["read", "write", "error"])
async def test_Acceptor_wait_cancelled_before_start(kind: str) -> None:
    async with _listening() as acceptor, await _connect(acceptor):
        with trio.CancelScope() as scope:
            scope.cancel()
            await acceptor.wait(kind)  # type: ignore[arg-type]
        assert scope.cancelled_caught


@pytest.mark.parametrize("kind", ["read", "write", "error"])
@pytest.mark.parametrize("state", ["new", "closed"])
async def test_Acceptor_wait_on_closed_is_ebadf_after_checkpoint(
    kind: str, state: str
) -> None:
    acceptor = Acceptor()
    if state == "closed":
        acceptor.open("v4")
        acceptor.close()
    with (
        assert_checkpoints(),
        pytest.raises(OSError, match=r"^\[Errno 9\] ") as info,
    ):
        await acceptor.wait(kind)  # type: ignore[arg-type]
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("kind", "exc", "message"),
    [
        ("x", ValueError, r"^kind: expected one of 'read', 'write', 'error', got 'x'$"),
        ("READ", ValueError, r"^kind: expected one of .*, got 'READ'$"),
        (b"read", TypeError, r"^kind: expected a str, got bytes$"),
        (None, TypeError, r"^kind: expected a str, got NoneType$"),
    ],
)
async def test_Acceptor_wait_bad_kind_after_checkpoint(
    kind: object, exc: type[Exception], message: str
) -> None:
    async with _listening() as acceptor:
        with assert_checkpoints(), pytest.raises(exc, match=message):
            await acceptor.wait(kind)  # type: ignore[arg-type]


# -- options --------------------------------------------------------------------

OPTIONS: list[tuple[str, Any]] = [
    ("reuse_address", True),
    ("reuse_address", False),
    ("enable_connection_aborted", True),
    ("enable_connection_aborted", False),
    ("debug", False),
    ("reuse_port", True),
    ("reuse_port", False),
]


@pytest.mark.parametrize(("name", "value"), OPTIONS)
async def test_Acceptor_option_round_trip(name: str, value: bool) -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        acceptor.set_option(name, value)
        got = acceptor.get_option(name)
        assert got is value


async def test_Acceptor_option_defaults() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v6")
        assert acceptor.get_option("reuse_address") is False
        assert acceptor.get_option("enable_connection_aborted") is False
        assert acceptor.get_option("debug") is False
        assert acceptor.get_option("reuse_port") is False
        assert acceptor.get_option("v6_only") is False


async def test_Acceptor_options_are_kernel_options() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        raw = acceptor.trio_socket
        acceptor.set_option("reuse_address", True)
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        acceptor.set_option("reuse_port", True)
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        # enable_connection_aborted lives in the acceptor, not the kernel.
        acceptor.set_option("enable_connection_aborted", True)
        assert acceptor.get_option("enable_connection_aborted") is True


async def test_Acceptor_dead_peer_options_reach_accepted_sockets() -> None:
    # Linux copies them from the listener to each accepted socket: one
    # syscall per option, not per connection (SPEC §10).
    async with Acceptor() as acceptor:
        acceptor.open(LOOPBACK)
        acceptor.bind(LOOPBACK, 0)
        acceptor.set_option("keep_alive", True)
        acceptor.set_option("keep_alive_idle", 60)
        acceptor.set_option("keep_alive_interval", 10)
        acceptor.set_option("keep_alive_count", 6)
        acceptor.set_option("user_timeout", 2.5)
        acceptor.listen()
        assert acceptor.get_option("keep_alive") is True
        assert acceptor.get_option("keep_alive_idle") == 60
        assert acceptor.get_option("user_timeout") == 2.5
        async with Socket() as client:
            await client.connect(LOOPBACK, acceptor.local_port)
            async with await acceptor.accept() as server:
                assert server.get_option("keep_alive") is True
                assert server.get_option("keep_alive_idle") == 60
                assert server.get_option("keep_alive_interval") == 10
                assert server.get_option("keep_alive_count") == 6
                assert server.get_option("user_timeout") == 2.5
                assert client.get_option("keep_alive") is False


async def test_Acceptor_dead_peer_options_bad_values() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        with pytest.raises(ValueError, match=r"^value: keep_alive_count must be in 1"):
            acceptor.set_option("keep_alive_count", 0)
        with pytest.raises(TypeError, match=r"^value: user_timeout expects seconds"):
            acceptor.set_option("user_timeout", None)  # type: ignore[arg-type]


async def test_Acceptor_enable_connection_aborted_is_per_acceptor() -> None:
    async with Acceptor() as a, Acceptor() as b:
        a.open("v4")
        b.open("v4")
        a.set_option("enable_connection_aborted", True)
        assert b.get_option("enable_connection_aborted") is False


async def test_Acceptor_v6_only() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v6")
        acceptor.set_option("v6_only", True)
        assert acceptor.get_option("v6_only") is True
        acceptor.set_option("v6_only", False)
        assert acceptor.get_option("v6_only") is False
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        with pytest.raises(OSError) as info:
            acceptor.set_option("v6_only", True)
        assert info.value.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP)


async def test_Acceptor_v6_only_refuses_v4_clients() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v6")
        acceptor.set_option("v6_only", True)
        acceptor.bind(Address.any_v6(), 0)
        acceptor.listen()
        async with Socket() as client:
            with pytest.raises(ConnectionRefusedError):
                await client.connect(LOOPBACK, acceptor.local_port)


async def test_Acceptor_reuse_port_lets_two_acceptors_share_a_port() -> None:
    async with _listening() as plain, Acceptor() as other:
        other.open("v4")
        with pytest.raises(OSError, match=r"^\[Errno 98\] "):
            other.bind(LOOPBACK, plain.local_port)
    async with Acceptor() as a, Acceptor() as b:
        for acceptor in (a, b):
            acceptor.open("v4")
            acceptor.set_option("reuse_port", True)
        a.bind(LOOPBACK, 0)
        b.bind(LOOPBACK, a.local_port)
        a.listen()
        b.listen()
        assert a.local_port == b.local_port


async def test_Acceptor_reuse_address_rebinds_over_time_wait() -> None:
    # The server side closes first, so its port sits in TIME_WAIT; with
    # reuse_address a new acceptor can bind it at once.
    async with _listening() as acceptor:
        acceptor.set_option("reuse_address", True)
        port = acceptor.local_port
        async with await _connect(acceptor) as client:
            server = await acceptor.accept()
            server.close()
            with pytest.raises(EndOfFile):
                await client.read_some(bytearray(1))
    async with Acceptor() as plain:
        plain.open("v4")
        with pytest.raises(OSError, match=r"^\[Errno 98\] "):
            plain.bind(LOOPBACK, port)
    async with Acceptor() as again:
        again.open("v4")
        again.set_option("reuse_address", True)
        again.bind(LOOPBACK, port)
        assert again.local_port == port


@pytest.mark.parametrize(
    ("name", "value", "exc", "pattern"),
    [
        (
            "no_such",
            True,
            ValueError,
            r"^name: unknown option 'no_such'; known options: ",
        ),
        ("linger", True, ValueError, r"^name: unknown option 'linger'"),
        (42, True, TypeError, r"^name: expected an option name \(str\), got int$"),
        (
            "reuse_address",
            1,
            TypeError,
            r"^value: reuse_address expects a bool, got int$",
        ),
        (
            "enable_connection_aborted",
            None,
            TypeError,
            r"^value: enable_connection_aborted expects a bool, got NoneType$",
        ),
    ],
)
async def test_Acceptor_set_option_bad_arguments(
    name: Any, value: Any, exc: type[Exception], pattern: str
) -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        with pytest.raises(exc, match=pattern):
            acceptor.set_option(name, value)
        assert acceptor.get_option("reuse_address") is False
        assert acceptor.get_option("enable_connection_aborted") is False


async def test_Acceptor_unknown_option_lists_known_ones() -> None:
    async with Acceptor() as acceptor:
        acceptor.open("v4")
        with pytest.raises(ValueError, match=r"^name: unknown option 'linger'") as info:
            acceptor.get_option("linger")
    listed = str(info.value).split("known options: ")[1].split(", ")
    assert listed == sorted(
        [
            "debug",
            "enable_connection_aborted",
            "keep_alive",
            "keep_alive_count",
            "keep_alive_idle",
            "keep_alive_interval",
            "reuse_address",
            "reuse_port",
            "tcp_no_delay",
            "user_timeout",
            "v6_only",
        ]
    )


# -- assign / release -----------------------------------------------------------


async def test_Acceptor_assign_release_round_trip() -> None:
    with no_fd_leak():
        first = _listening()
        port = first.local_port
        fd = first.release()
        assert not first.is_open
        with pytest.raises(OSError, match=r"^\[Errno 9\] "):
            first.release()
        second = Acceptor()
        second.assign(LOOPBACK, fd)
        async with second:
            assert second.trio_socket.fileno() == fd
            assert second.local_port == port
            async with (
                await _connect(second) as client,
                await second.accept() as server,
            ):
                assert server.remote_port == client.local_port
            assert second.release() == fd
        os.close(fd)


async def test_Acceptor_assign_v6() -> None:
    with no_fd_leak():
        raw = socket.socket(socket.AF_INET6)
        raw.bind(("::1", 0))
        raw.listen()
        async with Acceptor() as acceptor:
            acceptor.assign("v6", raw.detach())
            assert acceptor.local_address == LOOPBACK_V6
            async with await _connect(acceptor), await acceptor.accept():
                pass


async def test_Acceptor_assign_errors_leave_fd_untouched() -> None:
    with (
        socket.socket() as raw,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        fd = raw.fileno()
        async with Acceptor() as acceptor:
            acceptor.open("v4")
            with pytest.raises(AlreadyOpenError, match=r"^already open$"):
                acceptor.assign("v4", fd)
        acceptor = Acceptor()
        with pytest.raises(ValueError, match=rf"^fd: {fd} is not an IPv6 socket$"):
            acceptor.assign("v6", fd)
        with pytest.raises(
            ValueError, match=r"^fd: \d+ is not a stream \(TCP\) socket$"
        ):
            acceptor.assign("v4", udp.fileno())
        with pytest.raises(
            TypeError, match=r"^fd: expected an int file descriptor, got str$"
        ):
            acceptor.assign("v4", "3")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^fd: must be in 0..2147483647, got -1$"):
            acceptor.assign("v4", -1)
        with pytest.raises(ValueError, match=r"^family: "):
            acceptor.assign("v5", fd)
        assert not acceptor.is_open
        # Still open and owned by the stdlib socket.
        assert raw.fileno() == fd
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM


async def test_Acceptor_assign_non_socket_fd() -> None:
    read_end, write_end = os.pipe()
    try:
        acceptor = Acceptor()
        with pytest.raises(OSError, match=rf"^\[Errno 88\] fd: {read_end} is not an "):
            acceptor.assign("v4", read_end)
        assert not acceptor.is_open
        os.fstat(read_end)  # still open
    finally:
        os.close(read_end)
        os.close(write_end)


# -- trio interop ------------------------------------------------------------------


async def test_Acceptor_trio_socket_shares_descriptor() -> None:
    async with _listening() as acceptor:
        raw = acceptor.trio_socket
        assert raw is acceptor.trio_socket
        assert raw.getsockname()[1] == acceptor.local_port
        assert raw.fileno() == acceptor.trio_socket.fileno()
    assert raw.fileno() == -1
