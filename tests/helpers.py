"""Helpers shared by the tests."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from trio_emtcp.ip import Address
from trio_emtcp.ip.tcp import Acceptor, Socket


def open_fds() -> int:
    """How many descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def no_fd_leak() -> Iterator[None]:
    """Fail if the block leaves more descriptors open than it found."""
    before = open_fds()
    yield
    assert open_fds() == before


def fill_send_buffer(sock: Socket) -> int:
    """Write until the kernel refuses more; returns how much was queued.

    Shrinks the send buffer first so that the peer's receive buffer and
    ours fill within a few hundred KiB.
    """
    sock.set_option("send_buffer_size", 4096)
    raw = sock._sock
    assert raw is not None
    total = 0
    chunk = b"x" * 65536
    for _ in range(10_000):
        try:
            total += raw.send(chunk)
        except BlockingIOError:
            return total
    raise AssertionError("send buffer never filled")


def blocking_pair(
    family: int = socket.AF_INET,
) -> tuple[socket.socket, socket.socket]:
    """A connected pair of blocking stdlib sockets (a real, foreign peer)."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = socket.socket(family)
        client.connect(listener.getsockname()[:2])
        server, _ = listener.accept()
    return client, server


def require_tool(name: str) -> str:
    """The path of a command-line peer; skip when absent, except under CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required under CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


def listening(address: Address | None = None, backlog: int | None = None) -> Acceptor:
    """An acceptor bound to an ephemeral port on loopback, listening."""
    if address is None:
        address = Address.loopback_v4()
    acceptor = Acceptor()
    try:
        acceptor.open(address)
        acceptor.bind(address, 0)
        acceptor.listen(backlog)
    except BaseException:
        acceptor.close()
        raise
    return acceptor
