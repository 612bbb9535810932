"""The package's import structure: no cycles, and tools on the public API only.

``python -m tests.test_imports`` prints the graph (each module and the
package modules it imports at run time), then any cycle.

Imports under ``if TYPE_CHECKING:`` are left out: they exist for the type
checker only and never run.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "trio_emtcp"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
# What a program using the library may import.
PUBLIC = {
    "trio_emtcp",
    "trio_emtcp.ip",
    "trio_emtcp.ip.tcp",
    "trio_emtcp.stream",
    "trio_emtcp.anyio",
}
# The tools: each may import its own modules and the public ones (and the
# command line may start the benchmark), nothing else of the package.
TOOLS = {"trio_emtcp._cli": {"trio_emtcp._bench"}, "trio_emtcp._bench": set()}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _run_time_imports(node)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The package modules one ``from ... import ...`` names."""
    if node.level:
        base = module.split(".")
        if not is_package:
            base.pop()
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if not prefix.startswith(PACKAGE):
        return []
    # ``from . import ip`` imports the module ``trio_emtcp.ip``; ``from ._x
    # import Name`` the module ``trio_emtcp._x``.
    found = []
    for alias in node.names:
        candidate = f"{prefix}.{alias.name}"
        if candidate in MODULES:
            found.append(candidate)
        else:
            found.append(prefix)
    return found


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports when it runs."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets: set[str] = set()
        for node in _run_time_imports(tree):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith(PACKAGE)}
            else:
                targets |= set(_resolve(module, path.name == "__init__.py", node))
        targets.discard(module)
        graph[module] = {t for t in targets if t in MODULES}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def _tool_of(module: str) -> str | None:
    for tool in TOOLS:
        if module == tool or module.startswith(tool + "."):
            return tool
    return None


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tools_use_only_the_public_api(tool: str) -> None:
    graph = import_graph()
    private = {}
    for module, targets in graph.items():
        if _tool_of(module) != tool:
            continue
        bad = {
            t
            for t in targets
            if t not in PUBLIC and _tool_of(t) != tool and t not in TOOLS[tool]
        }
        if bad:
            private[module] = sorted(bad)
    assert private == {}


def test_the_graph_sees_the_imports() -> None:
    # A guard for the walker itself: known edges are found.
    graph = import_graph()
    assert "trio_emtcp._socket" in graph["trio_emtcp.ip.tcp"]
    assert "trio_emtcp._driver" in graph["trio_emtcp._socket"]
    assert "trio_emtcp.ip" in graph["trio_emtcp"]


if __name__ == "__main__":
    graph = import_graph()
    for module in sorted(graph):
        print(f"{module} -> {', '.join(sorted(graph[module])) or '(nothing)'}")
    found = cycles(graph)
    for component in found:
        print("cycle:", " <-> ".join(component))
    if not found:
        print("no cycles")
    sys.exit(1 if found else 0)
