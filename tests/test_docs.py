"""Every public name is in the reference documentation (docs/reference)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import types
import typing
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


# -- hand-written signatures match the code ---------------------------------------

_EXPLICIT = re.compile(
    r"^\.\. (?:autoclass|function|autofunction)::\s+(\w+)\s*(\(.*\))\s*$", re.M
)


def _explicit_signatures() -> Iterator[tuple[str, str, str]]:
    for page in sorted(REFERENCE.glob("*.rst")):
        text = page.read_text()
        module = _MODULE.search(text)
        assert module is not None
        for match in _EXPLICIT.finditer(text):
            if match.group(2) != "()":  # "()" only hides a constructor
                yield module.group(1), match.group(1), match.group(2)


@pytest.mark.parametrize(
    ("module", "name", "written"),
    list(_explicit_signatures()),
    ids=lambda v: v if "(" not in v else "",
)
def test_reference_signatures_written_by_hand_match_the_code(
    module: str, name: str, written: str
) -> None:
    # A signature given in the .rst (to hide a private type) is not checked
    # by Sphinx: the parameter names, kinds and defaults must be the code's.
    obj = getattr(importlib.import_module(module), name)
    actual = inspect.signature(obj)
    tree = ast.parse(f"def f{written}: pass")
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    defaults: dict[str, object] = {}
    for arg, default in zip(
        positional[len(positional) - len(args.defaults) :], args.defaults, strict=True
    ):
        defaults[arg.arg] = ast.literal_eval(default)
    for arg, kwdefault in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if kwdefault is not None:
            defaults[arg.arg] = ast.literal_eval(kwdefault)
    names = [a.arg for a in positional] + [a.arg for a in args.kwonlyargs]
    assert names == list(actual.parameters)
    for parameter in actual.parameters.values():
        if type(parameter.default) is object:
            continue  # a private sentinel: the page shows what it stands for
        if parameter.default is inspect.Parameter.empty:
            assert parameter.name not in defaults, parameter.name
        else:
            assert defaults.get(parameter.name) == parameter.default, parameter.name
    kinds = {
        **{a.arg: inspect.Parameter.POSITIONAL_ONLY for a in args.posonlyargs},
        **{a.arg: inspect.Parameter.POSITIONAL_OR_KEYWORD for a in args.args},
        **{a.arg: inspect.Parameter.KEYWORD_ONLY for a in args.kwonlyargs},
    }
    assert {n: p.kind for n, p in actual.parameters.items()} == kinds


# -- "Coming from Emilua" maps every member of Emilua's newest API -----------------

EMILUA_PAGE = REFERENCE.parent / "emilua.rst"

# Every member of Emilua's newest reference (0.11) for the APIs trio_emtcp
# ports, by the section of the page that must list it.
EMILUA_MEMBERS: dict[str, list[str]] = {
    "``ip.tcp.socket``": [
        "new", "open", "bind", "close", "cancel", "assign", "release",
        "io_control", "shutdown", "connect", "disconnect", "read_some",
        "write_some", "receive", "send", "send_file", "wait", "set_option",
        "get_option", "do_not_route", "end_of_record", "out_of_band", "peek",
        "is_open", "local_address", "local_port", "remote_address",
        "remote_port", "at_mark",
    ],
    "``ip.tcp.acceptor``": [
        "new", "open", "set_option", "get_option", "bind", "listen", "accept",
        "wait", "close", "cancel", "assign", "release", "is_open",
        "local_address", "local_port",
    ],
    "``ip.tcp.listen`` and ``ip.tcp.dial``": ["ip.tcp.listen", "ip.tcp.dial"],
    "``ip``: resolution, names, endpoint strings": [
        "ip.tcp.get_address_info", "ip.tcp.get_address_v4_info",
        "ip.tcp.get_address_v6_info", "address_configured", "all_matching",
        "canonical_name", "passive", "v4_mapped", "ip.tcp.get_name_info",
        "host_name", "service_name", "ip.host_name", "ip.connect",
        "ip.tostring", "ip.toendpoint",
    ],
    "``ip.address``": [
        "new", "any_v4", "any_v6", "loopback_v4", "loopback_v6",
        "broadcast_v4", "to_v6", "to_v4", "is_loopback", "is_multicast",
        "is_unspecified", "is_v4", "is_v6", "is_link_local", "is_site_local",
        "is_v4_mapped", "is_multicast_global", "is_multicast_link_local",
        "is_multicast_node_local", "is_multicast_org_local",
        "is_multicast_site_local", "scope_id", "tostring",
    ],
    "``stream``": [
        "stream.write_all", "stream.write_at_least", "stream.read_all",
        "stream.read_at_least",
    ],
    "``stream.scanner``": [
        "stream.scanner.new", "stream", "record_separator", "field_separator",
        "field_pattern", "trim_record", "buffer_size_hint", "max_record_size",
        "with_awk_defaults", "get_line", "buffered_line", "remove_line",
        "buffer", "set_buffer", "record_terminator", "record_number",
    ],
}  # fmt: skip

_ROLE = re.compile(
    r":(?:meth|attr|func|class|exc|data|mod):`(?:[^`<]*<)?~?(trio_emtcp[\w.]*)>?`"
)


def _sections(text: str) -> dict[str, str]:
    """The page's sections by title (titles underlined with ``-``)."""
    lines = text.splitlines()
    starts = [
        i
        for i in range(len(lines) - 1)
        if lines[i]
        and set(lines[i + 1]) == {"-"}
        and len(lines[i + 1]) >= len(lines[i])
    ]
    return {
        lines[i]: "\n".join(lines[i + 2 : end])
        for i, end in zip(starts, [*starts[1:], len(lines)], strict=True)
    }


