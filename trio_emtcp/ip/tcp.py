"""TCP: Emilua's ``ip.tcp`` (``socket``, ``acceptor``)."""

from .._acceptor import Acceptor as Acceptor
from .._listen import listen as listen
from .._names import get_name_info as get_name_info
from .._resolve import dial as dial
from .._resolve import get_address_info as get_address_info
from .._resolve import get_address_v4_info as get_address_v4_info
from .._resolve import get_address_v6_info as get_address_v6_info
from .._socket import Socket as Socket
from .._util import fixup_module_metadata

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
