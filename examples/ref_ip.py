"""Addresses, endpoint strings and connecting by name (the ``ip`` reference).

Run it: ``python examples/ref_ip.py``.  It listens on the loopback, then
reaches that listener three ways: an address and a port, the results of a
lookup handed to ``ip.connect``, and ``ip.dial``.
"""

from __future__ import annotations

import trio

from trio_emtcp import ip


async def main() -> list[str]:
    said = []
    loopback = ip.Address("127.0.0.1")  # or ip.Address.loopback_v4()
    async with ip.tcp.listen(loopback, 0) as acceptor:
        port = acceptor.local_port
        endpoint = ip.tostring(loopback, port)  # "127.0.0.1:PORT"
        assert ip.toendpoint(endpoint) == (loopback, port)
        said.append(f"listening on {endpoint}")

        # 1. An address and a port.
        async with ip.tcp.Socket() as sock:
            await sock.connect(loopback, port)
            said.append(
                f"connect: to {sock.remote_address}, loopback {loopback.is_loopback}"
            )
            (await acceptor.accept()).close()

        # 2. A lookup, then the first entry that accepts.
        entries = await ip.tcp.get_address_v4_info("localhost", port)
        async with ip.tcp.Socket() as sock:
            address, _ = await ip.connect(sock, entries)
            said.append(f"ip.connect: {ip.tostring(address, port)}")
            (await acceptor.accept()).close()

        # 3. Both at once, with happy eyeballs.
        async with await ip.dial("127.0.0.1", port) as sock:
            said.append(f"ip.dial: tcp_no_delay={sock.get_option('tcp_no_delay')}")
            (await acceptor.accept()).close()
    return said


if __name__ == "__main__":
    for line in trio.run(main):
        print(line)
