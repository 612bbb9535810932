"""Pytest configuration shared by every test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import settings

import trio_emtcp
from trio_emtcp.ip.tcp import Socket

from .helpers import FUZZ_EXAMPLES

# Property tests (hypothesis) run a bounded number of examples in the tests
# session: hypothesis's 100 unless a test says otherwise.  ``nox -s fuzz``
# sets TRIO_EMTCP_FUZZ_EXAMPLES and runs them with that many (or a test's
# own count, if larger: see helpers.examples).
if FUZZ_EXAMPLES:
    settings.register_profile("fuzz", max_examples=FUZZ_EXAMPLES)
    settings.load_profile("fuzz")


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Socket, Socket]]:
    """A connected loopback pair, closed after the test."""
    a, b = await trio_emtcp.socket_pair()
    async with a, b:
        yield a, b
