"""Every public name is in the reference documentation (docs/reference)."""

from __future__ import annotations

import re
import types
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
    r"^\.\. (?:auto)?(?:class|function|exception|data|decorator)::\s+(\S+)", re.M
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
