"""Sphinx configuration for trio_emtcp's documentation."""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import trio_emtcp

project = "trio_emtcp"
author = "trio_emtcp developers"
copyright = "2026, trio_emtcp developers"
release = trio_emtcp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",
]

# Warnings are errors (nox -s docs passes -W) and every cross-reference must
# resolve.  References to Python, Trio and anyio go through intersphinx;
# the build machines have no network, so the inventories are built here
# from the lists in inventories/ (see _inventories below).
nitpicky = True

autodoc_member_order = "bysource"
# ``Buffer`` is ``Any`` at run time (collections.abc.Buffer is Python 3.12+);
# keep its name in the signatures, where ``Any`` would say nothing.
# ``_Record`` is Scanner's type variable (what get_line() returns): a type
# checker sees ``bytes`` or ``list[bytes]`` from the constructor's
# arguments; the reference shows both rather than a private name
# (tests/test_docs.py checks that no signature shows one).
autodoc_type_aliases = {
    "Buffer": "collections.abc.Buffer",
    "_Record": "bytes | list[bytes]",
}
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# -- intersphinx, offline ---------------------------------------------------------

_HERE = Path(__file__).resolve().parent
_INVENTORIES = {
    # name: (the documentation's address, its title)
    "python": ("https://docs.python.org/3", "Python"),
    "trio": ("https://trio.readthedocs.io/en/stable", "Trio"),
    "anyio": ("https://anyio.readthedocs.io/en/stable", "AnyIO"),
}


def _inventories() -> dict[str, tuple[str, str]]:
    """Write an ``objects.inv`` per list in inventories/; the mapping.

    Each list names the objects these docs link to (``NAME ROLE URI``).
    The inventory format is Sphinx's own (version 2: a header, then the
    zlib-compressed lines), written to the build folder, never committed.
    """
    out = _HERE / "_build" / "inventories"
    out.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for name, (url, title) in _INVENTORIES.items():
        lines = []
        for line in (_HERE / "inventories" / f"{name}.txt").read_text().splitlines():
            if line and not line.startswith("#"):
                obj, role, uri = line.split()
                lines.append(f"{obj} {role} 1 {uri} -\n")
        header = (
            "# Sphinx inventory version 2\n"
            f"# Project: {title}\n# Version: \n"
            "# The remainder of this file is compressed using zlib.\n"
        )
        path = out / f"{name}.inv"
        path.write_bytes(header.encode() + zlib.compress("".join(lines).encode()))
        mapping[name] = (url, str(path))
    return mapping


intersphinx_mapping = _inventories()
intersphinx_disabled_reftypes = ["std:doc"]

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