def _rows(section: str) -> list[tuple[str, str]]:
    """``(Emilua cell, trio_emtcp cell)`` of each row of the mapping tables.

    Those are the list-tables whose first column is headed "Emilua" (not the
    table of socket options).
    """
    rows = []
    for table in section.split(".. list-table::")[1:]:
        # The text before the first row, the header row, then the rows.
        _, header, *body = re.split(r"^   \* - ", table, flags=re.M)
        if header.split("\n", 1)[0].strip() != "Emilua":
            continue
        for row in body:
            emilua, ours, *_ = [*re.split(r"^     - ", row, flags=re.M), ""]
            rows.append((emilua, ours))
    return rows


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


def test_emilua_page_lists_every_member_of_emilua_newest_api() -> None:
    sections = _sections(EMILUA_PAGE.read_text())
    for title, members in EMILUA_MEMBERS.items():
        assert title in sections, f"no section {title}"
        emilua_cells = " ".join(cell for cell, _ in _rows(sections[title]))
        literals = " ".join(re.findall(r"``(.+?)``", emilua_cells, flags=re.S))
        for member in members:
            assert re.search(rf"(?<!\w){re.escape(member)}\b", literals), (
                f"{title}: Emilua's {member!r} is not listed"
            )


def test_emilua_page_names_a_trio_emtcp_object_in_every_row() -> None:
    sections = _sections(EMILUA_PAGE.read_text())
    for title in EMILUA_MEMBERS:
        for emilua, ours in _rows(sections[title]):
            # A few rows map to Python itself or say what is left out.
            if _ROLE.search(ours) is None:
                assert re.search(
                    r"not provided|not an attribute|``str\(addr\)``|``==``", ours
                ), f"{title}: the row for {emilua.split()[0]} links to nothing"


def test_emilua_page_every_trio_emtcp_name_exists() -> None:
    targets = _ROLE.findall(EMILUA_PAGE.read_text())
    assert len(targets) > 100
    for target in targets:
        _resolve(target)  # AttributeError/ImportError name the culprit


# -- no private names in the rendered signatures (SPEC §12) -----------------------

CONF = REFERENCE.parent / "conf.py"
_MEMBERS_OPTION = re.compile(r"^   :members: (.+)$", re.M)


def _type_aliases() -> dict[str, str]:
    """docs/conf.py's ``autodoc_type_aliases``, read without running conf.py."""
    for node in ast.parse(CONF.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "autodoc_type_aliases"
        ):
            aliases = ast.literal_eval(node.value)
            assert isinstance(aliases, dict)
            return aliases
    raise AssertionError("docs/conf.py sets no autodoc_type_aliases")


