"""Routing over Redis: several server processes share one pool of agents and tasks.

:class:`RedisRouter` offers the in-memory :class:`routing.Router`'s interface as
coroutines (same method names and arguments, same :class:`Decision` s) over
state kept in Redis. Every decision that reserves capacity runs as one Lua
script (:mod:`routing.redis_lua`), so it is atomic across processes: two
processes never reserve the same agent slot and never hand one task to two
agents.

Crash safety: each reservation carries a lease (its RONA deadline plus
``lease_grace_s``). The owning process fires RONA at the deadline; if it died,
any other process's :meth:`RedisRouter.tick` finds the lease past due and puts
the task back in its queue (same place: the sort key is stored with the task),
freeing the agent's slot. Wrap-ups are leased the same way.

Scope compared with the in-memory router (what is not shared yet): escalation
steps, max wait / max size overflow and the preferred-agent window are not
applied to Redis-held tasks; statistics are per process (queue length and
position are read from Redis). Decisions, strategies, priorities with aging,
queue weights, capacity, softphone, RONA, reject, cancel, wrap-up and expiry
are shared.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from routing import redis_lua as lua
from routing.config import AgentConfig, RoutingConfig, Strategy
from routing.matching import describe_skills, strategy_key
from routing.model import (
    Agent,
    Decision,
    DecisionKind,
    Explanation,
    Presence,
    Reservation,
    Task,
)
from routing.router import Clock, RoutingError, _merge_min

_NO_AGING_SCALE = 1e9  # without aging, one priority point outranks any age difference


def _kv(levels: Mapping[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(levels.items()))


def _parse_kv(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        out[k] = int(v)
    return out


class RedisRouter:
    """Shared-state router. ``prefix`` namespaces one deployment (tests use a unique one)."""

    def __init__(
        self,
        config: RoutingConfig,
        redis: Redis,
        *,
        prefix: str = "callcenter:routing",
        clock: Clock = time.time,
        owner: str | None = None,
        lease_grace_s: float = 5.0,
        scan_limit: int = 2000,
        audit: bool = False,
    ) -> None:
        self.config = config
        self.queues = dict(config.queues)
        self.redis = redis
        self.prefix = "{" + prefix + "}"  # hash tag: all keys in one cluster slot
        self._clock = clock
        self.owner = owner or uuid.uuid4().hex[:12]
        self.lease_grace_s = lease_grace_s
        self.scan_limit = scan_limit
        exclusive = frozenset(config.settings.exclusive_channels)
        self._scripts = {
            name: redis.register_script(lua.build(getattr(lua, name), exclusive, audit))
            for name in (
                "UPSERT_AGENT",
                "REMOVE_AGENT",
                "SET_FIELD",
                "ENQUEUE",
                "TAKE_FOR_TASK",
                "ELIGIBLE_AGENTS",
                "RESERVE",
                "TAKE_FOR_AGENT",
                "RELEASE",
                "ACCEPT",
                "COMPLETE",
                "END_WRAP",
                "CANCEL",
                "EXPIRE",
            )
        }
        self.agents: dict[str, AgentConfig] = {}  # static part, for explanations/strategies
        self._ordinals = itertools.count(1)
        self._timers: list[tuple[float, int, str, str]] = []  # own RONA and wrap-up timers
        self._tseq = itertools.count(1)
        # Queue order for agent-first decisions: (name, aging rate per second, weight).
        self._queue_args: list[str] = []
        for name, q in self.queues.items():
            self._queue_args += [name, repr(q.aging.priority_per_minute / 60.0), repr(q.weight)]

    async def _run(self, name: str, *args: Any) -> Any:
        return await self._scripts[name](keys=[self.prefix], args=list(args))

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # ------------------------------------------------------------------ agents

    async def start(self) -> None:
        """Register the configured agents (keeps their shared state if already there)."""
        for agent in self.config.agents:
            await self.add_agent(agent)

    async def add_agent(self, agent: AgentConfig | Mapping[str, Any]) -> list[Decision]:
        cfg = agent if isinstance(agent, AgentConfig) else AgentConfig.model_validate(agent)
        self.agents[cfg.id] = cfg
        await self._run(
            "UPSERT_AGENT",
            cfg.id,
            _kv(cfg.skills),
            ",".join(sorted(cfg.groups)),
            _kv(cfg.capacity),
            next(self._ordinals),
        )
        return []

    async def remove_agent(self, agent_id: str) -> list[Decision]:
        await self._run("REMOVE_AGENT", agent_id)
        self.agents.pop(agent_id, None)
        return []

    async def login(self, agent_id: str, *, ready: bool = False) -> list[Decision]:
        if ready:
            return await self.set_agent_state(agent_id, "available")
        return await self.set_agent_state(agent_id, "not_ready", "login")

    async def set_agent_state(self, agent_id: str, state: str, reason: str = "") -> list[Decision]:
        try:
            presence = Presence(state)
        except ValueError:
            raise RoutingError(f"unknown agent state {state!r}") from None
        if presence is Presence.AVAILABLE:
            reason = ""
        ok = await self._run("SET_FIELD", agent_id, "pres", str(presence), "reason", reason)
        if not ok:
            raise RoutingError(f"unknown agent {agent_id!r}")
        return await self._agent_free(agent_id) if presence is Presence.AVAILABLE else []

    async def set_softphone(self, agent_id: str, registered: bool) -> list[Decision]:
        ok = await self._run("SET_FIELD", agent_id, "soft", "1" if registered else "0")
        if not ok:
            raise RoutingError(f"unknown agent {agent_id!r}")
        return await self._agent_free(agent_id) if registered else []

    async def agent_state(self, agent_id: str) -> dict[str, str]:
        """The shared hash of one agent (presence, reason, loads...), decoded."""
        raw = await self.redis.hgetall(self._key("a", agent_id))
        return {_s(k): _s(v) for k, v in raw.items()}

    # ------------------------------------------------------------------ tasks

    async def submit(
        self,
        task_id: str,
        queue: str,
        channel: str = "voice",
        *,
        required: Mapping[str, int] | None = None,
        preferred: Mapping[str, int] | None = None,
        priority: int = 0,
        attributes: Mapping[str, Any] | None = None,
        preferred_agent: str | None = None,
        created: float | None = None,
    ) -> list[Decision]:
        q = self.queues.get(queue)
        if q is None:
            raise RoutingError(f"unknown queue {queue!r}; known: {sorted(self.queues)}")
        now = self._clock()
        created = now if created is None else created
        req = _merge_min(q.required_skills, required or {})
        pref = _merge_min(q.preferred_skills, preferred or {})
        rate = q.aging.priority_per_minute / 60.0
        sort_key = created - priority / rate if rate > 0 else created - priority * _NO_AGING_SCALE
        seq = int(now * 1e6)  # arrival order across processes (microseconds)
        fields = [
            "ch",
            channel,
            "req",
            _kv(req),
            "pref",
            _kv(pref),
            "grp",
            ",".join(sorted(q.groups)),
            "pri",
            priority,
            "created",
            repr(created),
            "seq",
            seq,
            "pa",
            preferred_agent or "",
            "attrs",
            json.dumps(dict(attributes or {}), default=str),
            "entered",
            repr(now),
        ]
        ok = await self._run("ENQUEUE", task_id, queue, repr(sort_key), *fields)
        if not ok:
            raise RoutingError(f"task {task_id!r} is already being routed")
        task = Task(
            id=task_id,
            channel=channel,
            queue=queue,
            required=req,
            preferred=pref,
            priority=priority,
            created=created,
            preferred_agent=preferred_agent,
        )
        decision = await self._task_first(task, now)
        if decision is not None:
            return [decision]
        return [
            Decision(
                DecisionKind.QUEUED,
                task_id,
                queue,
                Explanation(
                    f"no eligible agent free for {channel} [{_kv(req) or 'any skill'}]; waiting in {queue}",
                    {"queue": queue, "required": req},
                ),
            )
        ]

    async def _task_first(self, task: Task, now: float) -> Decision | None:
        q = self.queues[task.queue]
        rid = uuid.uuid4().hex
        deadline = now + q.reservation_timeout_s
        lease = deadline + self.lease_grace_s
        if q.strategy is Strategy.LONGEST_IDLE and not task.preferred:
            res = await self._run("TAKE_FOR_TASK", task.id, rid, repr(lease), self.owner, self.scan_limit)
            if _s(res[0]) != "ok":
                return None
            agent_id, how, scanned = _s(res[1]), _s(res[2]), int(res[3])
            why = "preferred agent" if how == "preferred" else "longest idle"
            return self._offer(
                task,
                agent_id,
                rid,
                now,
                deadline,
                f"{why} (first eligible of {scanned} in idle order)",
                {"strategy": how, "scanned": scanned},
            )
        rows = await self._run("ELIGIBLE_AGENTS", task.id, self.scan_limit)
        ranked: list[tuple[tuple[float | int, ...], str]] = []
        for aid_b, idle, cnt, load, ordinal in rows:
            aid = _s(aid_b)
            static = self.agents.get(aid)
            if static is None:
                continue
            probe = Agent(
                id=aid,
                name=static.name,
                skills=dict(static.skills),
                capacity=dict(static.capacity),
                idle_seq=int(idle),
                contacts_today=int(cnt),
                load=_parse_kv(_s(load)),
                ordinal=int(ordinal),
            )
            if task.preferred_agent == aid:
                key: tuple[float | int, ...] = (-1,)
            else:
                key = (0, *strategy_key(q.strategy, probe, task, 0))
            ranked.append((key, aid))
        ranked.sort()
        for key, aid in ranked:
            outcome = _s(await self._run("RESERVE", task.id, aid, rid, repr(lease), self.owner))
            if outcome == "ok":
                return self._offer(
                    task,
                    aid,
                    rid,
                    now,
                    deadline,
                    f"{q.strategy} (rank key {list(key)}, best of {len(ranked)} eligible)",
                    {"strategy": str(q.strategy), "key": list(key)},
                )
            if outcome == "task":
                return None  # another process placed the task meanwhile
        return None

    def _offer(
        self,
        task: Task,
        agent_id: str,
        rid: str,
        now: float,
        deadline: float,
        why: str,
        facts: dict[str, Any],
    ) -> Decision:
        static = self.agents.get(agent_id)
        probe = Agent(
            id=agent_id,
            name=static.name if static else agent_id,
            skills=dict(static.skills) if static else {},
            capacity={},
        )
        text = (
            f"{task.queue}: {task.channel} task {task.id} → agent {agent_id} ({probe.name}) by "
            f"{why}; {describe_skills(probe, task.required, task.preferred)}"
        )
        explanation = Explanation(
            text, {"queue": task.queue, "agent": agent_id, "required": dict(task.required), **facts}
        )
        res = Reservation(rid, task.id, agent_id, task.queue, task.channel, now, deadline, explanation)
        heapq.heappush(self._timers, (deadline, next(self._tseq), "rona", rid))
        return Decision(DecisionKind.OFFER, task.id, task.queue, explanation, agent_id, res)

    async def _agent_free(self, agent_id: str) -> list[Decision]:
        decisions: list[Decision] = []
        while True:
            now = self._clock()
            rid = uuid.uuid4().hex
            deadline = now + self._min_timeout()
            res = await self._run(
                "TAKE_FOR_AGENT",
                agent_id,
                rid,
                repr(deadline + self.lease_grace_s),
                self.owner,
                repr(now),
                self.scan_limit,
                *self._queue_args,
            )
            if _s(res[0]) != "ok":
                return decisions
            tid, queue, eff, considered = _s(res[1]), _s(res[2]), float(res[3]), int(res[4])
            raw = await self.redis.hmget(self._key("t", tid), "ch", "req", "pref", "pri")
            task = Task(
                id=tid,
                channel=_s(raw[0]),
                queue=queue,
                required=_parse_kv(_s(raw[1])),
                preferred=_parse_kv(_s(raw[2])),
                priority=int(raw[3] or 0),
            )
            deadline = now + self.queues[queue].reservation_timeout_s
            decisions.append(
                self._offer(
                    task,
                    agent_id,
                    rid,
                    now,
                    deadline,
                    f"agent-first: best of {considered} eligible queue heads by effective priority {eff:.1f}",
                    {"decision": "agent_first", "effective_priority": eff, "heads_considered": considered},
                )
            )

    def _min_timeout(self) -> float:
        # The lease must outlive the longest possible reservation of any queue.
        return max(q.reservation_timeout_s for q in self.queues.values())

    async def accept(self, reservation_id: str) -> list[Decision]:
        if not await self._run("ACCEPT", reservation_id, repr(self._clock())):
            raise RoutingError(f"no pending reservation {reservation_id!r}")
        return []

    async def _release(self, reservation_id: str, mode: str, kind: DecisionKind, why: str) -> list[Decision]:
        out = await self._run("RELEASE", reservation_id, mode, repr(self._clock()))
        if not out:
            raise RoutingError(f"no pending reservation {reservation_id!r}")
        tid, aid = _s(out[0]), _s(out[1])
        decisions = [
            Decision(
                kind,
                tid,
                "",
                Explanation(
                    f"offer of {tid} to agent {aid} withdrawn: {why}; the task keeps its age and place",
                    {"agent": aid, "reservation": reservation_id, "reason": why},
                ),
                aid,
            )
        ]
        decisions += await self._retry_task(tid)
        decisions += await self._agent_free(aid)
        return decisions

    async def _retry_task(self, task_id: str) -> list[Decision]:
        raw = await self.redis.hmget(
            self._key("t", task_id), "st", "q", "ch", "req", "pref", "pri", "created", "pa"
        )
        if _s(raw[0]) != "waiting":
            return []
        task = Task(
            id=task_id,
            queue=_s(raw[1]),
            channel=_s(raw[2]),
            required=_parse_kv(_s(raw[3])),
            preferred=_parse_kv(_s(raw[4])),
            priority=int(raw[5] or 0),
            created=float(raw[6] or 0),
            preferred_agent=_s(raw[7]) or None,
        )
        decision = await self._task_first(task, self._clock())
        return [decision] if decision else []

    async def reject(self, reservation_id: str, reason: str = "rejected") -> list[Decision]:
        return await self._release(
            reservation_id, "reject", DecisionKind.REQUEUED, f"agent rejected ({reason})"
        )

    async def timeout(self, reservation_id: str) -> list[Decision]:
        return await self._release(
            reservation_id, "rona", DecisionKind.RONA, "no answer before the deadline (RONA)"
        )

    async def cancel(self, task_id: str, reason: str = "abandoned") -> list[Decision]:
        phase, agent = await self._run("CANCEL", task_id, repr(self._clock()))
        if _s(phase) == "gone":
            raise RoutingError(f"unknown task {task_id!r}")
        return await self._agent_free(_s(agent)) if _s(agent) else []

    async def complete(self, task_id: str) -> list[Decision]:
        queue = _s(await self.redis.hget(self._key("t", task_id), "q"))
        q = self.queues.get(queue)
        wrap = q.wrap_up_s if q else 0.0
        now = self._clock()
        lease = repr(now + wrap + self.lease_grace_s) if wrap > 0 else ""
        out = await self._run("COMPLETE", task_id, lease)
        status = _s(out[0])
        if status == "state":
            raise RoutingError(f"task {task_id!r} is {_s(out[1])}, not connected")
        if status == "wrap_up":
            heapq.heappush(self._timers, (now + wrap, next(self._tseq), "wrap", task_id))
            return []
        return await self._agent_free(_s(out[1]))

    async def end_wrap_up(self, task_id: str) -> list[Decision]:
        agent = await self._run("END_WRAP", task_id)
        if not agent:
            raise RoutingError(f"task {task_id!r} is not in wrap-up")
        return await self._agent_free(_s(agent))

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """Earliest of this process's own timers; call :meth:`tick` then (and every few
        seconds anyway, to reclaim the leases of processes that died)."""
        return self._timers[0][0] if self._timers else None

    async def tick(self, limit: int = 100) -> list[Decision]:
        now = self._clock()
        decisions: list[Decision] = []
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, ref = heapq.heappop(self._timers)
            try:
                if kind == "rona":
                    decisions += await self.timeout(ref)
                else:
                    decisions += await self.end_wrap_up(ref)
            except RoutingError:
                pass  # resolved meanwhile (accepted, cancelled, ended)
        for kind, tid, aid in await self._run("EXPIRE", repr(now), limit):
            kind, tid, aid = _s(kind), _s(tid), _s(aid)
            decisions.append(
                Decision(
                    DecisionKind.REQUEUED if kind == "res" else DecisionKind.WRAP_UP_ENDED,
                    tid,
                    "",
                    Explanation(
                        f"lease of {'reservation' if kind == 'res' else 'wrap-up'} for {tid} "
                        f"(agent {aid}) expired: its process stopped; "
                        + ("task back in its queue" if kind == "res" else "agent freed"),
                        {"agent": aid, "expired": kind},
                    ),
                    aid,
                )
            )
            if kind == "res":
                decisions += await self._retry_task(tid)
            decisions += await self._agent_free(aid)
        return decisions

    # ------------------------------------------------------------------ reads

    async def position(self, task_id: str) -> int | None:
        queue = await self.redis.hget(self._key("t", task_id), "q")
        if queue is None:
            return None
        rank = await self.redis.zrank(self._key("q", _s(queue)), task_id)
        return None if rank is None else rank + 1

    async def waiting(self, queue: str) -> int:
        return int(await self.redis.zcard(self._key("q", queue)))

    async def clear(self) -> None:
        """Delete every key of this prefix (tests; a fresh deployment)."""
        async for key in self.redis.scan_iter(match=self.prefix + ":*", count=1000):
            await self.redis.delete(key)


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
