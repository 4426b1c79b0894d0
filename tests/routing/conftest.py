"""Shared fixtures: the demo configuration and a manual clock (Redis: ``redis_client`` in
tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest
from routing_helpers import DEMO_AGENTS

from routing import ManualClock, Router, RoutingConfig, load_config_files
from tests.support import ROOT


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
def redis_prefix() -> str:
    return f"test-routing-{uuid.uuid4().hex}"
