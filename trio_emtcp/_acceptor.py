"""``ip.tcp.Acceptor``: Emilua's TCP acceptor on Trio."""

from __future__ import annotations

import errno
import os
import socket as _stdlib_socket
from typing import Literal, final

from . import _options
from ._args import int_arg
from ._base import SocketBase, endpoint_text, name_endpoint
from ._driver import (
    wait_readable,
)
from ._socket import Socket
from ._trio_stream import TrioListenerMixin

__all__ = ["Acceptor"]

# Errors accept() reports for a connection that died in the backlog before
# we took it.  They say nothing about the listening socket, so Asio (and
# Emilua) retry them unless ``enable_connection_aborted`` is set; we keep
# that exact set.  Capacity errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) are
# *not* retried: spinning on them would burn the CPU; they propagate so the
# caller can back off (trio.serve_listeners sleeps and retries them).
_ABORTED_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO})

_new_socket = _stdlib_socket.socket
_SOL_SOCKET = _stdlib_socket.SOL_SOCKET
_SO_ACCEPTCONN = _stdlib_socket.SO_ACCEPTCONN
_SOCK_STREAM = _stdlib_socket.SOCK_STREAM


@final
class Acceptor(SocketBase, TrioListenerMixin):
    """A listening TCP socket, as Emilua's ``ip.tcp.acceptor``.

    ``open``, ``bind``, :meth:`listen`, then ``await accept()`` for each
    connection.  :meth:`close`, :meth:`cancel` and :meth:`release` from
    another task end a pending ``accept`` with
    :class:`~trio_emtcp.OperationAborted`.  On a closed acceptor every member
    that needs a descriptor (all but ``close``, ``aclose``, ``is_open``,
    ``open`` and ``assign``) raises :class:`~trio_emtcp.ClosedSocketError`,
    an :class:`OSError` with errno ``EBADF``.
    """

    __slots__ = ("_enable_connection_aborted",)

    def __init__(self) -> None:
        super().__init__()
        self._enable_connection_aborted = False

    def __repr__(self) -> str:
        """``<trio_emtcp.ip.tcp.Acceptor v4 127.0.0.1:8080, listening>``.

        The family, the local endpoint and whether it listens; ``closed``
        for a closed acceptor.  Never raises.
        """
        where = self._endpoints()
        sock = self._sock
        if sock is not None and where != "closed":
            try:
                listening = sock.getsockopt(_SOL_SOCKET, _SO_ACCEPTCONN)
            except OSError:  # pragma: no cover - SO_ACCEPTCONN is on Linux
                listening = 0
            where += ", listening" if listening else ", not listening"
        return f"<trio_emtcp.ip.tcp.Acceptor {where}>"

    def listen(self, backlog: int | None = None) -> None:
        """Start listening.

        Without a prior ``bind`` the kernel binds an ephemeral port on the
        wildcard address.

        Args:
          backlog: the queue length, an ``int`` in 0..2**31 - 1; ``None``
            for the system maximum (``SOMAXCONN``; the kernel caps any
            value at ``net.core.somaxconn``).

        Raises:
          TypeError: ``backlog`` is not an ``int`` or ``None``.
          ValueError: ``backlog`` is out of its range.
          OSError: ``EBADF`` if closed; the kernel's error otherwise
            (``EADDRINUSE`` when another socket listens on the same port,
            both bound with ``reuse_address``; it names the endpoint, as
            :meth:`bind`'s does: ``[Errno 98] Address already in use:
            '127.0.0.1:8080'``).
        """
        if backlog is None:
            backlog = _stdlib_socket.SOMAXCONN
        else:
            backlog = int_arg(backlog, "backlog", expected="an int or None")
        sock = self._live()
        try:
            sock.listen(backlog)
        except OSError as exc:
            name_endpoint(exc, lambda: endpoint_text(sock.family, sock.getsockname()))
            raise

    def set_option(self, name: str, value: bool | float) -> None:
        """Set an acceptor option by its Emilua name.

        Names: ``reuse_address``, ``enable_connection_aborted`` (whether
        :meth:`accept` reports ``ECONNABORTED``/``EPROTO`` instead of
        retrying; kept by the acceptor, not the kernel), ``debug``,
        ``v6_only``; and, beyond Emilua, ``reuse_port`` (``SO_REUSEPORT``,
        where the platform has it), and options the kernel copies to every
        connection accepted afterwards: ``tcp_no_delay``
        (:func:`ip.tcp.listen <trio_emtcp.ip.tcp.listen>` turns it on, an
        acceptor built by hand leaves it off as Emilua does),
        ``keep_alive`` and the dead-peer options ``keep_alive_idle``,
        ``keep_alive_interval``, ``keep_alive_count`` and
        ``user_timeout``, with the values and ranges of
        :meth:`Socket.set_option <trio_emtcp.ip.tcp.Socket.set_option>`
        (see :doc:`/dead-peers`).  The others take a ``bool``.

        Args:
          name: one of the names above.
          value: a ``bool`` (``1`` is refused), or for the dead-peer
            options an ``int`` (``user_timeout``: seconds as an ``int`` or
            ``float``) in the option's range.

        Raises:
          TypeError: ``name`` or ``value`` has the wrong type.
          ValueError: ``name`` is unknown (the message lists the known ones)
            or not available on this platform, or ``value`` is out of range.
          OSError: ``EBADF`` if closed; the kernel's refusal otherwise.
        """
        opt = _options.lookup(_options.ACCEPTOR_OPTIONS, name)
        encoded = _options.encode(name, opt, value, None)
        sock = self._live()
        if opt.codec == "flag":
            self._enable_connection_aborted = bool(encoded)
        else:
            _options.set_option(sock, opt, encoded)

    def get_option(self, name: str) -> bool | int | float:
        """Read an acceptor option (see :meth:`set_option`).

        Args:
          name: one of :meth:`set_option`'s names.

        Raises:
          TypeError: ``name`` is not a ``str``.
          ValueError: ``name`` is unknown or not available on this platform.
          OSError: ``EBADF`` if closed; the kernel's refusal otherwise.
        """
        opt = _options.lookup(_options.ACCEPTOR_OPTIONS, name)
        sock = self._live()
        if opt.codec == "flag":
            return self._enable_connection_aborted
        value = _options.get_option(sock, opt)
        assert not isinstance(value, tuple)  # linger is not an acceptor option
        return value

    async def wait(self, kind: Literal["read", "write", "error"]) -> None:
        """Wait until the acceptor is readable, writable, or has an error.

        Emilua's ``acceptor:wait()``.  ``"read"``: a connection is ready to
        :meth:`accept`.  A listening socket never becomes writable and has no
        exceptional condition to report, so a ``"write"`` or ``"error"`` wait
        on one ends only by :meth:`close`/:meth:`cancel`
        (:class:`~trio_emtcp.OperationAborted`) or the task's own
        cancellation.  (On an acceptor that is open but not listening the
        kernel reports both at once.)  Queued waiters are served FIFO, as
        :meth:`accept` is.

        Args:
          kind: ``"read"``, ``"write"`` or ``"error"``.

        Raises:
          TypeError: ``kind`` is not a ``str``.
          ValueError: ``kind`` is another string.
          OperationAborted: ``close()``/``cancel()``/``release()`` from
            another task.
          OSError: ``EBADF`` if closed; ``EMFILE`` when no descriptor is
            left for the epoll of an ``"error"`` wait.
        """
        await self._wait(kind)

    async def accept(self) -> Socket:
        """Wait for a connection and return it as an open, connected Socket.

        ``ECONNABORTED`` and ``EPROTO`` (a connection that died in the queue)
        are retried unless the ``enable_connection_aborted`` option is set,
        as in Asio.  Capacity errors (``EMFILE``, ``ENFILE``, ``ENOBUFS``,
        ``ENOMEM``) propagate at once: back off before retrying.

        Raises:
          OperationAborted: ``close()``/``cancel()``/``release()`` from
            another task.
          OSError: ``EBADF`` if closed; ``EINVAL`` if not listening; the
            errors above.
        """
        # The family before the operation: another task may close the
        # acceptor in the tick after the accept returned.
        sock = self._sock
        family = sock.family if sock is not None else _stdlib_socket.AF_INET
        # A closed acceptor raises the closed-object error, which is also
        # the ClosedResourceError that trio.serve_listeners needs.
        fd = await self._attempt(self._readers, wait_readable, self._accept_fd)
        try:
            conn = _new_socket(family, _SOCK_STREAM, 0, fd)
        except BaseException:  # pragma: no cover - only on interpreter trouble
            os.close(fd)
            raise
        return Socket._from_stdlib(conn)

    def _accept_fd(self, sock: _stdlib_socket.socket) -> int:
        # ``_accept`` is the stdlib's own primitive under ``accept()``: it
        # returns the bare fd, so we skip the peer-address tuple's use and
        # the blocking-mode dance ``accept()`` does.
        while True:
            try:
                fd, _ = sock._accept()  # type: ignore[attr-defined]
            except OSError as exc:
                if exc.errno in _ABORTED_ERRNOS and not self._enable_connection_aborted:
                    continue
                raise
            return int(fd)
