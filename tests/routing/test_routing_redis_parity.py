"""One interface over both stores: the same events drive the in-memory Router (through
MemoryStore) and the RedisRouter (real Redis on 127.0.0.1:6379, unique key prefix),
both as a RoutingStore, and both must decide the same — escalation steps, max wait,
max size with overflow, the preferred-agent window — with the same explanations for
escalation and overflow."""

from __future__ import annotations

from typing import Any

import pytest
from routing_helpers import make_config, ready_router

from routing import Decision, DecisionKind, ManualClock, MemoryStore, RoutingConfig, RoutingStore
from routing.redis_store import RedisRouter

AG = {"id": "a1", "name": "Ann", "skills": {"billing": 5}, "capacity": {"voice": 1, "web": 3, "email": 5}}
# Texts that come from the shared pure rules (routing.escalation) must match word for word.
SHARED_TEXT = {DecisionKind.ESCALATED, DecisionKind.OVERFLOW, DecisionKind.REFUSED, DecisionKind.EXITED}


def summary(decisions: list[Decision]) -> list[tuple[Any, ...]]:
    out = []
    for d in decisions:
        text = d.explanation.text if d.kind in SHARED_TEXT else None
        steps = d.explanation.facts.get("escalation_steps") if d.kind is DecisionKind.OFFER else None
        out.append((str(d.kind), d.task_id, d.agent_id, d.target_queue, text, steps))
    return out


class Pair:
    """The two routers side by side, each on its own manual clock moved together."""

    def __init__(self, config: RoutingConfig, redis_client: Any, prefix: str, **kw: Any) -> None:
        self.mclock, self.rclock = ManualClock(1000.0), ManualClock(1000.0)
        self.mem = MemoryStore(ready_router(config, self.mclock))
        self.red = RedisRouter(config, redis_client, prefix=prefix, clock=self.rclock, **kw)
        self.stores: dict[str, RoutingStore] = {"mem": self.mem, "red": self.red}
        self.res: dict[str, dict[str, str]] = {"mem": {}, "red": {}}

    async def start(self) -> None:
        await self.red.start()
        for agent_id in self.mem.router.agents:
            await self.red.set_softphone(agent_id, True)
            await self.red.set_agent_state(agent_id, "available")

    async def do(self, method: str, *args: Any, **kw: Any) -> list[Decision]:
        """Call both routers; their decisions must agree. Returns Redis's."""
        got = {}
        for name, store in self.stores.items():
            if method in ("accept", "reject", "timeout"):
                call_args: tuple[Any, ...] = (self.res[name].pop(args[0]), *args[1:])
            else:
                call_args = args
            got[name] = await getattr(store, method)(*call_args, **kw)
            for d in got[name]:
                if d.reservation is not None:
                    self.res[name][d.task_id] = d.reservation.id
        assert summary(got["red"]) == summary(got["mem"])
        return got["red"]

    def advance(self, seconds: float) -> None:
        self.mclock.advance(seconds)
        self.rclock.advance(seconds)

    async def tick(self) -> list[Decision]:
        return await self.do("tick")


@pytest.fixture
async def pair_of(redis_client, redis_prefix):
    made: list[Pair] = []

    async def factory(config: RoutingConfig, **kw: Any) -> Pair:
        pair = Pair(config, redis_client, redis_prefix, **kw)
        made.append(pair)
        await pair.start()
        return pair

    yield factory
    if made:
        await made[0].red.clear()


def kinds(decisions: list[Decision]) -> list[str]:
    return [str(d.kind) for d in decisions]


async def test_relax_a_minimum_level(pair_of) -> None:
    cfg = make_config(
        {"q": {"required_skills": {"billing": 7}, "escalation": [{"after_s": 30, "relax": {"billing": 4}}]}},
        [AG],
    )
    pair = await pair_of(cfg)
    assert kinds(await pair.do("submit", "t1", "q")) == ["queued"]
    pair.advance(29)
    assert await pair.tick() == []
    pair.advance(1)
    ds = await pair.tick()
    assert kinds(ds) == ["escalated", "offer"] and ds[1].agent_id == "a1"
    assert "escalation step 1 (after 30s in q): relaxed billing 7→4" in ds[1].explanation.text
    assert ds[1].explanation.facts["required"] == {"billing": 4}


