"""TCP: Emilua's ``ip.tcp`` (``socket``, ``acceptor``)."""

from .._acceptor import Acceptor as Acceptor
from .._socket import Socket as Socket
from .._util import fixup_module_metadata

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
