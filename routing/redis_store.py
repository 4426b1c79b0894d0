"""Routing over Redis: several server processes share one pool of agents and tasks.

:class:`RedisRouter` offers the in-memory :class:`routing.Router`'s interface as
coroutines (same method names and arguments, same :class:`Decision` s) over
state kept in Redis: it is a :class:`routing.store.RoutingStore`. Every decision
that reserves capacity runs as one Lua script (``routing/lua/``, loaded by
:mod:`routing.redis_lua`), so it is atomic across processes: two processes never
reserve the same agent slot and never hand one task to two agents.

Crash safety: each reservation carries a lease (its RONA deadline plus
``lease_grace_s``). The owning process fires RONA at the deadline; if it died,
any other process's :meth:`RedisRouter.tick` finds the lease past due and puts
the task back in its queue (same place: the sort key is stored with the task),
freeing the agent's slot. Wrap-ups are leased the same way.

Queue timers are shared too: escalation steps, maximum wait and the end of a
preferred-agent window sit in one sorted set, and whichever process calls
:meth:`RedisRouter.tick` first claims a due timer, applies it with the same pure
rules as the in-memory router (:mod:`routing.escalation`) and writes the result
only if the task did not change meanwhile (optimistic, by version). Maximum size
and overflow are checked inside the script that puts a task in a queue, so a
queue never takes more than its ``max_size`` even with several processes.

Scope compared with the in-memory router: statistics are per process (queue
length and position are read from Redis), and ``transfer`` is not offered.

Redis Cluster: every key carries the hash tag ``{prefix}``, so one router's whole
state lives in one slot and each script touches a single node, as Cluster requires.
The router talks to that slot's primary directly (:func:`slot_owner` gives a client
for it); after a Cluster failover moves the slot, make the router again.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from routing import redis_lua as lua
from routing.config import AgentConfig, Queue, RoutingConfig, Strategy
from routing.escalation import (
    PREFERRED_WINDOW_OVER,
    apply_step,
    escalated,
    exited,
    full_reason,
    in_context,
    max_wait_reason,
    merge_min,
    overflow_chain,
    overflowed,
    refused,
    waiting_text,
)
from routing.matching import describe_skills
from routing.model import (
    Agent,
    Decision,
    DecisionKind,
    Explanation,
    Phase,
    Presence,
    Reservation,
    Task,
)
from routing.router import Clock, RoutingError, check_submission

_NO_AGING_SCALE = 1e9  # without aging, one priority point outranks any age difference
_STALE_RETRIES = 3  # re-reads of a task another process changed while a timer applied


def _kv(levels: Mapping[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(levels.items()))


def _parse_kv(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        out[k] = int(v)
    return out


def _sort_key(q: Queue, created: float, priority: int) -> float:
    """The queue's time-invariant order (see routing.board): aging turns priority into
    an earlier virtual arrival; without aging priority outranks any age."""
    rate = q.aging.priority_per_minute / 60.0
    return created - priority / rate if rate > 0 else created - priority * _NO_AGING_SCALE


async def slot_owner(cluster: RedisCluster, prefix: str = "callcenter:routing") -> Redis:
    """A client to the Redis Cluster primary that holds the slot of ``prefix``'s hash tag:
    what :class:`RedisRouter` needs on a Cluster (its scripts run on connections it holds,
    and every key they touch is in that slot). The connection settings are the cluster's."""
    await cluster.initialize()
    node = cluster.get_node_from_key("{" + prefix + "}")
    # The cluster's connection settings (credentials, timeouts...) that a plain client takes.
    accepted = set(inspect.signature(Redis.__init__).parameters) - {"host", "port"}
    options = {k: v for k, v in cluster.connection_kwargs.items() if k in accepted}
    return Redis(host=node.host, port=node.port, **options)


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
        # The per-channel bucket of every agent is only read for tasks without required
        # skills: queues without any, or escalation steps that drop requirements.
        any_bucket = any(
            not q.required_skills or any(step.drop_required for step in q.escalation)
            for q in self.queues.values()
        )
        indexed = frozenset(skill for q in self.queues.values() for skill in q.required_skills)
        constants = lua.LuaConfig(exclusive, audit, rr_skills, level_skills, any_bucket, indexed)
        self._scripts = {name: redis.register_script(lua.build(name, constants)) for name in lua.SCRIPTS}
        self._sha = {name: script.sha for name, script in self._scripts.items()}
        self._idle: list[Any] = []  # connections held for _run (see there)
        self.agents: dict[str, AgentConfig] = {}  # static part, for explanations/strategies
        self._ordinals = itertools.count(1)
        # Own RONA and wrap-up timers, and the due times of the queue timers this process
        # armed ("due": only a reminder to tick; the timers themselves are shared).
        self._timers: list[tuple[float, int, str, str]] = []
        self._tseq = itertools.count(1)
        # This process's own offers and connected tasks (reservation -> task, task ->
        # agent): lets a completion scan only the queues that agent can serve.
        self._offered: dict[str, str] = {}
        self._connected: dict[str, str] = {}
        self._wrapping: set[str] = set()
        self._floors = {name: _floor(q) for name, q in self.queues.items()}
        # Queues by one skill of their loosest requirements (those without any apart).
        self._floor_any = {name for name, (req, _g) in self._floors.items() if not req}
        self._floor_by_skill: dict[str, list[str]] = {}
        for name, (req, _groups) in self._floors.items():
            if req:
                self._floor_by_skill.setdefault(min(req), []).append(name)
        self._served: dict[str, list[tuple[str, str, str, float]]] = {}  # agent -> queue args
        # An agent-first decision may fill several slots (chats, emails) in one script.
        self._max_takes = max((sum(a.capacity.values()) for a in config.agents), default=1) or 1

    async def _run(self, name: str, *args: Any) -> Any:
        """EVALSHA one script on a connection this router holds.

        Every decision is one script call, so the client's per-call cost is a large part
        of a decision's latency. redis-py's generic path (Script -> execute_command)
        borrows a pooled connection, wraps the call in retries and metrics, and returns
        the connection, each time; measured on loopback here, that adds some 30-50 µs to
        a round trip of about 80 µs. The router instead keeps the connections it borrowed
        (one per concurrent call, taken from the client's pool, so ``Redis.aclose()``
        still closes them) and talks to them directly. No automatic retry is wanted
        here anyway: a script that ran before its connection failed must not run twice.
        redis-py's connection disconnects itself on a broken or cancelled exchange and
        reconnects on the next send."""
        idle = self._idle
        conn = idle.pop() if idle else await self.redis.connection_pool.get_connection()
        try:
            try:
                await conn.send_command("EVALSHA", self._sha[name], 1, self.prefix, *args)
                return await conn.read_response()
            except NoScriptError:
                # Redis restarted or SCRIPT FLUSH: load the script again, then run it.
                await conn.send_command("SCRIPT", "LOAD", self._scripts[name].script)
                await conn.read_response()
                await conn.send_command("EVALSHA", self._sha[name], 1, self.prefix, *args)
                return await conn.read_response()
        finally:
            idle.append(conn)

    async def aclose(self) -> None:
        """Give the connections this router holds back to the client's pool (closing
        the client closes them too)."""
        pool = self.redis.connection_pool
        while self._idle:
            await pool.release(self._idle.pop())

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
                    await self._scripts["upsert_agent"](
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
        self._served.pop(cfg.id, None)
        await self._run("upsert_agent", *self._upsert_args(cfg))
        return []

    async def bulk_ready(self, agent_ids: list[str], softphone: bool = True, batch: int = 500) -> None:
        """Start-up helper: make many agents available (and register their softphones)
        in pipelined round trips. No routing decisions run, so use it before tasks
        arrive (a server start, a benchmark); afterwards use :meth:`set_agent_state`."""
        for first in range(0, len(agent_ids), batch):
            async with self.redis.pipeline(transaction=False) as pipe:
                for aid in agent_ids[first : first + batch]:
                    await self._scripts["set_field"](
                        keys=[self.prefix],
                        args=[aid, "soft", "1" if softphone else "0", "pres", "available", "reason", ""],
                        client=pipe,
                    )
                await pipe.execute()

    async def remove_agent(self, agent_id: str) -> list[Decision]:
        await self._run("remove_agent", agent_id)
        self.agents.pop(agent_id, None)
        self._served.pop(agent_id, None)
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
        ok = await self._run("set_field", agent_id, "pres", str(presence), "reason", reason)
        if not ok:
            raise RoutingError(f"unknown agent {agent_id!r}")
        return await self._agent_free(agent_id) if presence is Presence.AVAILABLE else []

    async def set_softphone(self, agent_id: str, registered: bool) -> list[Decision]:
        ok = await self._run("set_field", agent_id, "soft", "1" if registered else "0")
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
        """A contact needs an agent: OFFER, QUEUED, OVERFLOW(s) then one of those, or
        REFUSED when the queue and its overflow targets are full."""
        check_submission(self.queues, queue, required, preferred)
        now = self._clock()
        task = Task(
            id=task_id,
            channel=channel,
            queue=queue,
            priority=int(priority),
            created=now if created is None else created,
            preferred_agent=preferred_agent,
            own_required=dict(required or {}),
            own_preferred=dict(preferred or {}),
            entered=now,
        )
        own = [
            "ch",
            channel,
            "oreq",
            _kv(task.own_required),
            "opref",
            _kv(task.own_preferred),
            "pri",
            str(task.priority),
            "created",
            repr(task.created),
            "seq",
            str(int(now * 1e6)),  # arrival order across processes (microseconds)
            "pa",
            preferred_agent or "",
            "attrs",
            json.dumps(dict(attributes or {}), default=str),
            "entered",
            repr(now),
            "notes",
            "",
        ]
        chain = overflow_chain(self.queues, queue, 0)
        entries = [self._entry(task, name, hops, now) for name, hops in chain]
        rid = uuid.uuid4().hex
        out = await self._run(
            "enqueue", task_id, rid, self.owner, self.scan_limit, json.dumps(own), json.dumps(entries)
        )
        status = int(out[0])
        if status == 0:
            raise RoutingError(f"task {task_id!r} is already being routed")
        if status == 2:
            return [*self._hops(task_id, chain, len(chain) - 1), refused(task_id, *self._last(chain))]
        return self._placed(task, chain, entries, rid, out[1:], now, "")

    def _last(self, chain: list[tuple[str, int]]) -> tuple[str, Queue]:
        name = chain[-1][0]
        return name, self.queues[name]

    def _hops(self, task_id: str, chain: list[tuple[str, int]], upto: int) -> list[Decision]:
        """OVERFLOW decisions for the full queues passed over on the way to chain[upto]."""
        return [
            overflowed(
                task_id, chain[k][0], chain[k + 1][0], full_reason(chain[k][0], self.queues[chain[k][0]])
            )
            for k in range(upto)
        ]

    def _entry(self, task: Task, queue: str, hops: int, now: float) -> dict[str, Any]:
        """What a task needs in ``queue`` (see ``enter`` in lua/common.lua): its requirements
        merged with the queue's, its sort key, lease, timers and preferred-agent window."""
        q = self.queues[queue]
        only = ""
        timers = [[repr(now + step.after_s), f"step{i}"] for i, step in enumerate(q.escalation)]
        if q.max_wait_s is not None:
            timers.append([repr(now + q.max_wait_s), "maxwait"])
        pa = task.preferred_agent
        if pa is not None and q.preferred_agent_timeout_s > 0 and pa in self.agents:
            only = pa
            timers.append([repr(now + q.preferred_agent_timeout_s), "pref"])
        for due, _kind in timers:
            heapq.heappush(self._timers, (float(due), next(self._tseq), "due", ""))
        return {
            "q": queue,
            "max": q.max_size if q.max_size is not None else -1,
            "key": repr(_sort_key(q, task.created, task.priority)),
            "req": _kv(merge_min(q.required_skills, task.own_required)),
            "pref": _kv(merge_min(q.preferred_skills, task.own_preferred)),
            "grp": ",".join(sorted(q.groups)),
            "strategy": str(q.strategy),
            "lease": repr(now + q.reservation_timeout_s + self.lease_grace_s),
            "wrap": repr(q.wrap_up_s),
            "qat": repr(now),
            "only": only,
            "hops": hops,
            "timers": timers,
        }

    def _placed(
        self,
        task: Task,
        chain: list[tuple[str, int]],
        entries: list[dict[str, Any]],
        rid: str,
        out: list[Any],
        now: float,
        why: str,
    ) -> list[Decision]:
        """Decisions after a script put the task in chain entry ``out[0]`` (1-based),
        and offered it when ``out`` also holds (agent, key, scanned)."""
        pick = int(out[0])
        decisions = self._hops(task.id, chain, pick - 1)
        if pick > 1:
            why = f"overflow from {chain[pick - 2][0]}"
        entry = entries[pick - 1]
        task.queue = entry["q"]
        task.required = _parse_kv(entry["req"])
        task.preferred = _parse_kv(entry["pref"])
        task.allowed_groups = frozenset(filter(None, entry["grp"].split(",")))
        task.overflow_hops = entry["hops"]
        task.queued_at = now
        task.preferred_only_until = None
        if entry["only"]:
            task.preferred_only_until = now + self.queues[task.queue].preferred_agent_timeout_s
        if len(out) > 1:
            deadline = now + self.queues[task.queue].reservation_timeout_s
            decisions.append(self._offer_from(task, out[1:], rid, now, deadline, why))
        else:
            decisions.append(self._queued(task, now, why))
        return decisions

    def _queued(self, task: Task, now: float, why: str) -> Decision:
        facts = {"queue": task.queue, "required": dict(task.required)}
        return Decision(
            DecisionKind.QUEUED, task.id, task.queue, Explanation(waiting_text(task, now, why), facts)
        )

    def _offer_from(
        self, task: Task, result: list[Any], rid: str, now: float, deadline: float, why: str = ""
    ) -> Decision:
        """Decision from a server-side task-first result: (agent, key, scanned)."""
        agent_id, key, scanned = _s(result[0]), _s(result[1]), int(result[2])
        strategy = self.queues[task.queue].strategy
        if task.preferred_agent == agent_id:
            how = "preferred agent (served this customer before)"
        elif strategy is Strategy.LONGEST_IDLE:
            how = f"longest idle (first eligible of {scanned} examined in idle order)"
        else:
            how = f"{strategy} (key {key}, best of {scanned} examined)"
        facts = {"decision": "task_first", "strategy": str(strategy), "key": key, "scanned": scanned}
        return self._offer(task, agent_id, rid, now, deadline, how, facts, why)

    def _new_offer(self, task: Task, now: float) -> tuple[str, float, str]:
        """Reservation id, RONA deadline and lease expiry for an offer of the task now."""
        deadline = now + self.queues[task.queue].reservation_timeout_s
        return uuid.uuid4().hex, deadline, repr(deadline + self.lease_grace_s)

    async def _task_first(self, task: Task, now: float) -> Decision | None:
        rid, deadline, lease = self._new_offer(task, now)
        strategy = str(self.queues[task.queue].strategy)
        res = await self._run("take_for_task", task.id, rid, lease, self.owner, strategy, self.scan_limit)
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
        how: str,
        facts: dict[str, Any],
        why: str = "",
    ) -> Decision:
        static = self.agents.get(agent_id)
        probe = Agent(
            id=agent_id,
            name=static.name or agent_id if static else agent_id,
            skills=dict(static.skills) if static else {},
            capacity={},
        )
        text = in_context(
            f"{task.queue}: {task.channel} task {task.id} → agent {agent_id} ({probe.name}) by "
            f"{how}; {describe_skills(probe, task.required, task.preferred)}",
            why,
            task.step_notes,
        )
        explanation = Explanation(
            text,
            {
                "queue": task.queue,
                "agent": agent_id,
                "required": dict(task.required),
                "agent_levels": {s: probe.skills.get(s, 0) for s in (*task.required, *task.preferred)},
                "escalation_steps": list(task.step_notes),
                "priority": task.priority,
                "waited_s": now - task.queued_at,
                **facts,
            },
        )
        res = Reservation(rid, task.id, agent_id, task.queue, task.channel, now, deadline, explanation)
        heapq.heappush(self._timers, (deadline, next(self._tseq), "rona", rid))
        self._offered[rid] = task.id
        return Decision(DecisionKind.OFFER, task.id, task.queue, explanation, agent_id, res)

    async def _agent_free(self, agent_id: str) -> list[Decision]:
        now = self._clock()
        out = await self._run("take_for_agent", agent_id, *self._agent_args(now, agent_id))
        return self._agent_offers(agent_id, out, now)

    def _agent_offers(self, agent_id: str, out: list[Any], now: float) -> list[Decision]:
        decisions = []
        for tid, queue, eff, considered, rid, ch, req, pref, pri, notes, qat in out:
            q = _s(queue)
            task = Task(
                id=_s(tid),
                channel=_s(ch),
                queue=q,
                required=_parse_kv(_s(req)),
                preferred=_parse_kv(_s(pref)),
                priority=int(pri or 0),
                queued_at=float(qat or 0),
                step_notes=_notes(notes),
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
        """take_for_agent.lua arguments after the agent id: only the queues the agent can
        serve, so the script never scans a queue in vain."""
        args: list[Any] = [self.owner, repr(now), self.scan_limit, self._max_takes, uuid.uuid4().hex]
        served = self._served.get(agent_id or "")
        if served is None:
            static = self.agents.get(agent_id) if agent_id is not None else None
            names = self.queues if static is None else self._candidate_queues(static)
            served = [
                (name, repr(q.aging.priority_per_minute / 60.0), repr(q.weight), q.reservation_timeout_s)
                for name, q in self.queues.items()
                if name in names and (static is None or self._serves(static, name))
            ]
            if static is not None:
                self._served[static.id] = served  # static per agent: computed once
        grace = self.lease_grace_s
        for name, rate, weight, timeout in served:
            args += [name, rate, weight, repr(now + timeout + grace)]
        return args

    def _candidate_queues(self, agent: AgentConfig) -> set[str]:
        """Queues that need none of the skills the agent lacks, found through the skills
        the agent has (a queue's loosest requirements name at most a few skills)."""
        out = set(self._floor_any)
        for skill in agent.skills:
            out.update(self._floor_by_skill.get(skill, ()))
        return out

    def _serves(self, agent: AgentConfig, queue: str) -> bool:
        """Whether a task of the queue can ever be offered to the agent (at its loosest
        escalated requirements), so agent-first decisions skip the other queues."""
        required, groups = self._floors[queue]
        skills = agent.skills
        if any(skills.get(s, 0) < lvl for s, lvl in required.items()):
            return False
        return not groups or not groups.isdisjoint(agent.groups)

    async def accept(self, reservation_id: str) -> list[Decision]:
        agent = await self._run("accept", reservation_id, repr(self._clock()))
        if not agent:
            raise RoutingError(f"no pending reservation {reservation_id!r}")
        task_id = self._offered.pop(reservation_id, None)
        if task_id is not None:
            self._connected[task_id] = _s(agent)
        return []

    async def _release(self, reservation_id: str, mode: str, kind: DecisionKind, why: str) -> list[Decision]:
        self._offered.pop(reservation_id, None)
        out = await self._run("release", reservation_id, mode, repr(self._clock()))
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
        """A task is back in its queue (reject, RONA, expired lease): past its queue's
        max wait it overflows or leaves now, else the task-first decision runs again."""
        fields = await self._read_task(task_id)
        if fields.get("st") != "waiting":
            return []
        task = _task_from(task_id, fields)
        now = self._clock()
        mw = self.queues[task.queue].max_wait_s
        if mw is not None and now - task.queued_at >= mw:
            return await self._fire(task_id, "maxwait", fields, fields["ep"])
        decision = await self._task_first(task, now)
        return [decision] if decision else []

    async def _read_task(self, task_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self._key("t", task_id))
        return {_s(k): _s(v) for k, v in raw.items()}

    async def reject(self, reservation_id: str, reason: str = "rejected") -> list[Decision]:
        return await self._release(
            reservation_id, "reject", DecisionKind.REQUEUED, f"agent rejected ({reason})"
        )

    async def timeout(self, reservation_id: str) -> list[Decision]:
        return await self._release(
            reservation_id, "rona", DecisionKind.RONA, "no answer before the deadline (RONA)"
        )

    async def cancel(self, task_id: str, reason: str = "abandoned") -> list[Decision]:
        phase, agent = await self._run("cancel", task_id, repr(self._clock()))
        for rid in [r for r, t in self._offered.items() if t == task_id]:
            del self._offered[rid]
        self._connected.pop(task_id, None)
        self._wrapping.discard(task_id)
        if _s(phase) == "gone":
            raise RoutingError(f"unknown task {task_id!r}")
        return await self._agent_free(_s(agent)) if _s(agent) else []

    async def complete(self, task_id: str) -> list[Decision]:
        now = self._clock()
        out = await self._run(
            "complete",
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
            self._wrapping.add(task_id)
            heapq.heappush(self._timers, (now + wrap, next(self._tseq), "wrap", task_id))
            return []
        return self._agent_offers(_s(out[1]), out[2], now)

    async def end_wrap_up(self, task_id: str) -> list[Decision]:
        self._wrapping.discard(task_id)
        agent = await self._run("end_wrap", task_id)
        if not agent:
            raise RoutingError(f"task {task_id!r} is not in wrap-up")
        return await self._agent_free(_s(agent))

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """Earliest of this process's own timers and of the queue timers it armed; call
        :meth:`tick` then (and every few seconds anyway: to reclaim the leases of
        processes that died, and to apply queue timers that other processes armed)."""
        timers = self._timers
        while timers and (
            (timers[0][2] == "rona" and timers[0][3] not in self._offered)
            or (timers[0][2] == "wrap" and timers[0][3] not in self._wrapping)
        ):
            heapq.heappop(timers)  # resolved already (accepted, ended): nothing to fire
        return timers[0][0] if timers else None

    async def tick(self, limit: int = 100) -> list[Decision]:
        """Fire what is due: this process's RONA and wrap-up timers, expired leases of
        any process, and the shared queue timers (escalation, max wait, preferred-agent
        window), whoever armed them."""
        now = self._clock()
        decisions: list[Decision] = []
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, ref = heapq.heappop(self._timers)
            try:
                if kind == "rona" and ref in self._offered:
                    decisions += await self.timeout(ref)
                elif kind == "wrap" and ref in self._wrapping:
                    decisions += await self.end_wrap_up(ref)
            except RoutingError:
                pass  # resolved meanwhile by another process (lease expiry)
        expired, fired = await self._run("due", repr(now), limit)
        for kind, tid, aid in expired:
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
        for tid, kind, flat in fired:
            fields = {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}
            decisions += await self._fire(_s(tid), _s(kind), fields, fields["ep"])
        return decisions

    async def _fire(self, task_id: str, kind: str, fields: dict[str, str], epoch: str) -> list[Decision]:
        """Apply one queue timer of queue epoch ``epoch``. The write is conditional on
        the task's version; if another process changed the task meanwhile, read it
        again and recompute (the timer still applies while the epoch is the same)."""
        for _ in range(_STALE_RETRIES):
            out = await self._apply_timer(task_id, kind, fields)
            if out is not None:
                return out
            fields = await self._read_task(task_id)
            if fields.get("ep") != epoch:
                return []
        return []

    async def _apply_timer(self, task_id: str, kind: str, fields: dict[str, str]) -> list[Decision] | None:
        st, version = fields.get("st"), fields.get("v", "")
        task = _task_from(task_id, fields)
        now = self._clock()
        source = task.queue  # a move below changes task.queue
        q = self.queues[source]
        if kind == "maxwait":
            if st != "waiting":
                return []  # ringing at max wait: decided when the offer resolves
            reason = max_wait_reason(task, q, now)
            if q.overflow is None or task.overflow_hops >= len(self.queues):
                out = await self._move(task, version, {}, [], now)
                if out is None or out is True:
                    return None if out is None else []
                return [exited(task_id, source, q, reason)]
            chain = overflow_chain(self.queues, q.overflow, task.overflow_hops + 1)
            out = await self._move(task, version, {}, chain, now)
            if out is None or out is True:
                return None if out is None else []
            return [overflowed(task_id, source, q.overflow, reason), *out]
        if st not in ("waiting", "reserved"):
            return []
        if kind == "pref":
            if not fields.get("only"):
                return []
            task.step_notes.append(PREFERRED_WINDOW_OVER)
            update = {"only": "", "notes": "\n".join(task.step_notes)}
            return await self._update(task, version, update, now, [])
        index = int(kind.removeprefix("step"))
        step = q.escalation[index]
        note = apply_step(task, step, index)
        decisions = [escalated(task, step, index, note)]
        notes = "\n".join(task.step_notes)
        if step.move_to is not None and st == "waiting":
            chain = overflow_chain(self.queues, step.move_to, task.overflow_hops + 1)
            out = await self._move(task, version, {"pri": str(task.priority), "notes": notes}, chain, now)
            if out is None:
                return None
            if out is not True:
                return [*decisions, overflowed(task_id, source, step.move_to, note), *out]
        update = {
            "req": _kv(task.required),
            "pref": _kv(task.preferred),
            "grp": ",".join(sorted(task.allowed_groups)),
            "pri": str(task.priority),
            "key": repr(_sort_key(q, task.created, task.priority)),
            "steps": str(task.steps_done),
            "notes": notes,
            "rej": "",
        }
        return await self._update(task, version, update, now, decisions)

    async def _update(
        self, task: Task, version: str, update: dict[str, str], now: float, decisions: list[Decision]
    ) -> list[Decision] | None:
        """Write a recomputed task (update_task.lua); None when it changed meanwhile."""
        rid, deadline, lease = self._new_offer(task, now)
        strategy = str(self.queues[task.queue].strategy)
        out = await self._run(
            "update_task",
            task.id,
            version,
            rid,
            self.owner,
            self.scan_limit,
            lease,
            strategy,
            json.dumps(update),
        )
        status = _s(out[0])
        if status == "stale":
            return None
        if status != "ok":
            return []
        if len(out) > 2:
            decisions.append(self._offer_from(task, out[2:], rid, now, deadline))
        return decisions

    async def _move(
        self, task: Task, version: str, update: dict[str, str], chain: list[tuple[str, int]], now: float
    ) -> list[Decision] | bool | None:
        """Move a waiting task along ``chain`` (move.lua). Returns the decisions in the new
        queue ([] when dropped: the caller says why), None when the task changed
        meanwhile, True when it is no longer waiting (nothing moved)."""
        entries = [self._entry(task, name, hops, now) for name, hops in chain]
        rid = uuid.uuid4().hex
        out = await self._run(
            "move",
            task.id,
            version,
            rid,
            self.owner,
            self.scan_limit,
            json.dumps(update),
            json.dumps(entries),
        )
        status = _s(out[0])
        if status == "stale":
            return None
        if status in ("gone", "state"):
            return True
        if status == "dropped":
            if not chain:
                return []
            return [*self._hops(task.id, chain, len(chain) - 1), refused(task.id, *self._last(chain))]
        source = task.queue
        return self._placed(task, chain, entries, rid, out[1:], now, f"overflow from {source}")

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


def _floor(queue: Queue) -> tuple[dict[str, int], frozenset[str]]:
    """The loosest requirements a task of the queue can reach through its escalation
    steps (relaxed levels, dropped skills, widened groups; empty groups = any agent)."""
    required = dict(queue.required_skills)
    groups = set(queue.groups)
    for step in queue.escalation:
        for skill, level in step.relax.items():
            if skill in required:
                required[skill] = min(required[skill], level)
        for skill in step.drop_required:
            required.pop(skill, None)
        if groups:
            groups |= set(step.widen_groups)
    return required, frozenset(groups)


def _task_from(task_id: str, f: Mapping[str, str]) -> Task:
    """A task as stored in Redis (the fields the pure rules and explanations read)."""
    return Task(
        id=task_id,
        channel=f.get("ch", ""),
        queue=f.get("q", ""),
        required=_parse_kv(f.get("req", "")),
        preferred=_parse_kv(f.get("pref", "")),
        priority=int(f.get("pri") or 0),
        created=float(f.get("created") or 0),
        preferred_agent=f.get("pa") or None,
        own_required=_parse_kv(f.get("oreq", "")),
        own_preferred=_parse_kv(f.get("opref", "")),
        phase=Phase(f["st"]) if f.get("st") in set(Phase) else Phase.WAITING,
        queued_at=float(f.get("qat") or 0),
        steps_done=int(f.get("steps") or 0),
        step_notes=_notes(f.get("notes")),
        allowed_groups=frozenset(filter(None, f.get("grp", "").split(","))),
        overflow_hops=int(f.get("hops") or 0),
    )


def _notes(value: Any) -> list[str]:
    text = _s(value)
    return text.split("\n") if text else []


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
