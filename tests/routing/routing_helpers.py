"""Helpers for routing tests: small configs built for one behaviour each."""

from __future__ import annotations

from typing import Any

from routing import ManualClock, Router, RoutingConfig, build_config

# The three demo agents, loaded with the demo skills.yaml and queues.yaml.
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

SKILLS = {"skills": {s: {} for s in ("billing", "technical", "sales", "english", "spanish")}}


def make_config(
    queues: dict[str, Any], agents: list[dict[str, Any]], settings: dict[str, Any] | None = None
) -> RoutingConfig:
    """A small config for one behaviour under test."""
    doc: dict[str, Any] = {"queues": queues}
    if settings:
        doc["settings"] = settings
    return build_config(SKILLS, doc, agents)


def ready_router(config: RoutingConfig, clock: ManualClock) -> Router:
    router = Router(config, clock)
    for agent_id in list(router.agents):
        router.set_softphone(agent_id, True)
        router.login(agent_id, ready=True)
    return router
