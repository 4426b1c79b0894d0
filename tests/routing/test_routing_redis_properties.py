"""Property tests for the Redis store (real Redis on 127.0.0.1:6379, a unique key prefix
per example): random event sequences with escalation, max wait, max size and overflow,
and after every step the shared state keeps the invariants —
- an agent never holds more than its capacity on a channel, nor voice with anything else;
- a task has at most one pending offer, and is connected at most once;
- an offered agent meets the task's requirements as the decision states them, and a
  level below the queue's own appears only with the escalation step that relaxed it;
and at the end, once every contact is finished, nothing is left reserved or queued."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from routing_helpers import make_config

from routing import DecisionKind, ManualClock, RoutingError
from routing.redis_store import RedisRouter
from tests.support import REDIS_URL

SKILLS = ["billing", "technical", "sales"]
CAPACITY = {"voice": 1, "web": 2}

agent_st = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), min_size=1)
op_st = st.one_of(
    st.tuples(
        st.just("submit"),
        st.integers(0, 2),
        st.sampled_from(["voice", "web"]),
        st.integers(0, 3),
    ),
    st.tuples(st.just("advance"), st.integers(1, 40)),
    st.tuples(st.sampled_from(["accept", "reject", "timeout", "complete", "cancel"]), st.integers(0, 50)),
    st.tuples(st.just("state"), st.integers(0, 4), st.sampled_from(["available", "not_ready"])),
)


def config(agent_skills: list[dict[str, int]]) -> Any:
    queues = {
        "q0": {
            "required_skills": {"billing": 6},
            "escalation": [{"after_s": 20, "relax": {"billing": 2}}, {"after_s": 50, "move_to": "q2"}],
            "max_size": 3,
            "overflow": "q1",
            "reservation_timeout_s": 15,
        },
        "q1": {
            "required_skills": {"technical": 5},
            "strategy": "most_skilled",
            "max_wait_s": 30,
            "overflow": "q2",
            "escalation": [{"after_s": 10, "raise_priority": 2, "drop_preferred": ["sales"]}],
            "preferred_skills": {"sales": 3},
            "reservation_timeout_s": 15,
        },
        "q2": {"strategy": "least_occupied", "max_wait_s": 60, "reservation_timeout_s": 15, "wrap_up_s": 5},
    }
    agents = [
        {"id": f"a{i}", "skills": skills, "capacity": CAPACITY} for i, skills in enumerate(agent_skills)
    ]
    return make_config(queues, agents)


async def run(agent_skills: list[dict[str, int]], ops: list[tuple[Any, ...]]) -> None:
    from redis.asyncio import Redis

    cfg = config(agent_skills)
    skills = {a.id: a.skills for a in cfg.agents}
    redis = Redis.from_url(REDIS_URL)
    clock = ManualClock(1000.0)
    router = RedisRouter(cfg, redis, prefix=f"test-routing-prop-{uuid.uuid4().hex}", clock=clock)
    pending: dict[str, str] = {}  # task -> reservation id
    connected: set[str] = set()
    seen: set[str] = set()
    n = 0

    def check(decisions: list[Any]) -> None:
        for d in decisions:
            if d.kind is not DecisionKind.OFFER:
                continue
            assert d.task_id not in pending, f"{d.task_id} offered twice at once"
            assert d.task_id not in connected, f"{d.task_id} offered while connected"
            facts = d.explanation.facts
            have = skills[d.agent_id]
            for skill, level in facts["required"].items():
                assert have.get(skill, 0) >= level, f"{d.agent_id} lacks {skill}≥{level}"
            base = cfg.queues[d.queue].required_skills
            if any(facts["required"].get(s, 0) < lvl for s, lvl in base.items()):
                assert any("relaxed" in note for note in facts["escalation_steps"])
            pending[d.task_id] = d.reservation.id

    async def state_ok() -> None:
        for agent_id in skills:
            state = await router.agent_state(agent_id)
            loads = {ch: int(state.get(f"l:{ch}", "0")) for ch in CAPACITY}
            assert all(0 <= loads[ch] <= CAPACITY[ch] for ch in CAPACITY), (agent_id, loads)
            assert not (loads["voice"] and loads["web"]), f"{agent_id} mixes voice and web"

    try:
        await router.start()
        for agent_id in skills:
            await router.set_softphone(agent_id, True)
            await router.set_agent_state(agent_id, "available")
        for op in ops:
            kind = op[0]
            try:
                if kind == "submit":
                    n += 1
                    tid = f"t{n}"
                    seen.add(tid)
                    check(await router.submit(tid, f"q{op[1]}", op[2], priority=op[3]))
                elif kind == "advance":
                    clock.advance(op[1])
                    ds = await router.tick()
                    for d in ds:
                        if d.kind in (DecisionKind.RONA, DecisionKind.REQUEUED):
                            pending.pop(d.task_id, None)
                    check(ds)
                elif kind == "state":
                    check(await router.set_agent_state(f"a{op[1] % len(skills)}", op[2], "break"))
                elif kind in ("accept", "reject", "timeout") and pending:
                    tid = sorted(pending)[op[1] % len(pending)]
                    rid = pending.pop(tid)
                    if kind == "accept":
                        await router.accept(rid)
                        connected.add(tid)
                    else:
                        check(await getattr(router, kind)(rid))
                elif kind in ("complete", "cancel") and seen:
                    tid = sorted(seen)[op[1] % len(seen)]
                    if kind == "complete" and tid not in connected:
                        continue
                    ds = await getattr(router, kind)(tid)
                    pending.pop(tid, None)
                    connected.discard(tid)
                    seen.discard(tid)
                    check(ds)
            except RoutingError:
                pass  # e.g. cancelling a task that already left (max wait, refused)
            await state_ok()
        # Drain: every contact ends; nothing may stay reserved, connected or queued.
        for tid in sorted(seen):
            with contextlib.suppress(RoutingError):
                await router.cancel(tid)
        clock.advance(100)
        await router.tick()  # wrap-ups end
        for agent_id in skills:
            state = await router.agent_state(agent_id)
            assert all(state.get(f"l:{ch}", "0") == "0" for ch in CAPACITY), (agent_id, state)
        assert await redis.zcard(router._key("leases")) == 0
        for q in cfg.queues:
            assert await router.waiting(q) == 0
        assert await redis.zcard(router._key("timers")) == 0
    finally:
        await router.clear()
        await redis.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(agent_st, min_size=1, max_size=5), st.lists(op_st, min_size=1, max_size=40))
def test_random_event_sequences_keep_the_invariants_in_redis(agent_skills, ops) -> None:
    asyncio.run(run(agent_skills, ops))