class _Alias:
    """What autodoc puts in a signature for a name in ``autodoc_type_aliases``.

    Like Sphinx's own ``TypeAliasForwardRef``: callable and ``|``-able, so
    that ``typing`` takes it for a type inside ``Alias | None``.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self) -> None:
        raise NotImplementedError

    def __or__(self, other: object) -> object:
        return typing.Union[self, other]  # noqa: UP007 - not a type to Python

    def __ror__(self, other: object) -> object:
        return typing.Union[other, self]  # noqa: UP007


class _AliasNamespace(dict[str, object]):
    # typing.get_type_hints looks names up here first, as Sphinx's
    # TypeAliasNamespace makes it do.
    def __init__(self, aliases: dict[str, str]) -> None:
        super().__init__({name: _Alias(text) for name, text in aliases.items()})


def _listed_special_members() -> set[str]:
    """Dunder members a reference page asks for by name (``:members: __enter__``)."""
    names: set[str] = set()
    for page in REFERENCE.glob("*.rst"):
        for match in _MEMBERS_OPTION.finditer(page.read_text()):
            names.update(
                n.strip()
                for n in match.group(1).split(",")
                if n.strip().startswith("__")
            )
    return names


def _rendered_callables() -> Iterator[tuple[str, Callable[..., object]]]:
    """Every function autodoc renders a signature for, overloads included."""
    special = {"__init__", *_listed_special_members()}
    seen: set[int] = set()

    def with_overloads(
        name: str, func: Callable[..., object]
    ) -> Iterator[tuple[str, Callable[..., object]]]:
        yield name, func
        get_overloads = getattr(typing, "get_overloads", None)  # Python 3.11+
        if get_overloads is not None:
            for n, variant in enumerate(get_overloads(func)):
                yield f"{name}[overload {n}]", variant

    for module in MODULES:
        for name, value in vars(module).items():
            if name.startswith("_") or id(value) in seen:
                continue
            seen.add(id(value))
            qualified = f"{module.__name__}.{name}"
            if isinstance(value, type):
                for cls in value.__mro__:
                    if cls.__module__ in ("builtins", "typing", "abc"):
                        continue
                    for attr, member in vars(cls).items():
                        if attr.startswith("_") and attr not in special:
                            continue
                        if isinstance(member, (classmethod, staticmethod)):
                            member = member.__func__
                        if isinstance(member, property):
                            member = member.fget
                        if inspect.isfunction(member):
                            yield from with_overloads(f"{qualified}.{attr}", member)
            elif inspect.isfunction(value):
                yield from with_overloads(qualified, value)


def _type_names(hint: object) -> Iterator[str]:
    """The dotted names autodoc renders (and links) for an evaluated hint."""
    if isinstance(hint, _Alias):
        yield hint.text
    elif isinstance(hint, typing.TypeVar):
        yield f"{hint.__module__}.{hint.__name__}"
    elif isinstance(hint, (list, tuple)):  # Callable's parameter list
        for item in hint:
            yield from _type_names(item)
    elif typing.get_origin(hint) is typing.Literal:
        pass
    elif typing.get_origin(hint) is not None:
        yield from _type_names(typing.get_origin(hint))
        yield from _type_names(typing.get_args(hint))
    elif isinstance(hint, type):
        yield f"{hint.__module__}.{hint.__qualname__}"


def _private(dotted: str) -> bool:
    """A name shown as ``_R``, or a link into one of our private modules."""
    parts = dotted.replace("|", " ").replace("[", " ").replace("]", " ").split()
    for name in parts:
        components = name.split(".")
        if components[-1].startswith("_"):
            return True
        if components[0] == "trio_emtcp" and any(c.startswith("_") for c in components):
            return True
    return False


def _names_in_source(annotation: str) -> Iterator[str]:
    """Dotted names in an annotation string, as autodoc shows one it cannot
    evaluate."""
    for node in ast.walk(ast.parse(annotation, mode="eval")):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr


def _private_names(func: Callable[..., object], aliases: dict[str, str]) -> set[str]:
    # Autodoc drops self/cls and evaluates the rest with typing.get_type_hints
    # and the aliases; where that fails it shows the annotations as written.
    annotations = {
        name: text
        for name, text in getattr(func, "__annotations__", {}).items()
        if name not in ("self", "cls")
    }
    try:
        hints = typing.get_type_hints(func, localns=_AliasNamespace(aliases))
    except Exception:
        names = [
            n
            for text in annotations.values()
            if isinstance(text, str)
            for n in _names_in_source(text)
        ]
    else:
        names = [n for p in annotations for n in _type_names(hints[p])]
    return {n for n in names if _private(n)}


def test_rendered_signatures_show_no_private_names() -> None:
    aliases = _type_aliases()
    found = {
        name: sorted(private)
        for name, func in _rendered_callables()
        if (private := _private_names(func, aliases))
    }
    assert not found, f"private names in rendered signatures: {found}"


def test_private_name_check_sees_what_autodoc_would_show() -> None:
    # The check above is only as good as its view of a signature.
    def get_line() -> bytes:
        raise NotImplementedError

    assert _private_names(get_line, {}) == set()
    get_line.__annotations__["return"] = typing.TypeVar("_Record")
    assert _private_names(get_line, {}) == {f"{__name__}._Record"}
    # A public-looking type variable still links into a private module.
    get_line.__annotations__["return"] = typing.TypeVar("Record")
    get_line.__annotations__["return"].__module__ = "trio_emtcp._scanner"
    assert _private_names(get_line, {}) == {"trio_emtcp._scanner.Record"}
    # Annotations autodoc cannot evaluate are shown as written.
    get_line.__annotations__["return"] = "_Unresolvable"
    assert _private_names(get_line, {}) == {"_Unresolvable"}
    assert _private_names(get_line, {"_Unresolvable": "bytes"}) == set()
    get_line.__annotations__["return"] = "_Unresolvable | None"
    assert _private_names(get_line, {"_Unresolvable": "bytes"}) == set()
    assert _private_names(get_line, {"_Unresolvable": "_Hidden"}) == {"_Hidden"}
    get_line.__annotations__["return"] = "list[_Unresolvable]"
    assert _private_names(get_line, {}) == {"_Unresolvable"}
