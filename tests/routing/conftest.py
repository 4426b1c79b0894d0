"""Shared fixtures: the demo configuration, a manual clock, and a real Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from routing import ManualClock, Router, RoutingConfig, load_config_files

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("ROUTING_TEST_REDIS", "redis://127.0.0.1:6379/0")

DEMO_AGENTS: list[dict[str, Any]] = [
    {
        "id": "1001",
        "name": "Alice",
        "skills": {"billing": 8, "english": 10, "spanish": 6},
        "capacity": {"voice": 1, "web": 3, "email": 5},
    },
    {
        "id": "1002",
        "name": "Bob",
        "skills": {"technical": 9, "english": 10},
        "capacity": {"voice": 1, "web": 3, "email": 5},
    },
    {
        "id": "1003",
        "name": "Carol",
        "skills": {"sales": 7, "billing": 5, "technical": 4, "english": 9},
        "capacity": {"voice": 1, "web": 3, "email": 5},
    },
]


@pytest.fixture
def demo_config() -> RoutingConfig:
    return load_config_files(ROOT / "config/skills.yaml", ROOT / "config/queues.yaml", DEMO_AGENTS)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def demo_router(demo_config: RoutingConfig, clock: ManualClock) -> Router:
    router = Router(demo_config, clock)
    for agent in ("1001", "1002", "1003"):
        router.set_softphone(agent, True)
        router.login(agent, ready=True)
    return router


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    """The real Redis on 127.0.0.1:6379. Missing Redis fails under CI=true."""
    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
def redis_prefix() -> str:
    return f"test-routing-{uuid.uuid4().hex}"
