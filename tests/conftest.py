"""Pytest configuration shared by every test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import trio_emtcp
from trio_emtcp.ip.tcp import Socket


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Socket, Socket]]:
    """A connected loopback pair, closed after the test."""
    a, b = await trio_emtcp.socket_pair()
    async with a, b:
        yield a, b
