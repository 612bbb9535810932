"""What ``python -m trio_emtcp echo`` costs in memory under many clients.

``python -m trio_emtcp._bench._echo_memory [--connections N] [--slowloris N]``
(or ``nox -s memory``) starts the echo server in a process of its own, and
beside it a ``trio.serve_tcp`` echo server written the way Trio's tutorial
writes one, and reports, for each, from ``/proc/PID/status`` (``VmRSS``):

* the memory per idle connection: the growth once N connections are open
  and idle, divided by N;
* the memory before, during and after a slowloris wave: N clients that each
  trickle one byte at a time, then leave.

The clients are in this process, spread over several loopback source
addresses (127.0.0.2, 127.0.0.3, ...), so that no single address runs out of
ephemeral ports, and connect with ``ip.dial(..., local_address=...)``.  Not
a test: it measures, it does not judge (SPEC §10 asks for the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import trio

from .. import ip

HOST = "127.0.0.1"
# Connections per client source address: well below the ephemeral range.
PER_SOURCE = 5000


# How long the slowloris clients trickle, how often each sends a byte, and
# how long each server settles before a reading (--quick: a smoke run).
@dataclass(frozen=True)
class _Timing:
    trickle: float = 3.0
    every: float = 0.25
    settle: float = 1.0


QUICK = _Timing(trickle=0.3, every=0.1, settle=0.05)

# A trio.serve_tcp echo server, as Trio's tutorial writes one.
_SERVE_TCP = """
import functools, sys, trio
async def echo(stream):
    try:
        async for data in stream:
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass  # a client that reset: only its connection ends
async def main():
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        print("listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
trio.run(main)
"""

SERVERS = {
    "trio_emtcp echo": [sys.executable, "-m", "trio_emtcp", "echo", "--port", "0"],
    "trio.serve_tcp": [sys.executable, "-c", _SERVE_TCP],
}


@dataclass
class _Server:
    process: subprocess.Popen[str]
    port: int

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS line")  # pragma: no cover


@contextlib.contextmanager
def _server(argv: Sequence[str]) -> Iterator[_Server]:
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    try:
        first = process.stderr.readline()
        match = re.search(r"listening on [^ ]+:(\d+)", first)
        if match is None:
            raise RuntimeError(f"the server said {first!r}")
        # Drain its log in a thread: the figures are memory, not logging.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield _Server(process, int(match[1]))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait()


def _source(index: int) -> str:
    return f"127.0.0.{2 + index // PER_SOURCE}"


async def _open(port: int, count: int) -> list[ip.tcp.Socket]:
    sockets: list[ip.tcp.Socket] = []
    limiter = trio.CapacityLimiter(200)  # no SYN flood against the backlog

    async def one(index: int) -> None:
        async with limiter:
            sockets.append(await ip.dial(HOST, port, local_address=_source(index)))

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(one, index)
    return sockets


async def _idle(server: _Server, count: int, timing: _Timing) -> float:
    """KiB of server RSS per idle connection."""
    await trio.sleep(timing.settle)
    before = server.rss_kib()
    sockets = await _open(server.port, count)
    try:
        await trio.sleep(timing.settle)
        during = server.rss_kib()
    finally:
        for sock in sockets:
            sock.close()
    return (during - before) / count


async def _slowloris(
    server: _Server, count: int, timing: _Timing
) -> tuple[int, int, int]:
    """Server RSS (KiB) before, during and after ``count`` slow clients."""
    await trio.sleep(timing.settle)
    before = server.rss_kib()
    sockets = await _open(server.port, count)
    try:

        async def trickle(sock: ip.tcp.Socket) -> None:
            with trio.move_on_after(timing.trickle):
                while True:
                    await sock.write_some(b"x")
                    await trio.sleep(timing.every)

        async with trio.open_nursery() as nursery:
            for sock in sockets:
                nursery.start_soon(trickle, sock)
        during = server.rss_kib()
    finally:
        for sock in sockets:
            sock.close()
    await trio.sleep(2 * timing.settle)
    return before, during, server.rss_kib()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trio_emtcp._bench._echo_memory",
        description="The echo server's memory under many idle and slow clients.",
    )
    parser.add_argument("--connections", type=int, default=10_000, metavar="N")
    parser.add_argument("--slowloris", type=int, default=1_000, metavar="N")
    parser.add_argument(
        "--quick", action="store_true", help="short waits: a smoke run, not figures"
    )
    args = parser.parse_args(argv)
    timing = QUICK if args.quick else _Timing()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers too
    if args.connections + 100 > hard:
        print(f"error: needs {args.connections + 100} descriptors, the limit is {hard}")
        return 1
    rows = []
    for name, server_argv in SERVERS.items():
        with _server(server_argv) as server:
            per_connection = trio.run(_idle, server, args.connections, timing)
        with _server(server_argv) as server:
            before, during, after = trio.run(_slowloris, server, args.slowloris, timing)
        rows.append((name, per_connection, before, during, after))
        print(f"{name}: done", file=sys.stderr, flush=True)
    mib = 1024
    print(f"echo server memory, {'quick (smoke) ' if args.quick else ''}run:")
    print(
        f"| server | RSS per idle connection ({args.connections:,} open) | "
        f"RSS before / during / after {args.slowloris:,} slowloris clients |"
    )
    print("|---|---|---|")
    for name, per_connection, before, during, after in rows:
        print(
            f"| {name} | {per_connection:.1f} KiB | {before / mib:.1f} / "
            f"{during / mib:.1f} / {after / mib:.1f} MiB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
