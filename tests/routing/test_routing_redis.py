"""The Redis store against the real Redis on 127.0.0.1:6379 (unique key prefix per test)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from routing_helpers import make_config
from routing_race_worker import AGENTS, race_config

from routing import DecisionKind, ManualClock, MemoryStore, Router, RoutingStore
from routing.redis_store import RedisRouter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
AG = {"id": "a1", "skills": {"billing": 5}, "capacity": {"voice": 1, "web": 2}}


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def ready(router: RedisRouter, *agents: str) -> None:
    await router.start()
    for a in agents:
        await router.set_softphone(a, True)
        await router.set_agent_state(a, "available")


@pytest.fixture
async def make_router(redis_client, redis_prefix):
    made: list[RedisRouter] = []

    def factory(config, clock=None, **kw) -> RedisRouter:
        router = RedisRouter(
            config, redis_client, prefix=redis_prefix, clock=clock or ManualClock(1000.0), **kw
        )
        made.append(router)
        return router

    yield factory
    if made:
        await made[0].clear()


async def test_offer_accept_complete_and_agent_first(make_router) -> None:
    clock = ManualClock(1000.0)
    cfg = make_config({"q": {"required_skills": {"billing": 3}}}, [AG, dict(AG, id="a2")])
    router = make_router(cfg, clock)
    await ready(router, "a1", "a2")
    (o1,) = await router.submit("t1", "q")
    assert o1.kind is DecisionKind.OFFER and o1.agent_id == "a1"
    assert "longest idle" in o1.explanation.text and "billing≥3 (has 5)" in o1.explanation.text
    (o2,) = await router.submit("t2", "q")
    assert o2.agent_id == "a2"
    (q3,) = await router.submit("t3", "q")
    assert q3.kind is DecisionKind.QUEUED
    assert await router.position("t3") == 1
    await router.accept(o1.reservation.id)
    ds = await router.complete("t1")
    assert [(d.kind, d.task_id, d.agent_id) for d in ds] == [(DecisionKind.OFFER, "t3", "a1")]
    assert "agent-first" in ds[0].explanation.text
    assert (await router.agent_state("a1"))["l:voice"] == "1"


async def test_reject_rona_and_cancel(make_router) -> None:
    clock = ManualClock(1000.0)
    cfg = make_config({"q": {"reservation_timeout_s": 10}}, [AG, dict(AG, id="a2")])
    router = make_router(cfg, clock)
    await ready(router, "a1", "a2")
    (o1,) = await router.submit("t1", "q")
    ds = await router.reject(o1.reservation.id)
    assert [(d.kind, d.agent_id) for d in ds] == [(DecisionKind.REQUEUED, "a1"), (DecisionKind.OFFER, "a2")]
    clock.advance(10)
    ds = await router.tick()
    assert ds[0].kind is DecisionKind.RONA
    state = await router.agent_state("a2")
    assert (state["pres"], state["reason"]) == ("not_ready", "rona")
    # t1 was rejected by a1 and a2 is not ready: it waits
    assert await router.waiting("q") == 1
    assert await router.cancel("t1") == []
    assert await router.waiting("q") == 0


async def test_capacity_exclusive_voice_and_softphone(make_router) -> None:
    router = make_router(make_config({"q": {}}, [AG]))
    await router.start()
    await router.set_agent_state("a1", "available")
    (v,) = await router.submit("v1", "q", "voice")
    assert v.kind is DecisionKind.QUEUED  # no softphone registered
    offers = [(await router.submit(f"w{i}", "q", "web"))[0].kind for i in range(3)]
    assert offers == [DecisionKind.OFFER, DecisionKind.OFFER, DecisionKind.QUEUED]
    assert await router.set_softphone("a1", True) == []  # chatting: voice must wait
    ds = await router.cancel("w0")
    assert [d.task_id for d in ds if d.kind is DecisionKind.OFFER] == ["w2"]
    assert await router.cancel("w1") == []  # still chatting (w2): voice keeps waiting
    ds = await router.cancel("w2")
    assert [d.task_id for d in ds if d.kind is DecisionKind.OFFER] == ["v1"]


async def test_wrap_up_and_queue_weight(make_router) -> None:
    clock = ManualClock(1000.0)
    cfg = make_config(
        {"plain": {"wrap_up_s": 20}, "vip": {"weight": 5}},
        [dict(AG, skills={"billing": 5, "sales": 5})],
    )
    router = make_router(cfg, clock)
    await ready(router, "a1")
    (o,) = await router.submit("first", "plain")
    await router.accept(o.reservation.id)
    await router.submit("old", "plain")
    clock.advance(60)
    await router.submit("new", "vip")
    assert await router.complete("first") == []  # wrap-up holds the slot
    clock.advance(20)
    ds = await router.tick()
    assert [(d.kind, d.task_id) for d in ds if d.kind is DecisionKind.OFFER] == [(DecisionKind.OFFER, "new")]


async def test_crashed_process_reservation_expires_back_to_the_queue(redis_client, redis_prefix) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "routing_race_worker.py"), "crash", redis_prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=worker_env(),
        text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=30)
        rid, agent = line.split()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    clock = ManualClock(1000.0)
    survivor = RedisRouter(race_config(), redis_client, prefix=redis_prefix, clock=clock, lease_grace_s=5.0)
    try:
        task = await redis_client.hgetall(survivor._key("t", "c1"))
        assert task[b"st"] == b"reserved" and task[b"res"].decode() == rid
        clock.advance(120)  # the RONA deadline: only the dead owner had that timer
        assert await survivor.tick() == []
        clock.advance(5.1)  # past the lease grace
        ds = await survivor.tick()
        assert ds[0].kind is DecisionKind.REQUEUED and "expired" in ds[0].explanation.text
        # the agent kept their presence, so the task is offered again right away
        offers = [d for d in ds if d.kind is DecisionKind.OFFER]
        assert [(d.task_id, d.agent_id) for d in offers] == [("c1", agent)]
        assert await redis_client.zcard(survivor._key("leases")) == 1  # the new offer only
    finally:
        await survivor.clear()


def replay_audit(log: list[bytes], capacity: dict[str, int]) -> dict[str, Any]:
    """Replay the audit trail written inside the Lua scripts: at no point may an agent
    hold more than its capacity, mix voice, or a task be reserved twice at once."""
    load: dict[str, Counter[str]] = {}
    reserved: dict[str, str] = {}  # task -> rid outstanding
    accepted: Counter[str] = Counter()
    ended: set[str] = set()
    enqueued: set[str] = set()
    for raw in log:
        ev, *args = raw.decode().split()
        if ev == "enq":
            enqueued.add(args[0])
        elif ev == "res":
            rid, task, agent, ch = args
            assert task not in reserved, f"{task} reserved twice"
            reserved[task] = rid
            agent_load = load.setdefault(agent, Counter())
            agent_load[ch] += 1
            assert agent_load[ch] <= capacity[ch], f"{agent} over capacity on {ch}"
            if agent_load["voice"]:
                assert sum(agent_load.values()) == 1, f"{agent} mixes voice"
        elif ev == "rel":
            rid, task, agent, ch, _mode = args
            assert reserved.pop(task) == rid
            load[agent][ch] -= 1
        elif ev == "acc":
            rid, task, agent = args
            assert reserved.pop(task) == rid
            accepted[task] += 1
        elif ev == "end":
            task, agent, ch = args
            load[agent][ch] -= 1
            ended.add(task)
    return {"accepted": accepted, "ended": ended, "enqueued": enqueued, "load": load, "outstanding": reserved}


@pytest.mark.slow
async def test_two_processes_race_over_the_same_agents(redis_client, redis_prefix, tmp_path) -> None:
    per_process = 1500
    outs = [tmp_path / f"p{i}.json" for i in range(2)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "routing_race_worker.py"),
            "race",
            redis_prefix,
            str(i),
            str(per_process),
            str(outs[i]),
            env=worker_env(),
        )
        for i in range(2)
    ]
    codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), timeout=300)
    router = RedisRouter(race_config(), redis_client, prefix=redis_prefix)
    try:
        assert codes == [0, 0]
        results = [json.loads(o.read_text()) for o in outs]
        all_tasks = {f"p{i}-{k}" for i in range(2) for k in range(per_process)}
        assert sum(r["submitted"] for r in results) == len(all_tasks)
        handed = Counter(t for r in results for t, _agent, _rid in r["accepted"])
        assert set(handed) == all_tasks, "lost tasks"
        assert max(handed.values()) == 1, "a task was handed to two agents"
        # both processes really raced for the same agents
        agents_by_proc = [{a for _t, a, _r in r["accepted"]} for r in results]
        assert len(agents_by_proc[0] & agents_by_proc[1]) >= AGENTS // 2
        crossed = sum(1 for t, _a, _r in results[0]["accepted"] if t.startswith("p1-"))
        assert crossed > 0, "process 0 never placed a task submitted by process 1"

        log = await redis_client.lrange(router._key("log"), 0, -1)
        audit = replay_audit(log, {"voice": 1, "web": 2})
        assert audit["enqueued"] == all_tasks and audit["ended"] == all_tasks
        assert set(audit["accepted"]) == all_tasks and max(audit["accepted"].values()) == 1
        assert not audit["outstanding"]
        assert all(not any(c.values()) for c in audit["load"].values())
        # nothing left behind in Redis
        for q in ("billing", "support"):
            assert await router.waiting(q) == 0
        assert await redis_client.zcard(router._key("leases")) == 0
        for i in range(AGENTS):
            state = await router.agent_state(f"ag{i:02d}")
            assert state.get("l:voice", "0") == "0" and state.get("l:web", "0") == "0"
    finally:
        await router.clear()


@pytest.mark.parametrize(
    "strategy", ["longest_idle", "most_skilled", "least_occupied", "round_robin", "fewest_contacts"]
)
async def test_redis_router_decides_like_the_memory_router(strategy, redis_client, redis_prefix) -> None:
    """Same configuration and events: the shared router picks the same agents (both
    stores driven through the RoutingStore Protocol)."""
    agents = [
        {
            "id": f"x{i}",
            "skills": {"billing": 3 + (i * 7) % 8, "sales": 1 + (i * 5) % 10, "english": 1 + (i * 3) % 10},
            "capacity": {"voice": 1, "web": 2},
        }
        for i in range(6)
    ]
    cfg = make_config(
        {
            "q": {"strategy": strategy, "required_skills": {"billing": 4}},
            "p": {"strategy": strategy, "required_skills": {"billing": 3}, "preferred_skills": {"sales": 5}},
        },
        agents,
    )
    mclock, rclock = ManualClock(1000.0), ManualClock(1000.0)
    red = RedisRouter(cfg, redis_client, prefix=redis_prefix, clock=rclock)
    stores: dict[str, RoutingStore] = {"mem": MemoryStore(Router(cfg, mclock)), "red": red}
    try:
        await red.start()
        for a in agents:
            for store in stores.values():
                await store.set_softphone(a["id"], True)
                await store.set_agent_state(a["id"], "available")
        picks: dict[str, list[tuple[str, str | None]]] = {"mem": [], "red": []}
        held: dict[str, list[str]] = {"mem": [], "red": []}

        async def step(i: int) -> None:
            queue, channel = ("q", "web") if i % 3 else ("p", "voice")
            # some tasks also need a skill no queue requires (a language from the IVR)
            own = {"english": 2 + i % 5} if i % 4 == 1 else None
            for name, store in stores.items():
                for d in await store.submit(f"t{i}", queue, channel, required=own):
                    picks[name].append((d.task_id, d.agent_id))
                    if d.reservation is not None:
                        await store.accept(d.reservation.id)
                        held[name].append(d.task_id)
                if i % 4 == 3 and held[name]:
                    done = held[name].pop(0)
                    for d in await store.complete(done):
                        picks[name].append((d.task_id, d.agent_id))
                        if d.reservation is not None:
                            await store.accept(d.reservation.id)
                            held[name].append(d.task_id)
            mclock.advance(1)
            rclock.advance(1)

        for i in range(24):
            await step(i)
        offers = [p for p in picks["mem"] if p[1] is not None]
        assert len(offers) >= 10  # the scenario really exercises the strategy
        assert picks["red"] == picks["mem"]
    finally:
        await red.clear()


async def test_scripts_are_loaded_again_after_redis_lost_them(make_router, redis_client) -> None:
    """The router sends EVALSHA itself, on connections it keeps: a Redis that lost its
    scripts (a restart, SCRIPT FLUSH) gets them loaded again and the decision is made."""
    cfg = make_config({"q": {"required_skills": {"billing": 3}}}, [AG, dict(AG, id="a2")])
    router = make_router(cfg)
    await ready(router, "a1", "a2")
    await redis_client.script_flush()
    (o1,) = await router.submit("t1", "q")
    assert o1.kind is DecisionKind.OFFER and o1.agent_id == "a1"
    await redis_client.script_flush()
    (o2,) = await router.submit("t2", "q")
    assert o2.kind is DecisionKind.OFFER and o2.agent_id == "a2"
    assert router._idle  # the connection it used is kept for the next call
    await router.aclose()
    assert not router._idle  # ...and given back to the client's pool
