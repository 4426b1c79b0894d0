"""Fixtures for every test folder. The helpers behind them live in ``tests/support``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import require_redis


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    """The real Redis at ``REDIS_URL`` (127.0.0.1:6379 db 0 unless ``TEST_REDIS_URL`` or
    ``ROUTING_TEST_REDIS`` says otherwise); skipped locally, failed under CI when it is down."""
    client = await require_redis()
    try:
        yield client
    finally:
        await client.aclose()