async def test_drop_a_preferred_skill_and_required_skill(pair_of) -> None:
    cfg = make_config(
        {
            "q": {
                "required_skills": {"billing": 3, "sales": 2},
                "preferred_skills": {"english": 5},
                "escalation": [{"after_s": 10, "drop_preferred": ["english"], "drop_required": ["sales"]}],
            }
        },
        [AG],
    )
    pair = await pair_of(cfg)
    await pair.do("submit", "t1", "q")
    pair.advance(10)
    ds = await pair.tick()
    assert kinds(ds) == ["escalated", "offer"]
    assert "dropped required sales, dropped preferred english" in ds[0].explanation.text


async def test_widen_to_another_agent_group(pair_of) -> None:
    cfg = make_config(
        {"q": {"groups": ["tier1"], "escalation": [{"after_s": 5, "widen_groups": ["tier2"]}]}},
        [dict(AG, groups=["tier2"])],
    )
    pair = await pair_of(cfg)
    assert kinds(await pair.do("submit", "t1", "q")) == ["queued"]
    pair.advance(5)
    ds = await pair.tick()
    assert kinds(ds) == ["escalated", "offer"]
    assert "widened to groups ['tier1', 'tier2']" in ds[1].explanation.text


async def test_raise_priority_then_move_to_another_queue(pair_of, redis_client) -> None:
    cfg = make_config(
        {
            "q": {
                "escalation": [{"after_s": 10, "raise_priority": 3}, {"after_s": 20, "move_to": "r"}],
                "required_skills": {"sales": 1},
            },
            "r": {},
        },
        [AG],
    )
    pair = await pair_of(cfg)
    await pair.do("submit", "t1", "q")
    pair.advance(10)
    (esc,) = await pair.tick()
    assert esc.kind is DecisionKind.ESCALATED and "priority +3 → 3" in esc.explanation.text
    assert await redis_client.hget(pair.red._key("t", "t1"), "pri") == b"3"
    pair.advance(10)
    ds = await pair.tick()
    assert kinds(ds) == ["escalated", "overflow", "offer"]
    assert ds[1].target_queue == "r" and ds[2].agent_id == "a1"
    assert ds[2].explanation.text.startswith("overflow from q; r: voice task t1 → agent a1")


async def test_priority_raised_by_a_step_reorders_the_queue(pair_of) -> None:
    cfg = make_config(
        {"q": {"aging": {"priority_per_minute": 0}, "escalation": [{"after_s": 30, "raise_priority": 5}]}},
        [AG],
    )
    pair = await pair_of(cfg)
    await pair.do("submit", "busy", "q")
    await pair.do("accept", "busy")
    await pair.do("submit", "std", "q")
    pair.advance(25)
    await pair.do("submit", "vip", "q", priority=3)
    assert [await pair.red.position(t) for t in ("vip", "std")] == [1, 2]
    pair.advance(5)
    assert kinds(await pair.tick()) == ["escalated"]  # std: 0 -> 5, ahead of vip (3)
    assert [await pair.red.position(t) for t in ("std", "vip")] == [1, 2]
    assert [await pair.mem.position(t) for t in ("std", "vip")] == [1, 2]
    ds = await pair.do("complete", "busy")
    assert [(d.task_id, d.agent_id) for d in ds] == [("std", "a1")]


async def test_max_size_overflows_then_refuses(pair_of) -> None:
    cfg = make_config(
        {
            "q": {"max_size": 1, "overflow": "o", "required_skills": {"sales": 1}},
            "o": {"max_size": 1, "required_skills": {"sales": 1}},
        },
        [AG],
    )
    pair = await pair_of(cfg)
    assert kinds(await pair.do("submit", "t1", "q")) == ["queued"]
    ds = await pair.do("submit", "t2", "q")
    assert kinds(ds) == ["overflow", "queued"] and ds[0].target_queue == "o"
    assert "q is full (1 waiting): moved to o" in ds[0].explanation.text
    ds = await pair.do("submit", "t3", "q")
    assert kinds(ds) == ["overflow", "refused"]
    assert await pair.red.waiting("q") == 1 and await pair.red.waiting("o") == 1


