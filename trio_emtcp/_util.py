"""Small helpers shared by the private modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    # collections.abc.Buffer is Python 3.12+; typing_extensions has it for
    # the type checker only, so it is not a runtime dependency.
    from typing_extensions import Buffer as Buffer
else:
    Buffer = Any

T = TypeVar("T")


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
