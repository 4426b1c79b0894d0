"""The most-skilled score has one definition, routing.matching.skill_score; the Redis
store's Lua gets its weights from there (routing.redis_lua's script header). Here, on
generated agents and tasks, the Lua's score of the agent it picks (the first element of
the decision's key) must equal skill_score, and both stores — driven through the
RoutingStore Protocol — must pick the same agent, the highest scoring eligible one.
Real Redis on 127.0.0.1:6379, a unique key prefix per example."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from routing_helpers import make_config, ready_router

from routing import DecisionKind, ManualClock, MemoryStore, RoutingStore
from routing.matching import meets, skill_score
from routing.model import Agent, Task
from routing.redis_lua import LuaConfig, header
from routing.redis_store import RedisRouter
from tests.support import REDIS_URL

SKILLS = ["billing", "technical", "sales", "english", "spanish"]
levels_st = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=4)


def test_the_lua_header_carries_the_python_weights() -> None:
    from routing.config import MAX_LEVEL
    from routing.matching import PREFERRED_WEIGHT, REQUIRED_WEIGHT

    text = header(LuaConfig(frozenset({"voice"})))
    assert f"local W_REQ, W_PREF, MAX_LEVEL = {REQUIRED_WEIGHT}, {PREFERRED_WEIGHT}, {MAX_LEVEL}\n" in text


async def decide(
    agents: list[dict[str, int]], required: dict[str, int], preferred: dict[str, int]
) -> tuple[dict[str, Any], ...]:
    from redis.asyncio import Redis

    cfg = make_config(
        {"q": {"strategy": "most_skilled", "required_skills": required}},
        [{"id": f"a{i}", "skills": skills, "capacity": {"voice": 1}} for i, skills in enumerate(agents)],
    )
    redis = Redis.from_url(REDIS_URL)
    red = RedisRouter(cfg, redis, prefix=f"test-routing-score-{uuid.uuid4().hex}", clock=ManualClock(1000.0))
    stores: dict[str, RoutingStore] = {"mem": MemoryStore(ready_router(cfg, ManualClock(1000.0))), "red": red}
    try:
        await red.start()
        for i in range(len(agents)):  # the same idle order as ready_router's
            await red.set_softphone(f"a{i}", True)
            await red.set_agent_state(f"a{i}", "available")
        out = []
        for store in stores.values():
            (d,) = await store.submit("t1", "q", preferred=preferred)
            out.append({"kind": d.kind, "agent": d.agent_id, "facts": d.explanation.facts})
        return tuple(out)
    finally:
        await red.clear()
        await red.aclose()
        await redis.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(levels_st.filter(bool), min_size=1, max_size=4),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 4), max_size=2),
    levels_st,
)
def test_lua_scores_agree_with_skill_score(
    agents: list[dict[str, int]], required: dict[str, int], preferred: dict[str, int]
) -> None:
    mem, red = asyncio.run(decide(agents, required, preferred))
    assert (red["kind"], red["agent"]) == (mem["kind"], mem["agent"])
    task = Task(id="t1", channel="voice", queue="q", required=required, preferred=preferred)
    pool = [Agent(id=f"a{i}", name="", skills=skills, capacity={}) for i, skills in enumerate(agents)]
    eligible = [skill_score(a, task) for a in pool if meets(a, required, frozenset())]
    if not eligible:
        assert red["kind"] is DecisionKind.QUEUED
        return
    assert red["kind"] is DecisionKind.OFFER
    best = skill_score(pool[int(red["agent"][1:])], task)
    assert best == max(eligible)
    assert float(red["facts"]["key"].split(",")[0]) == -best
    assert mem["facts"]["key"][0] == -best
