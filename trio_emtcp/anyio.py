"""anyio streams over trio_emtcp sockets (the optional ``anyio`` extra).

:func:`wrap_socket` makes a :class:`~trio_emtcp.ip.tcp.Socket` an
:class:`anyio.abc.SocketStream`, and :func:`wrap_acceptor` makes an
:class:`~trio_emtcp.ip.tcp.Acceptor` an :class:`anyio.abc.SocketListener`,
for code written against anyio's streams (``BufferedByteReceiveStream``,
``TextStream``, ``TLSStream``...) on anyio's trio backend.  A bare
``Socket`` is not an anyio stream: its ``send`` is Emilua's partial write,
where anyio's ``send`` writes everything.

Needs anyio (``pip install 'trio_emtcp[anyio]'``).
"""

try:
    from ._anyio import AnyioListener as AnyioListener
    from ._anyio import AnyioSocketStream as AnyioSocketStream
    from ._anyio import wrap_acceptor as wrap_acceptor
    from ._anyio import wrap_socket as wrap_socket
except ModuleNotFoundError as exc:  # pragma: no cover - anyio is a test dependency
    if exc.name != "anyio":
        raise
    raise ImportError(
        "trio_emtcp.anyio needs anyio: pip install 'trio_emtcp[anyio]'"
    ) from exc

from ._util import fixup_module_metadata

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
