"""Every public name is in the reference documentation (docs/reference)."""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import trio_emtcp
import trio_emtcp.anyio
import trio_emtcp.ip
import trio_emtcp.ip.tcp
import trio_emtcp.stream

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"
MODULES = [
    trio_emtcp,
    trio_emtcp.ip,
    trio_emtcp.ip.tcp,
    trio_emtcp.stream,
    trio_emtcp.anyio,
]
_DIRECTIVE = re.compile(
    r"^\.\. (?:auto)?(?:class|function|exception|data|decorator)::\s+([^\s(]+)", re.M
)
_MODULE = re.compile(r"^\.\. (?:auto)?module::\s+(\S+)", re.M)


def _documented() -> set[str]:
    names: set[str] = set()
    for page in REFERENCE.glob("*.rst"):
        text = page.read_text()
        module = _MODULE.search(text)
        assert module is not None, f"{page.name} declares no module"
        for match in _DIRECTIVE.finditer(text):
            names.add(f"{module.group(1)}.{match.group(1)}")
    return names


def _public(module: types.ModuleType) -> set[str]:
    return {
        f"{module.__name__}.{name}"
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | ({f"{module.__name__}.__version__"} if module is trio_emtcp else set())


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_reference_documents_every_public_name(module: types.ModuleType) -> None:
    missing = _public(module) - _documented()
    assert not missing, f"undocumented public names: {sorted(missing)}"


def test_reference_documents_nothing_that_does_not_exist() -> None:
    public = set().union(*(_public(m) for m in MODULES))
    assert _documented() - public == set()


# -- every parameter says what it accepts (SPEC §13) ------------------------------

# A class may document its constructor's parameters as its attributes.
_ARGS = re.compile(r"^(?:Args|Attributes):\n(.*?)(?:^\S|\Z)", re.M | re.S)
_ARG = re.compile(r"^ {2,4}(\w+)(?: \([^)]*\))?:", re.M)
# Constructors that are not the library's to document: the enums' and the
# protocols' (typing's), which users never call with arguments.
_NOT_OURS = {
    "MessageFlag",
    "AddressInfoFlag",
    "NameInfoFlag",
    "ReadStream",
    "WriteStream",
}


def _callables() -> Iterator[tuple[str, Callable[..., object]]]:
    seen: set[int] = set()
    for module in MODULES:
        for name, value in vars(module).items():
            if name.startswith("_") or id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, type):
                if issubclass(value, BaseException):
                    continue
                if name not in _NOT_OURS:
                    yield f"{module.__name__}.{name}", value
                for attr, member in inspect.getmembers(value):
                    if attr.startswith("_") or not callable(member):
                        continue
                    if (getattr(member, "__module__", None) or "").startswith(
                        "trio_emtcp"
                    ):
                        yield f"{module.__name__}.{name}.{attr}", member
            elif callable(value):
                yield f"{module.__name__}.{name}", value


def _undocumented(func: Callable[..., object]) -> list[str]:
    try:
        parameters = inspect.signature(func).parameters
    except ValueError:  # pragma: no cover - a builtin without a signature
        return []
    wanted = [p for p in parameters if p not in ("self", "cls")]
    if not wanted:
        return []
    section = _ARGS.search(inspect.getdoc(func) or "")
    documented = set(_ARG.findall(section.group(1))) if section else set()
    return [p for p in wanted if p not in documented]


def test_reference_says_what_every_parameter_accepts() -> None:
    missing = {
        name: gaps for name, func in _callables() if (gaps := _undocumented(func))
    }
    assert not missing, f"parameters without an Args entry: {missing}"
