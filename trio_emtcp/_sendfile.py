"""``Socket.send_file``: zero-copy file transmission (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._socket import Socket


async def send_file(
    sock: Socket,
    file: Any,
    offset: int,
    size_in_bytes: int,
    head: Any = None,
    tail: Any = None,
    n_number_of_bytes_per_send: int | None = None,
) -> int:
    """Send ``size_in_bytes`` of ``file`` from ``offset`` over ``sock``."""
    raise NotImplementedError