async def test_max_wait_overflows_then_exits(pair_of, redis_client) -> None:
    cfg = make_config(
        {
            "q": {"max_wait_s": 30, "overflow": "o", "required_skills": {"sales": 1}},
            "o": {"max_wait_s": 10, "required_skills": {"sales": 1}},
        },
        [AG],
    )
    pair = await pair_of(cfg)
    await pair.do("submit", "t1", "q")
    pair.advance(30)
    ds = await pair.tick()
    assert kinds(ds) == ["overflow", "queued"]
    assert "waited 30s, max wait of q is 30s: moved to o" in ds[0].explanation.text
    assert await pair.red.waiting("o") == 1
    pair.advance(10)
    (exit_,) = await pair.tick()
    assert exit_.kind is DecisionKind.EXITED
    assert await redis_client.exists(pair.red._key("t", "t1")) == 0
    assert await redis_client.zcard(pair.red._key("timers")) == 0


async def test_max_wait_while_ringing_is_decided_after_rona(pair_of) -> None:
    cfg = make_config(
        {
            "q": {"max_wait_s": 10, "reservation_timeout_s": 15, "overflow": "o"},
            "o": {"required_skills": {"sales": 1}},
        },
        [AG],
    )
    pair = await pair_of(cfg)
    assert kinds(await pair.do("submit", "t1", "q")) == ["offer"]
    pair.advance(10)
    assert await pair.tick() == []  # ringing: wait for the offer to resolve
    pair.advance(5)
    ds = await pair.tick()
    assert [str(d.kind) for d in ds if d.kind is not DecisionKind.RONA] == ["overflow", "queued"]


async def test_preferred_agent_window(pair_of) -> None:
    cfg = make_config(
        {"q": {"preferred_agent_timeout_s": 20}},
        [AG, dict(AG, id="a2", name="Bob")],
    )
    pair = await pair_of(cfg)
    (busy,) = await pair.do("submit", "busy", "q")
    assert busy.agent_id == "a1"
    await pair.do("accept", "busy")
    ds = await pair.do("submit", "t1", "q", preferred_agent="a1")
    assert kinds(ds) == ["queued"] and "held for preferred agent a1 for 20s" in ds[0].explanation.text
    pair.advance(20)
    ds = await pair.tick()
    assert [(d.task_id, d.agent_id) for d in ds] == [("t1", "a2")]
    assert "preferred agent window over: any eligible agent" in ds[0].explanation.text


async def test_a_timer_fires_once_across_processes(redis_client, redis_prefix) -> None:
    """Two routers (as two server processes) tick at the same instant: the escalation
    is applied once; a task armed by a router that then stops still escalates."""
    cfg = make_config(
        {"q": {"required_skills": {"billing": 7}, "escalation": [{"after_s": 30, "relax": {"billing": 4}}]}},
        [AG],
    )
    clock = ManualClock(1000.0)
    first = RedisRouter(cfg, redis_client, prefix=redis_prefix, clock=clock, owner="p1")
    second = RedisRouter(cfg, redis_client, prefix=redis_prefix, clock=clock, owner="p2")
    try:
        await first.start()
        await second.start()
        await first.set_softphone("a1", True)
        await first.set_agent_state("a1", "available")
        await first.submit("t1", "q")  # `first` stops here: it never ticks again
        assert second.next_deadline() is None  # not its own timer...
        clock.advance(30)
        ds = await second.tick()  # ...but any process applies a due queue timer
        assert kinds(ds) == ["escalated", "offer"]
        assert await first.tick() == []
        assert await redis_client.zcard(first._key("timers")) == 0
    finally:
        await first.clear()
