"""Routing benchmark: decision latency and throughput of the in-memory router, the
Redis router and a naive linear-scan matcher, on one seeded contact-center day.

Workload (full): 10,000 agents over 100 skills (3-6 skills each, levels 1-10;
voice 1, web 2, email 3), 20 queues (one required skill each, 40 % of tasks also
need a language skill; strategies mixed), 20,000 tasks arriving by a Poisson
process at 95 % of the agents' capacity, log-normal handle times (mean ~240 s),
exponential patience (abandons after a mean of 180 s). A discrete-event
simulation with a manual clock drives each router; an offer is accepted at
once and the contact ends after its handle time.

A *decision* is one router call that routes: ``submit`` (task-first) and
``complete``/``cancel``/``tick`` (agent-first, requeue, timers). Its latency is
the wall time of that call. decisions/s = calls / time spent inside them.

The in-memory router runs twice: directly (its synchronous API, as the server
drives it) and through the async RoutingStore Protocol (routing.MemoryStore), in
the same loop as the Redis router.

The naive baseline keeps plain lists and scans every agent (task-first) or every
waiting task (agent-first) per decision, with the same eligibility and strategy
keys; it runs on the first ``--naive-tasks`` tasks because it is slow.

    python bench/routing.py            # full run, writes bench/results/routing.json
    python bench/routing.py --quick    # < 1 minute, writes bench/results/routing_quick.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import json
import math
import os
import platform
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from routing import DecisionKind, ManualClock, MemoryStore, Router, RoutingStore, build_config  # noqa: E402
from routing.config import RoutingConfig  # noqa: E402
from routing.matching import meets, routable_channels, strategy_key  # noqa: E402
from routing.model import Agent, Presence, Task  # noqa: E402

STRATEGIES = (
    ["longest_idle"] * 12
    + ["most_skilled"] * 4
    + ["least_occupied", "least_occupied", "fewest_contacts", "round_robin"]
)
CHANNELS = [("voice", 0.7), ("web", 0.2), ("email", 0.1)]


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float
    task_id: str
    queue: str
    channel: str
    required: dict[str, int]
    priority: int
    handle: float
    patience: float


def make_workload(n_agents: int, n_skills: int, n_tasks: int, seed: int, load: float):
    rng = random.Random(seed)
    skills = [f"s{i:03d}" for i in range(n_skills)]
    languages = skills[-10:]  # the last ten skills act as languages
    agents = []
    for i in range(n_agents):
        own = [*rng.sample(skills[:-10], rng.randint(2, 5)), rng.choice(languages)]
        agents.append(
            {
                "id": f"ag{i:05d}",
                "skills": {s: rng.randint(1, 10) for s in own},
                "capacity": {"voice": 1, "web": 2, "email": 3},
            }
        )
    queues = {}
    for q in range(20):
        queues[f"q{q:02d}"] = {
            "required_skills": {skills[q * 4]: rng.randint(2, 5)},
            "strategy": STRATEGIES[q],
            "aging": {"priority_per_minute": 1},
            "weight": 1 if q % 5 == 0 else 0,
            "reservation_timeout_s": 20,
            "max_wait_s": 1800,
        }
    config = build_config({"skills": {s: {} for s in skills}}, {"queues": queues}, agents)
    # Only agents holding a queue's skill can serve it; size the arrival rate on them.
    mean_handle = 240.0
    servers = sum(
        1 for a in agents if any(queues[q]["required_skills"].keys() & a["skills"].keys() for q in queues)
    )
    rate = load * servers / mean_handle
    sigma = 0.6
    mu = math.log(mean_handle) - sigma**2 / 2
    arrivals, t = [], 0.0
    qnames = list(queues)
    for k in range(n_tasks):
        t += rng.expovariate(rate)
        channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        required = {rng.choice(languages): rng.randint(1, 3)} if rng.random() < 0.4 else {}
        arrivals.append(
            Arrival(
                at=t,
                task_id=f"t{k:06d}",
                queue=rng.choice(qnames),
                channel=channel,
                required=required,
                priority=rng.choice([0, 0, 0, 1, 2]),
                handle=rng.lognormvariate(mu, sigma),
                patience=rng.expovariate(1 / 180.0),
            )
        )
    return config, arrivals


class NaiveMatcher:
    """Linear scans over all agents / all waiting tasks: what the index avoids."""

    def __init__(self, config: RoutingConfig, clock: ManualClock) -> None:
        self.clock = clock
        self.queues = config.queues
        self.agents = [
            Agent(
                id=a.id,
                name=a.id,
                skills=dict(a.skills),
                capacity=dict(a.capacity),
                presence=Presence.AVAILABLE,
                softphone=True,
                idle_seq=i,
            )
            for i, a in enumerate(config.agents)
        ]
        self.by_id = {a.id: a for a in self.agents}
        self.waiting: list[Task] = []
        self.tasks: dict[str, Task] = {}
        self.seq = len(self.agents)
        self.exclusive = frozenset({"voice"})

    def _assign(self, task: Task, agent: Agent) -> tuple[str, str]:
        agent.load[task.channel] = agent.load.get(task.channel, 0) + 1
        task.agent_id = agent.id
        agent.contacts_today += 1
        return task.id, agent.id

    def submit(self, a: Arrival) -> list[tuple[str, str]]:
        q = self.queues[a.queue]
        req = dict(q.required_skills)
        req.update(a.required)
        task = Task(
            id=a.task_id,
            channel=a.channel,
            queue=a.queue,
            required=req,
            priority=a.priority,
            created=self.clock(),
        )
        self.tasks[task.id] = task
        best = None
        for agent in self.agents:
            if task.channel in routable_channels(agent, self.exclusive) and meets(agent, req, frozenset()):
                key = strategy_key(q.strategy, agent, task, 0)
                if best is None or key < best[0]:
                    best = (key, agent)
        if best is None:
            self.waiting.append(task)
            return []
        return [self._assign(task, best[1])]

    def complete(self, task_id: str) -> list[tuple[str, str]]:
        task = self.tasks.pop(task_id)
        agent = self.by_id[task.agent_id or ""]
        agent.load[task.channel] -= 1
        self.seq += 1
        agent.idle_seq = self.seq
        out = []
        while True:
            chans = routable_channels(agent, self.exclusive)
            now = self.clock()
            best = None
            for i, t in enumerate(self.waiting):
                if t.channel in chans and meets(agent, t.required, frozenset()):
                    q = self.queues[t.queue]
                    eff = t.priority + q.aging.priority_per_minute / 60 * (now - t.created)
                    key = (-(eff + q.weight), t.created)
                    if best is None or key < best[0]:
                        best = (key, i)
            if best is None:
                return out
            t = self.waiting.pop(best[1])
            out.append(self._assign(t, agent))

    def cancel(self, task_id: str) -> list[tuple[str, str]]:
        task = self.tasks.pop(task_id)
        self.waiting = [t for t in self.waiting if t.id != task_id]
        del task
        return []


class Recorder:
    def __init__(self) -> None:
        self.lat: list[float] = []  # wall time per decision
        self.cpu: list[float] = []  # this thread's CPU time per decision
        self.offers = 0
        self.queued = 0
        self.abandoned = 0
        self.completed = 0

    def timed(self, fn: Any, *args: Any, **kw: Any) -> Any:
        w0, c0 = time.perf_counter(), time.thread_time()
        out = fn(*args, **kw)
        self.lat.append(time.perf_counter() - w0)
        self.cpu.append(time.thread_time() - c0)
        return out

    def summary(self, name: str, tasks: int, wall: float) -> dict[str, Any]:
        lat = sorted(self.lat)
        busy = sum(lat)
        q = statistics.quantiles(lat, n=1000) if len(lat) > 1 else lat * 999
        cq = statistics.quantiles(sorted(self.cpu), n=1000) if len(self.cpu) > 1 else None
        return {
            "router": name,
            "tasks": tasks,
            "decisions": len(lat),
            "offers": self.offers,
            "abandoned": self.abandoned,
            "completed": self.completed,
            "p50_ms": q[499] * 1e3,
            "p99_ms": q[989] * 1e3,
            "p999_ms": q[998] * 1e3,
            "max_ms": lat[-1] * 1e3,
            "decisions_per_s": len(lat) / busy if busy else 0.0,
            # CPU time of this thread per decision: the work itself, without the waits
            # caused by other processes on the shared cores (None for Redis: the work
            # happens in the Redis server).
            "cpu_p50_ms": cq[499] * 1e3 if cq else None,
            "cpu_p99_ms": cq[989] * 1e3 if cq else None,
            "cpu_decisions_per_s": len(self.cpu) / sum(self.cpu) if cq else None,
            "wall_s": wall,
        }


def simulate(router: Any, clock: ManualClock, arrivals: list[Arrival], is_naive: bool, rec: Recorder) -> None:
    """Discrete-event loop shared by the in-memory router and the naive matcher."""
    events: list[tuple[float, int, str, str]] = []
    by_id = {a.task_id: a for a in arrivals}
    seq = 0
    waiting: set[str] = set()

    def handle(decisions: list[Any]) -> None:
        nonlocal seq
        for d in decisions:
            if is_naive:
                tid = d[0]
            elif d.kind is DecisionKind.OFFER:
                tid = d.task_id
                router.accept(d.reservation.id)
            else:
                continue
            rec.offers += 1
            waiting.discard(tid)
            seq += 1
            heapq.heappush(events, (clock.now + by_id[tid].handle, seq, "end", tid))

    for a in arrivals:
        seq += 1
        heapq.heappush(events, (a.at, seq, "arrive", a.task_id))
    while events:
        deadline = None if is_naive else router.next_deadline()
        if deadline is not None and deadline < events[0][0]:
            clock.set(max(clock.now, deadline))
            w0, c0 = time.perf_counter(), time.thread_time()
            ds = router.tick()
            if ds:  # a tick that only drops stale timers decides nothing: not counted
                rec.lat.append(time.perf_counter() - w0)
                rec.cpu.append(time.thread_time() - c0)
            handle(ds)
            continue
        at, _, kind, tid = heapq.heappop(events)
        clock.set(max(clock.now, at))
        if kind == "arrive":
            a = by_id[tid]
            if is_naive:
                ds = rec.timed(router.submit, a)
            else:
                ds = rec.timed(
                    router.submit,
                    tid,
                    a.queue,
                    a.channel,
                    required=a.required,
                    priority=a.priority,
                )
            waiting.add(tid)
            handle(ds)
            if tid in waiting:
                rec.queued += 1
                seq += 1
                heapq.heappush(events, (at + a.patience, seq, "abandon", tid))
        elif kind == "abandon":
            if tid in waiting and (is_naive or tid in router.tasks):
                waiting.discard(tid)
                rec.abandoned += 1
                handle(rec.timed(router.cancel, tid))
        else:
            rec.completed += 1
            handle(rec.timed(router.complete, tid))


def run_memory(config: RoutingConfig, arrivals: list[Arrival], *, protocol: bool = False) -> dict[str, Any]:
    """The in-memory router, driven directly or (``protocol``) through MemoryStore."""
    clock = ManualClock(0.0)
    router = Router(config, clock)
    for agent_id in router.agents:
        router.set_softphone(agent_id, True)
        router.login(agent_id, ready=True)
    # A long-running server freezes its start-up objects (gc.freeze) so the cyclic GC
    # does not rescan 10,000 agents on every full collection; callcenter does the same.
    gc.collect()
    gc.freeze()
    rec = Recorder()
    t0 = time.perf_counter()
    if protocol:
        asyncio.run(simulate_store(MemoryStore(router), clock, arrivals, rec))
    else:
        simulate(router, clock, arrivals, False, rec)
    gc.unfreeze()
    name = "memory (Protocol)" if protocol else "memory (indexed)"
    return rec.summary(name, len(arrivals), time.perf_counter() - t0)


def run_naive(config: RoutingConfig, arrivals: list[Arrival]) -> dict[str, Any]:
    clock = ManualClock(0.0)
    rec = Recorder()
    t0 = time.perf_counter()
    simulate(NaiveMatcher(config, clock), clock, arrivals, True, rec)
    return rec.summary("naive linear scan", len(arrivals), time.perf_counter() - t0)


async def simulate_store(
    store: RoutingStore, clock: ManualClock, arrivals: list[Arrival], rec: Recorder
) -> None:
    """The same discrete-event loop over the RoutingStore Protocol: drives the Redis
    router, and the in-memory router through MemoryStore (its row next to the direct
    run shows what the async face costs)."""
    by_id = {a.task_id: a for a in arrivals}
    events: list[tuple[float, int, str, str]] = []
    seq = 0
    waiting: set[str] = set()
    perf = time.perf_counter

    async def handle(decisions: list[Any]) -> None:
        nonlocal seq
        for d in decisions:
            if d.kind in (DecisionKind.EXITED, DecisionKind.REFUSED):
                waiting.discard(d.task_id)  # left routing (max wait, full): nothing to abandon
            if d.kind is not DecisionKind.OFFER:
                continue
            await store.accept(d.reservation.id)
            rec.offers += 1
            waiting.discard(d.task_id)
            seq += 1
            heapq.heappush(events, (clock.now + by_id[d.task_id].handle, seq, "end", d.task_id))

    for a in arrivals:
        seq += 1
        heapq.heappush(events, (a.at, seq, "arrive", a.task_id))
    while events:
        # Timers through tick(), as for the in-memory router: escalation, max wait,
        # RONA. A tick that decides nothing is not a decision and is not counted.
        deadline = store.next_deadline()
        if deadline is not None and deadline < events[0][0]:
            clock.set(max(clock.now, deadline))
            t0 = perf()
            ds = await store.tick()
            if ds:
                rec.lat.append(perf() - t0)
            await handle(ds)
            continue
        at, _, kind, tid = heapq.heappop(events)
        clock.set(max(clock.now, at))
        t0 = perf()
        if kind == "arrive":
            a = by_id[tid]
            ds = await store.submit(tid, a.queue, a.channel, required=a.required, priority=a.priority)
            rec.lat.append(perf() - t0)
            waiting.add(tid)
            await handle(ds)
            if tid in waiting:
                seq += 1
                heapq.heappush(events, (at + a.patience, seq, "abandon", tid))
        elif kind == "abandon":
            if tid in waiting:
                waiting.discard(tid)
                rec.abandoned += 1
                ds = await store.cancel(tid)
                rec.lat.append(perf() - t0)
                await handle(ds)
        else:
            rec.completed += 1
            ds = await store.complete(tid)
            rec.lat.append(perf() - t0)
            await handle(ds)


async def run_redis(config: RoutingConfig, arrivals: list[Arrival], url: str) -> dict[str, Any]:
    from redis.asyncio import Redis

    from routing.redis_store import RedisRouter

    redis = Redis.from_url(url)
    clock = ManualClock(0.0)
    router = RedisRouter(config, redis, prefix=f"bench-routing-{uuid.uuid4().hex}", clock=clock)
    try:
        # Context for the figures: the cost of a bare round trip right now.
        pings = []
        for _ in range(500):
            t0 = time.perf_counter()
            await redis.ping()
            pings.append(time.perf_counter() - t0)
        setup = time.perf_counter()
        await router.start()
        await router.bulk_ready([a.id for a in config.agents], softphone=True)
        setup = time.perf_counter() - setup
        rec = Recorder()
        # Where the time goes: Redis' own time inside the scripts (INFO commandstats, every
        # EVALSHA of this run, accepts included) and this client's CPU per decision.
        before = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
        cpu0 = time.thread_time()
        t_start = time.perf_counter()
        await simulate_store(router, clock, arrivals, rec)
        out = rec.summary("redis (Lua)", len(arrivals), time.perf_counter() - t_start)
        client_cpu = time.thread_time() - cpu0
        after = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
        calls = after.get("calls", 0) - before.get("calls", 0)
        out["setup_s"] = setup
        out["ping_p50_ms"] = statistics.median(pings) * 1e3
        out["script_calls"] = calls
        out["script_us_per_call"] = (after.get("usec", 0) - before.get("usec", 0)) / calls if calls else None
        out["client_cpu_us_per_call"] = client_cpu / calls * 1e6 if calls else None
        return out
    finally:
        await router.clear()
        await router.aclose()
        await redis.aclose()


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller run, under a minute")
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--skills", type=int, default=100)
    ap.add_argument("--tasks", type=int)
    ap.add_argument("--naive-tasks", type=int)
    ap.add_argument("--redis-tasks", type=int)
    ap.add_argument("--load", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis", default=os.environ.get("ROUTING_BENCH_REDIS", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--no-redis", action="store_true")
    args = ap.parse_args()
    tasks = args.tasks or (4_000 if args.quick else 20_000)
    naive_tasks = args.naive_tasks or (300 if args.quick else 2_000)
    redis_tasks = args.redis_tasks or (2_000 if args.quick else tasks)

    config, arrivals = make_workload(args.agents, args.skills, tasks, args.seed, args.load)
    results = [run_memory(config, arrivals), run_memory(config, arrivals, protocol=True)]
    if not args.no_redis:
        results.append(asyncio.run(run_redis(config, arrivals[:redis_tasks], args.redis)))
    results.append(run_naive(config, arrivals[:naive_tasks]))

    head = f"{'router':<20}{'tasks':>7}{'decisions':>10}{'p50 ms':>9}{'p99 ms':>9}"
    head += f"{'p99.9 ms':>10}{'max ms':>9}{'dec/s':>10}{'cpu p99':>9}{'cpu dec/s':>10}"
    head += f"{'offers':>8}{'aband.':>7}"
    print(
        f"\nrouting benchmark: {args.agents} agents, {args.skills} skills, load {args.load}, "
        f"seed {args.seed} ({os.cpu_count()} CPUs shared with other work)"
    )
    print(head)
    for r in results:
        print(
            f"{r['router']:<20}{r['tasks']:>7}{r['decisions']:>10}{r['p50_ms']:>9.3f}"
            f"{r['p99_ms']:>9.3f}{r['p999_ms']:>10.3f}{r['max_ms']:>9.2f}"
            f"{r['decisions_per_s']:>10.0f}{_fmt(r['cpu_p99_ms'], 9, 3)}"
            f"{_fmt(r['cpu_decisions_per_s'], 10, 0)}{r['offers']:>8}{r['abandoned']:>7}"
        )
    for r in results:
        if "ping_p50_ms" in r:
            print(f"redis: a bare PING round trip took {r['ping_p50_ms']:.3f} ms (median) in this run")
            print(
                f"redis: {r['script_calls']} script calls (decisions, accepts, ticks): "
                f"{_fmt(r['script_us_per_call'], 0, 0).strip()} µs each inside Redis, "
                f"{_fmt(r['client_cpu_us_per_call'], 0, 0).strip()} µs of this client's CPU each"
            )
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    out = ROOT / "bench/results" / ("routing_quick.json" if args.quick else "routing.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "routing",
                "quick": args.quick,
                "agents": args.agents,
                "skills": args.skills,
                "load": args.load,
                "seed": args.seed,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "note": "2 cores shared with other work while measured",
                "loadavg_end": list(os.getloadavg()),
                "targets": {
                    "memory_p99_ms": 1.0,
                    "memory_decisions_per_s": 20_000,
                    "redis_decisions_per_s": 2_000,
                },
                "results": results,
            },
            indent=2,
        )
    )
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
