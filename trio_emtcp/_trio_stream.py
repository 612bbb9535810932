"""Trio's stream and listener contracts on top of Socket and Acceptor.

Placeholder: the methods of ``trio.abc.HalfCloseableStream`` and
``trio.abc.Listener`` arrive with the Trio interoperability work.
"""

from __future__ import annotations

__all__ = ["TrioListenerMixin", "TrioStreamMixin"]


class TrioStreamMixin:
    """Trio's ``HalfCloseableStream`` methods for ``Socket``."""

    __slots__ = ()


class TrioListenerMixin:
    """Trio's ``Listener`` for ``Acceptor``."""

    __slots__ = ()
