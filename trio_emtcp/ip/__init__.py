"""Internet protocol: Emilua's ``ip`` module (addresses, endpoints, flags)."""

from .._address import Address as Address
from .._endpoint import toendpoint as toendpoint
from .._endpoint import tostring as tostring
from .._flags import AddressInfoFlag as AddressInfoFlag
from .._flags import MessageFlag as MessageFlag
from .._flags import NameInfoFlag as NameInfoFlag
from .._names import NameInfo as NameInfo
from .._names import host_name as host_name
from .._resolve import AddressInfo as AddressInfo
from .._resolve import connect as connect
from .._resolve import dial as dial
from .._util import fixup_module_metadata
from . import tcp as tcp

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
