"""Small helpers shared by the private modules."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    # collections.abc.Buffer is Python 3.12+; typing_extensions has it for
    # the type checker only, so it is not a runtime dependency.
    from typing_extensions import Buffer as Buffer
else:
    Buffer = Any

if sys.version_info >= (3, 11):
    BaseExceptionGroup_ = BaseExceptionGroup  # noqa: F821 - a builtin from 3.11
else:  # pragma: no cover - trio itself depends on the backport there
    import exceptiongroup  # type: ignore[import-not-found,unused-ignore]

    BaseExceptionGroup_ = exceptiongroup.BaseExceptionGroup

T = TypeVar("T")


def release(view: memoryview) -> None:
    """Let go of our view of a caller's buffer (SPEC §7).

    A ``memoryview`` of a ``bytearray`` keeps it from being resized until
    the view is released, and an exception's traceback keeps the frames
    that hold our views alive: after a cancelled ``send_all`` the caller
    could not grow its own buffer until the exception was gone.  So every
    view the library takes of a caller's buffer is released before the
    operation returns or raises.  A view that code we called still
    exports (only possible for a duck-typed stream that kept a C-level
    buffer) is left to the garbage collector.
    """
    # try/except, not contextlib.suppress: this runs on every composed
    # operation, and suppress() builds an object per call.
    try:  # noqa: SIM105
        view.release()
    except BufferError:  # pragma: no cover - needs a C extension keeping it
        pass


def fixup_module_metadata(module_name: str, namespace: dict[str, Any]) -> None:
    """Give re-exported objects their public ``__module__``.

    Tracebacks, ``repr`` and the docs then name ``trio_emtcp.ip.tcp.Socket``
    rather than the private module it is defined in (the same trick as
    trio's ``_util.fixup_module_metadata``).
    """
    seen: set[int] = set()

    def fix(name: str, obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if mod is not None and mod.startswith("trio_emtcp."):
            obj.__module__ = module_name
            if isinstance(obj, type):
                obj.__qualname__ = name
                for attr_name, attr_value in obj.__dict__.items():
                    fix(attr_name, attr_value)

    for objname, obj in namespace.items():
        if not objname.startswith("_"):
            fix(objname, obj)
