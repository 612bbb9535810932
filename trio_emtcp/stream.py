"""Composed stream operations, as Emilua's ``stream`` module.

:func:`write_all`, :func:`write_at_least`, :func:`read_all` and
:func:`read_at_least` work on any object with ``read_some``/``write_some``
(duck typing).  On a :class:`~trio_emtcp.ip.tcp.Socket` they run the
socket's own loop, which does not yield between system calls while the
kernel keeps up: a large ``write_all`` costs one Trio checkpoint, not one per
``send()``.

A composed operation must not interleave with another operation in the same
direction on the same stream: its bytes could be split around the other's.
Nothing enforces this, as in Emilua.

:func:`copy` and :func:`relay` move a stream's bytes to another (zero-copy
between two Sockets on Linux), and :func:`graceful_close` closes a
connection without destroying the answer it just sent: what relays and
servers otherwise write by hand.

Whatever exception ends one of them midway (``OperationAborted``,
``EndOfFile``, a connection error, or ``trio.Cancelled``) carries
``bytes_transferred``, the count already moved.
"""

from ._copy import copy as copy
from ._copy import graceful_close as graceful_close
from ._copy import relay as relay
from ._errors import RecordTooLong as RecordTooLong
from ._scanner import Scanner as Scanner
from ._stream import ReadStream as ReadStream
from ._stream import WriteStream as WriteStream
from ._stream import read_all as read_all
from ._stream import read_at_least as read_at_least
from ._stream import write_all as write_all
from ._stream import write_at_least as write_at_least
from ._util import fixup_module_metadata

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
