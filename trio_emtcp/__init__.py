"""Emilua's TCP API on Trio, with structured concurrency.

The public names live in :mod:`trio_emtcp.ip` (addresses, ``ip.tcp.Socket``,
``ip.tcp.Acceptor``), :mod:`trio_emtcp.stream` (``write_all`` and friends)
and here (:func:`socket_pair`, the exceptions).
"""

from . import ip as ip
from . import stream as stream
from ._errors import AlreadyOpenError as AlreadyOpenError
from ._errors import ClosedSocketError as ClosedSocketError
from ._errors import EndOfFile as EndOfFile
from ._errors import NotFoundError as NotFoundError
from ._errors import OperationAborted as OperationAborted
from ._errors import RecordTooLong as RecordTooLong
from ._pair import socket_pair as socket_pair
from ._relaxed import RelaxedSchedulePoints as RelaxedSchedulePoints
from ._relaxed import relaxed_schedule_points as relaxed_schedule_points
from ._util import fixup_module_metadata
from ._version import __version__ as __version__

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
