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
from routing.config import AgentConfig, Queue, RoutingConfig, Strategy
from routing.matching import describe_skills
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
        # Skills of round-robin queues get an agent index ordered by ordinal ('' = none).
        rr_skills = frozenset(
            skill
            for q in self.queues.values()
            if q.strategy is Strategy.ROUND_ROBIN
            for skill in (q.required_skills or {"": 0})
        )
        # Skills of longest-idle and most-skilled queues get per-level agent buckets: a
        # decision then never examines the under-skilled agents who pile up at the idle
        # end of a skill bucket, and most-skilled starts at the top level.
        level_skills = frozenset(
            skill
            for q in self.queues.values()
            if q.strategy in (Strategy.LONGEST_IDLE, Strategy.MOST_SKILLED)
            for skill in q.required_skills
        )
        self._scripts = {
            name: redis.register_script(
                lua.build(getattr(lua, name), exclusive, audit, rr_skills, level_skills)
            )
            for name in (
                "UPSERT_AGENT",
                "REMOVE_AGENT",
                "SET_FIELD",
                "ENQUEUE",
                "TAKE_FOR_TASK",
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
        # This process's own offers and connected tasks (reservation -> task, task ->
        # agent): lets a completion scan only the queues that agent can serve.
        self._offered: dict[str, str] = {}
        self._connected: dict[str, str] = {}
        # An agent-first decision may fill several slots (chats, emails) in one script.
        self._max_takes = max((sum(a.capacity.values()) for a in config.agents), default=1) or 1

    async def _run(self, name: str, *args: Any) -> Any:
        return await self._scripts[name](keys=[self.prefix], args=list(args))

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # ------------------------------------------------------------------ agents

    async def start(self, batch: int = 500) -> None:
        """Register the configured agents (keeps their shared state if already there).

        Pipelined: thousands of agents load in a few round trips."""
        agents = list(self.config.agents)
        for first in range(0, len(agents), batch):
            async with self.redis.pipeline(transaction=False) as pipe:
                for cfg in agents[first : first + batch]:
                    self.agents[cfg.id] = cfg
                    await self._scripts["UPSERT_AGENT"](
                        keys=[self.prefix], args=self._upsert_args(cfg), client=pipe
                    )
                await pipe.execute()

    def _upsert_args(self, cfg: AgentConfig) -> list[Any]:
        args: list[Any] = [
            cfg.id,
            _kv(cfg.skills),
            ",".join(sorted(cfg.groups)),
            _kv(cfg.capacity),
            next(self._ordinals),
        ]
        for skill, level in sorted(cfg.skills.items()):
            args += [skill, level]
        return args

    async def add_agent(self, agent: AgentConfig | Mapping[str, Any]) -> list[Decision]:
        cfg = agent if isinstance(agent, AgentConfig) else AgentConfig.model_validate(agent)
        self.agents[cfg.id] = cfg
        await self._run("UPSERT_AGENT", *self._upsert_args(cfg))
        return []

    async def bulk_ready(self, agent_ids: list[str], softphone: bool = True, batch: int = 500) -> None:
        """Start-up helper: make many agents available (and register their softphones)
        in pipelined round trips. No routing decisions run, so use it before tasks
        arrive (a server start, a benchmark); afterwards use :meth:`set_agent_state`."""
        for first in range(0, len(agent_ids), batch):
            async with self.redis.pipeline(transaction=False) as pipe:
                for aid in agent_ids[first : first + batch]:
                    await self._scripts["SET_FIELD"](
                        keys=[self.prefix],
                        args=[aid, "soft", "1" if softphone else "0", "pres", "available", "reason", ""],
                        client=pipe,
                    )
                await pipe.execute()

    async def remove_agent(self, agent_id: str) -> list[Decision]:
        await self._run("REMOVE_AGENT", agent_id)
        self.agents.pop(agent_id, None)
        return []

    async def login(self, agent_id: str, *, ready: bool = False) -> list[Decision]:
        if ready:
            return await self.set_agent_state(agent_id, "available")
        return await self.set_agent_state(agent_id, "not_ready", "login")

    async def logout(self, agent_id: str) -> list[Decision]:
        return await self.set_agent_state(agent_id, "offline", "logout")

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
        fields += ["wrap", repr(q.wrap_up_s)]
        rid = uuid.uuid4().hex
        deadline = now + q.reservation_timeout_s
        out = await self._run(
            "ENQUEUE",
            task_id,
            queue,
            repr(sort_key),
            rid,
            repr(deadline + self.lease_grace_s),
            self.owner,
            str(q.strategy),
            self.scan_limit,
            *fields,
        )
        if not int(out[0]):
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
        if len(out) > 1:
            return [self._offer_from(task, out[1:], rid, now, deadline)]
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

    def _offer_from(self, task: Task, result: list[Any], rid: str, now: float, deadline: float) -> Decision:
        """Decision from a server-side task-first result: (agent, key, scanned)."""
        agent_id, key, scanned = _s(result[0]), _s(result[1]), int(result[2])
        strategy = self.queues[task.queue].strategy
        if task.preferred_agent == agent_id:
            why = "preferred agent (served this customer before)"
        elif strategy is Strategy.LONGEST_IDLE:
            why = f"longest idle (first eligible of {scanned} examined in idle order)"
        else:
            why = f"{strategy} (key {key}, best of {scanned} examined)"
        return self._offer(
            task,
            agent_id,
            rid,
            now,
            deadline,
            why,
            {"strategy": str(strategy), "key": key, "scanned": scanned},
        )

    async def _task_first(self, task: Task, now: float) -> Decision | None:
        q = self.queues[task.queue]
        rid = uuid.uuid4().hex
        deadline = now + q.reservation_timeout_s
        res = await self._run(
            "TAKE_FOR_TASK",
            task.id,
            rid,
            repr(deadline + self.lease_grace_s),
            self.owner,
            str(q.strategy),
            self.scan_limit,
        )
        if _s(res[0]) != "ok":
            return None
        return self._offer_from(task, res[1:], rid, now, deadline)

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
        self._offered[rid] = task.id
        return Decision(DecisionKind.OFFER, task.id, task.queue, explanation, agent_id, res)

    async def _agent_free(self, agent_id: str) -> list[Decision]:
        now = self._clock()
        out = await self._run("TAKE_FOR_AGENT", agent_id, *self._agent_args(now, agent_id))
        return self._agent_offers(agent_id, out, now)

    def _agent_offers(self, agent_id: str, out: list[Any], now: float) -> list[Decision]:
        decisions = []
        for tid, queue, eff, considered, rid, ch, req, pref, pri in out:
            q = _s(queue)
            task = Task(
                id=_s(tid),
                channel=_s(ch),
                queue=q,
                required=_parse_kv(_s(req)),
                preferred=_parse_kv(_s(pref)),
                priority=int(pri or 0),
            )
            deadline = now + self.queues[q].reservation_timeout_s
            decisions.append(
                self._offer(
                    task,
                    agent_id,
                    _s(rid),
                    now,
                    deadline,
                    f"agent-first: best of {int(considered)} eligible queue heads by effective "
                    f"priority {float(eff):.1f}",
                    {
                        "decision": "agent_first",
                        "effective_priority": float(eff),
                        "heads_considered": int(considered),
                    },
                )
            )
        return decisions

    def _agent_args(self, now: float, agent_id: str | None = None) -> list[Any]:
        """TAKE_FOR_AGENT arguments after the agent id: only the queues whose base
        requirements the agent meets, so the script never scans a queue in vain."""
        args: list[Any] = [self.owner, repr(now), self.scan_limit, self._max_takes, uuid.uuid4().hex]
        static = self.agents.get(agent_id) if agent_id is not None else None
        for name, q in self.queues.items():
            if static is not None and not _serves(static, q):
                continue
            lease = now + q.reservation_timeout_s + self.lease_grace_s
            args += [name, repr(q.aging.priority_per_minute / 60.0), repr(q.weight), repr(lease)]
        return args

    async def accept(self, reservation_id: str) -> list[Decision]:
        agent = await self._run("ACCEPT", reservation_id, repr(self._clock()))
        if not agent:
            raise RoutingError(f"no pending reservation {reservation_id!r}")
        task_id = self._offered.pop(reservation_id, None)
        if task_id is not None:
            self._connected[task_id] = _s(agent)
        return []

    async def _release(self, reservation_id: str, mode: str, kind: DecisionKind, why: str) -> list[Decision]:
        self._offered.pop(reservation_id, None)
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
        for rid in [r for r, t in self._offered.items() if t == task_id]:
            del self._offered[rid]
        self._connected.pop(task_id, None)
        if _s(phase) == "gone":
            raise RoutingError(f"unknown task {task_id!r}")
        return await self._agent_free(_s(agent)) if _s(agent) else []

    async def complete(self, task_id: str) -> list[Decision]:
        now = self._clock()
        out = await self._run(
            "COMPLETE",
            task_id,
            repr(now),
            repr(self.lease_grace_s),
            "",
            *self._agent_args(now, self._connected.pop(task_id, None)),
        )
        status = _s(out[0])
        if status == "state":
            raise RoutingError(f"task {task_id!r} is {_s(out[1])}, not connected")
        if status == "wrap_up":
            wrap = float(out[2])
            heapq.heappush(self._timers, (now + wrap, next(self._tseq), "wrap", task_id))
            return []
        return self._agent_offers(_s(out[1]), out[2], now)

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


def _serves(agent: AgentConfig, queue: Queue) -> bool:
    skills = agent.skills
    if any(skills.get(s, 0) < lvl for s, lvl in queue.required_skills.items()):
        return False
    return not queue.groups or bool(set(queue.groups) & set(agent.groups))


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
