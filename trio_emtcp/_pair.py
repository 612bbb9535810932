"""``socket_pair()``: a connected loopback TCP pair."""

from __future__ import annotations

import socket as _stdlib_socket
from typing import Literal

from ._acceptor import Acceptor
from ._address import Address, family_arg
from ._driver import checkpoint
from ._socket import Socket

__all__ = ["socket_pair"]


async def socket_pair(family: Literal["v4", "v6"] = "v4") -> tuple[Socket, Socket]:
    """Make two connected TCP sockets over loopback.

    Emilua's tests build the same pair with an acceptor (``test/util``);
    this is that helper, hardened: a stranger that connects to the
    short-lived listener first is turned away, never returned.

    Args:
      family: ``"v4"`` (``127.0.0.1``) or ``"v6"`` (``::1``).

    Returns:
      A pair ``(a, b)``, ``a`` connected and ``b`` accepted, both open.

    Raises:
      TypeError: ``family`` is not a ``str`` (an ``Address`` included).
      ValueError: ``family`` is another string.
      OSError: the system refused (e.g. no IPv6 loopback, ``EMFILE``);
        nothing is left open.
    """
    try:
        fam = family_arg(family)
        if isinstance(family, Address):
            raise TypeError("family: expected 'v4' or 'v6', got Address")
    except (TypeError, ValueError):
        await checkpoint()
        raise
    addr = (
        Address.loopback_v4()
        if fam == _stdlib_socket.AF_INET
        else Address.loopback_v6()
    )
    async with Acceptor() as acceptor:
        acceptor.open(addr)
        acceptor.bind(addr, 0)
        acceptor.listen(1)
        client = Socket()
        try:
            # Over loopback the kernel completes the handshake on its own
            # (the connection waits in the backlog), so no second task is
            # needed.
            await client.connect(addr, acceptor.local_port)
            want = client.local_port
            while True:
                server = await acceptor.accept()
                if server.remote_port == want:
                    return client, server
                server.close()
        except BaseException:
            client.close()
            raise
