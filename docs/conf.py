"""Sphinx configuration for trio_emtcp's documentation."""

from __future__ import annotations

import re
from typing import Any

import trio_emtcp

project = "trio_emtcp"
author = "trio_emtcp developers"
copyright = "2026, trio_emtcp developers"
release = trio_emtcp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",
]

# Warnings are errors (nox -s docs passes -W) and every cross-reference must
# resolve.  The build machines have no network, so there is no intersphinx:
# references into Python's and Trio's own docs are let through by name.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(trio|socket|ssl|ipaddress|enum|re|os|collections|typing|errno|anyio)"
        r"(\..*)?",
    ),
    (
        r"py:.*",
        r"(int|str|bytes|bytearray|memoryview|bool|None|object|float|tuple|list|"
        r"dict|type|Any|Iterable|Sequence|Callable|Awaitable|Buffer|Literal|"
        r"OSError|EOFError|LookupError|ValueError|TypeError|BaseException|"
        r"Exception|ConnectionRefusedError|ConnectionResetError|BrokenPipeError|"
        r"TimeoutError|BlockingIOError|NotImplementedError|array|Pattern|"
        r"IPv4Address|IPv6Address|ExceptionGroup|T|_S|Self|AsyncIterator|"
        r"TracebackType|BinaryIO|IO|Mapping)",
    ),
    (r"py:.*", r"trio_emtcp\._.*"),
]

autodoc_member_order = "bysource"
# ``Buffer`` is ``Any`` at run time (collections.abc.Buffer is Python 3.12+);
# keep its name in the signatures, where ``Any`` would say nothing.
autodoc_type_aliases = {"Buffer": "collections.abc.Buffer"}
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"trio_emtcp {release}"
exclude_patterns = ["_build"]


# Sphinx 9 prints an alias inside a union or a subscript (``Buffer | None``,
# ``Sequence[Buffer]``) as ``TypeAliasForwardRef('collections.abc.Buffer')``;
# put the plain name back.
_FORWARD_REF = re.compile(r"TypeAliasForwardRef\('([^']*)'\)")


def _unwrap_aliases(
    app: Any,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None]:
    def fix(text: str | None) -> str | None:
        return None if text is None else _FORWARD_REF.sub(r"\1", text)

    return fix(signature), fix(return_annotation)


def setup(app: Any) -> None:
    app.connect("autodoc-process-signature", _unwrap_aliases)
