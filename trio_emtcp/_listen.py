"""``ip.tcp.listen``: an acceptor bound and listening, in one call.

Emilua's newest form takes one endpoint string (``"127.0.0.1:8080"``); the
form beyond Emilua takes the host and the port apart.
"""

from __future__ import annotations

from ._acceptor import Acceptor
from ._address import Address, address_arg
from ._args import bool_arg, no_nul, port_arg, type_name
from ._endpoint import listen_endpoint

__all__ = ["listen"]


def listen(
    host: str | Address,
    port: int | None = None,
    backlog: int | None = None,
    *,
    reuse_port: bool = False,
) -> Acceptor:
    """Open an acceptor bound to ``host``:``port`` and listening.

    Emilua's ``ip.tcp.listen(endpoint)`` takes one endpoint string:
    ``listen("127.0.0.1:8080")``, ``listen("[::1]:0")``,
    ``listen("localhost:http")`` (``localhost`` is IPv4 loopback, decided
    without a resolver; an empty port is 0; a port may be a service name
    from the local services database).  Beyond Emilua, ``listen(host,
    port)`` takes them apart, and both forms take ``backlog`` and
    ``reuse_port``.  Synchronous: nothing here waits.

    The acceptor is opened with the address's family, gets
    ``reuse_address`` (so that a restarted server can bind while old
    connections linger in ``TIME_WAIT``) and ``tcp_no_delay`` (so that
    every connection it accepts has it on, as with
    :func:`trio.serve_tcp`; see :func:`~trio_emtcp.ip.dial` for why), is
    bound, then listens.  The operating system's defaults apply otherwise
    (on Linux ``::`` also accepts IPv4 unless ``v6_only`` is set).

    Args:
      host: an :class:`~trio_emtcp.ip.Address` or a numeric IP literal
        (resolve names first); or, without ``port``, the endpoint string
        ``"host:port"``: the host a numeric IPv4 literal, an IPv6 literal
        in brackets (``[::1]``) or ``localhost``, the port decimal digits,
        empty (0) or a TCP service name.
      port: an ``int`` in 0..65535, 0 picking an ephemeral port (read it
        back from ``local_port``); ``None`` with an endpoint string (give
        ``backlog`` by keyword then: ``listen("[::1]:0", backlog=16)``).
      backlog: as :meth:`Acceptor.listen <trio_emtcp.ip.tcp.Acceptor.listen>`.
      reuse_port: also set ``reuse_port`` (``SO_REUSEPORT``), so that
        several processes can listen on the same port, each with its own
        acceptor, and the kernel spreads the connections over them.

    Returns:
      A new listening :class:`~trio_emtcp.ip.tcp.Acceptor`, owned by the
      caller.

    Raises:
      TypeError: an argument has the wrong type, or a port is missing (an
        ``Address`` without ``port``).
      ValueError: ``host`` is not a numeric address (or ``localhost`` in
        an endpoint), the endpoint string is malformed or names an unknown
        service, ``port`` is out of range, ``backlog`` is out of its range,
        or ``reuse_port`` is asked for on a platform without it.
      OSError: the system refused (``EADDRINUSE``, ``EADDRNOTAVAIL``,
        ``EACCES``, ``EMFILE``...); nothing is left open.  The errors about
        the address name the endpoint, as
        :meth:`Acceptor.bind <trio_emtcp.ip.tcp.Acceptor.bind>` says:
        ``[Errno 98] Address already in use: '127.0.0.1:8080'``.
    """
    if port is None:
        if isinstance(host, Address):
            raise TypeError(
                "port: expected an int with an ip.Address host; only an "
                "endpoint string carries its own port"
            )
        if not isinstance(host, str):
            raise TypeError(
                f"host: expected a str or an ip.Address, got {type_name(host)}"
            )
        address, port = listen_endpoint(no_nul(host, "host"), "host")
    else:
        address = address_arg(host, "host")
        port = port_arg(port)
    reuse_port = bool_arg(reuse_port, "reuse_port")
    acceptor = Acceptor()
    try:
        acceptor.open(address)
        acceptor.set_option("reuse_address", True)
        acceptor.set_option("tcp_no_delay", True)
        if reuse_port:
            acceptor.set_option("reuse_port", True)
        acceptor.bind(address, port)
        acceptor.listen(backlog)
    except BaseException:
        acceptor.close()
        raise
    return acceptor
