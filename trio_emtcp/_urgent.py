"""Urgent (out-of-band) data and exceptional conditions (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._util import Buffer

if TYPE_CHECKING:
    from ._socket import Socket


async def wait_error(sock: Socket) -> None:
    """Wait until ``sock`` has an exceptional condition (urgent data, error)."""
    raise NotImplementedError


async def receive_urgent(sock: Socket, buf: Buffer, flags: int) -> int:
    """``recv(MSG_OOB | flags)``, waiting for urgent data to arrive."""
    raise NotImplementedError
