"""The in-memory router: the ACD's decisions over agents, tasks and reservations.

A functional core with an injected clock: every call mutates the router's own
state and returns the list of :class:`Decision` s the caller must act on (ring
an agent, play "all agents busy", move a call to voicemail...). Nothing here
does I/O or sleeps; time only moves when the clock says so, and timers
(escalation steps, RONA, max wait, automatic end of wrap-up, end of the
preferred-agent window) fire from :meth:`Router.tick`. :meth:`Router.next_deadline`
tells the caller when to tick next, so it needs a single timer.

Two decisions exist:
- task-first (a task arrives, comes back or escalates): the best eligible
  routable agent by the queue's strategy, ties broken by the longest idle,
  then a stable order;
- agent-first (an agent frees a slot): the best waiting task across every queue
  the agent is eligible for, by effective priority (priority + aging + queue
  weight), then age, then arrival order.

Because both run after every event, no eligible agent is ever idle while an
eligible task waits.

``Router(..., explain=False, live_stats=False)`` is for the what-if simulator, which
reads neither: decisions carry the shared :data:`UNEXPLAINED` explanation instead of
their text and facts, and no sliding-window statistics are kept (the stats reads
raise). Neither feeds back into a decision, so both routers decide identically
(tests/routing/test_simulation_fast_router.py); production keeps the defaults.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from routing.agent_index import AgentIndex
from routing.board import Board
from routing.config import MAX_LEVEL, AgentConfig, Queue, RoutingConfig, Strategy
from routing.escalation import (
    PREFERRED_WINDOW_OVER,
    apply_step,
    escalated,
    exited,
    full_reason,
    max_wait_reason,
    merge_min,
    overflowed,
    refused,
    waiting_text,
)
from routing.matching import (
    REQUIRED_WEIGHT,
    describe_skills,
    has_device,
    has_levels,
    meets,
    preferred_matches,
    skill_score,
    strategy_key,
    top_score,
)
from routing.model import (
    Agent,
    AgentState,
    Decision,
    DecisionKind,
    Explanation,
    Phase,
    Presence,
    Reservation,
    Task,
)
from routing.stats import (
    AgentStats,
    AgentTracker,
    QueueStats,
    QueueTracker,
    erlang_c_wait,
    position_wait,
)

Clock = Callable[[], float]
# What a decision carries when the router is built with explain=False (shared: never mutate).
UNEXPLAINED = Explanation("(explanations off)", {})


def _contacts_today(agent: Agent) -> float:
    return agent.contacts_today


class RoutingError(ValueError):
    """A call that cannot apply (unknown id, wrong phase); state is left unchanged."""


def check_submission(
    queues: Mapping[str, Queue],
    queue: str,
    required: Mapping[str, int] | None,
    preferred: Mapping[str, int] | None,
) -> None:
    """A new task names a known queue and skill levels 1-MAX_LEVEL (same rule in every store)."""
    if queue not in queues:
        raise RoutingError(f"unknown queue {queue!r}; known: {sorted(queues)}")
    for name, levels in (("required", required), ("preferred", preferred)):
        for skill, level in (levels or {}).items():
            if not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
                raise RoutingError(f"{name} skill {skill!r}: level must be 1-{MAX_LEVEL}, got {level!r}")


class Router:
    def __init__(
        self,
        config: RoutingConfig,
        clock: Clock = time.monotonic,
        *,
        explain: bool = True,
        live_stats: bool = True,
    ) -> None:
        self.config = config
        self._clock = clock
        self._explain = explain
        self._live = live_stats
        self.queues: dict[str, Queue] = dict(config.queues)
        self._exclusive = frozenset(config.settings.exclusive_channels)
        self.agents: dict[str, Agent] = {}
        self.tasks: dict[str, Task] = {}
        self.reservations: dict[str, Reservation] = {}
        # Per-level buckets cost index upkeep on every agent change, so they exist only
        # for skills a queue requires: most-skilled walks them from level 10 down, and
        # the other strategies skip agents below a queue's minimum level without
        # looking at them (under-skilled agents stay idle longest and would otherwise
        # head every idle-ordered bucket).
        level_skills = frozenset(skill for q in self.queues.values() for skill in q.required_skills)
        self._index = AgentIndex(self._exclusive, level_skills)
        self._board = Board()
        self._timers: list[tuple[float, int, str, str, int]] = []
        self._seq = itertools.count(1)
        self._res_seq = itertools.count(1)
        self._rr_last: dict[str, int] = {}
        span = config.settings.stats_window_s
        now = clock()
        self._qstats = {name: QueueTracker(span, q.service_level.seconds) for name, q in self.queues.items()}
        self._astats: dict[str, AgentTracker] = {}
        self._ordinals = itertools.count(1)
        self._roster_version = 0  # bumped when who is logged in changes
        self._staffed_cache: dict[str, tuple[int, list[Agent]]] = {}
        self._queue_groups = {name: frozenset(q.groups) for name, q in self.queues.items()}
        for agent in config.agents:
            self._add(agent, now)

    # ------------------------------------------------------------------ agents

    def add_agent(self, agent: AgentConfig | Mapping[str, Any]) -> list[Decision]:
        """Add an agent (offline until they log in)."""
        cfg = agent if isinstance(agent, AgentConfig) else AgentConfig.model_validate(agent)
        if cfg.id in self.agents:
            raise RoutingError(f"agent {cfg.id!r} already exists")
        self._add(cfg, self._clock())
        return []

    def _add(self, cfg: AgentConfig, now: float) -> None:
        agent = Agent(
            id=cfg.id,
            name=cfg.name or cfg.id,
            skills=dict(cfg.skills),
            capacity=dict(cfg.capacity),
            groups=frozenset(cfg.groups),
            last_state_change=now,
            idle_since=now,
            ordinal=next(self._ordinals),
        )
        self.agents[agent.id] = agent
        self._roster_version += 1
        self._astats[agent.id] = AgentTracker(self.config.settings.stats_window_s, now)

    def remove_agent(self, agent_id: str) -> list[Decision]:
        """Remove an agent; pending offers go back to the queue. Refused while handling
        contacts, because those contacts would lose their agent."""
        agent = self._agent(agent_id)
        if any(p is not Phase.RESERVED for p in agent.tasks.values()):
            raise RoutingError(f"agent {agent_id!r} still handles contacts {sorted(agent.tasks)}")
        decisions = self.set_agent_state(agent_id, "offline", "removed")
        self._index.drop(agent)
        del self.agents[agent_id]
        del self._astats[agent_id]
        self._roster_version += 1
        return decisions

    def login(self, agent_id: str, *, ready: bool = False) -> list[Decision]:
        if ready:
            return self.set_agent_state(agent_id, "available")
        return self.set_agent_state(agent_id, "not_ready", "login")

    def logout(self, agent_id: str) -> list[Decision]:
        return self.set_agent_state(agent_id, "offline", "logout")

    def set_agent_state(self, agent_id: str, state: str, reason: str = "") -> list[Decision]:
        """``state``: available | not_ready (with a reason code) | offline.

        Going offline revokes pending offers (their tasks are routed again);
        contacts already connected continue. Not-ready stops new offers only.
        """
        agent = self._agent(agent_id)
        try:
            presence = Presence(state)
        except ValueError:
            raise RoutingError(
                f"unknown agent state {state!r}; use available, not_ready or offline"
            ) from None
        now = self._clock()
        decisions: list[Decision] = []
        changed = presence is not agent.presence or reason != agent.reason
        if (presence is Presence.OFFLINE) != (agent.presence is Presence.OFFLINE):
            self._roster_version += 1
        agent.presence = presence
        agent.reason = "" if presence is Presence.AVAILABLE else reason
        if changed:
            agent.last_state_change = now
        if presence is Presence.AVAILABLE and agent.total_load() == 0:
            agent.idle_since = now
        self._index.refresh(agent)
        if self._live:
            self._mark(agent, now)
        if presence is Presence.OFFLINE:
            for task_id, phase in list(agent.tasks.items()):
                if phase is Phase.RESERVED:
                    res = self.reservations[self.tasks[task_id].reservation_id or ""]
                    decisions += self._revoke(res, now, DecisionKind.REQUEUED, "agent went offline")
        if presence is Presence.AVAILABLE:
            self._agent_free(agent, now, decisions)
        return decisions

    def set_softphone(self, agent_id: str, registered: bool) -> list[Decision]:
        """Whether the agent's softphone is registered; voice is only offered when it is."""
        agent = self._agent(agent_id)
        agent.softphone = registered
        self._index.refresh(agent)
        decisions: list[Decision] = []
        if registered:
            self._agent_free(agent, self._clock(), decisions)
        return decisions

    # ------------------------------------------------------------------ tasks

    def submit(
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
        waiting_since: float | None = None,
    ) -> list[Decision]:
        """A contact needs an agent. ``task_id`` is the contact id.

        The task's requirements are the queue's plus its own (stricter level
        wins). Returns an OFFER, QUEUED, OVERFLOW or REFUSED decision.
        ``waiting_since`` (this router's clock): the contact has waited in this queue
        since then elsewhere (another node handed it over): its wait, escalation and
        maximum wait count from then, and it is not counted as a new arrival.
        """
        if task_id in self.tasks:
            raise RoutingError(f"task {task_id!r} is already being routed")
        check_submission(self.queues, queue, required, preferred)
        now = self._clock()
        task = Task(
            id=task_id,
            channel=channel,
            queue=queue,
            priority=int(priority),
            created=now if created is None else created,
            attributes=dict(attributes or {}),
            preferred_agent=preferred_agent,
            own_required=dict(required or {}),
            own_preferred=dict(preferred or {}),
            entered=now,
            seq=next(self._seq),
        )
        self.tasks[task_id] = task
        decisions: list[Decision] = []
        self._enter_queue(task, queue, now, decisions, why="", since=waiting_since)
        return decisions

    def accept(self, reservation_id: str) -> list[Decision]:
        """The agent accepted (answered): the task is assigned, the agent busy."""
        res = self._reservation(reservation_id)
        now = self._clock()
        del self.reservations[res.id]
        task = self.tasks[res.task_id]
        agent = self.agents[res.agent_id]
        task.phase = Phase.ASSIGNED
        task.reservation_id = None
        task.answered_at = now
        agent.tasks[task.id] = Phase.ASSIGNED
        agent.contacts_today += 1
        if self._live:
            self._qstats[task.queue].on_answer(now, now - task.queued_at)
        return []

    def reject(self, reservation_id: str, reason: str = "rejected") -> list[Decision]:
        """The agent declined: the task goes back with its place and is not offered to
        this agent again (until an escalation step or queue change); the agent stays
        available for other tasks."""
        res = self._reservation(reservation_id)
        now = self._clock()
        self.tasks[res.task_id].rejected_by.add(res.agent_id)
        self.agents[res.agent_id].rejected_today += 1
        return self._revoke(res, now, DecisionKind.REQUEUED, f"agent rejected ({reason})")

    def timeout(self, reservation_id: str) -> list[Decision]:
        """Ring, no answer (RONA): the agent goes not ready (reason ``rona``), the task
        goes back with its original age and place. Called by :meth:`tick` at the
        reservation's deadline, or by the caller if it detects the timeout itself."""
        res = self._reservation(reservation_id)
        now = self._clock()
        agent = self.agents[res.agent_id]
        agent.presence = Presence.NOT_READY
        agent.reason = "rona"
        agent.last_state_change = now
        agent.rona_today += 1
        return self._revoke(res, now, DecisionKind.RONA, "no answer before the deadline (RONA)")

    def cancel(self, task_id: str, reason: str = "abandoned", *, abandoned: bool = True) -> list[Decision]:
        """The customer left (abandon) or the contact was withdrawn. A pending offer is
        withdrawn; a connected task is treated as ended without wrap-up. ``abandoned=False``:
        the contact left to be served elsewhere (another node), not counted as abandoned."""
        task = self._task(task_id)
        now = self._clock()
        decisions: list[Decision] = []
        if self._live and abandoned and task.phase in (Phase.WAITING, Phase.RESERVED):
            self._qstats[task.queue].abandoned.add(now, now - task.queued_at)
        if task.phase is Phase.WAITING:
            self._board.remove(task)
            self._drop(task)
        elif task.phase is Phase.RESERVED:
            res = self.reservations.pop(task.reservation_id or "")
            agent = self.agents[res.agent_id]
            self._release_slot(agent, task, now, contact_ended=False)
            self._drop(task)
            self._agent_free(agent, now, decisions)
        else:
            self._finish(task, now, decisions)
        return decisions

    def complete(self, task_id: str) -> list[Decision]:
        """The contact ended. The agent enters wrap-up for the queue's ``wrap_up_s``
        (0 = straight back to available); :meth:`end_wrap_up` ends it earlier."""
        task = self._task(task_id)
        if task.phase is not Phase.ASSIGNED:
            raise RoutingError(f"task {task_id!r} is {task.phase}, not connected")
        now = self._clock()
        wrap = self.queues[task.queue].wrap_up_s
        decisions: list[Decision] = []
        if wrap <= 0:
            self._finish(task, now, decisions)
            return decisions
        task.phase = Phase.WRAP_UP
        self.agents[task.agent_id or ""].tasks[task.id] = Phase.WRAP_UP
        self._timer(now + wrap, "wrap", task.id, task.queue_epoch)
        return decisions

    def end_wrap_up(self, task_id: str) -> list[Decision]:
        task = self._task(task_id)
        if task.phase is not Phase.WRAP_UP:
            raise RoutingError(f"task {task_id!r} is {task.phase}, not in wrap-up")
        decisions: list[Decision] = []
        self._finish(task, self._clock(), decisions)
        return decisions

    def transfer(
        self,
        task_id: str,
        queue: str,
        *,
        priority: int | None = None,
        required: Mapping[str, int] | None = None,
        preferred_agent: str | None = None,
    ) -> list[Decision]:
        """Move a task to another queue, keeping its age. A connected agent is released
        (their handling ends here, without wrap-up); a pending offer is withdrawn.

        ``required`` replaces the task's own skill requirements (what the IVR asked
        for the old queue rarely fits the new one); ``preferred_agent`` asks for a
        named agent first (a transfer to a colleague), per the queue's preferred-agent
        rules."""
        task = self._task(task_id)
        if queue not in self.queues:
            raise RoutingError(f"unknown queue {queue!r}; known: {sorted(self.queues)}")
        if preferred_agent is not None and preferred_agent not in self.agents:
            raise RoutingError(f"unknown agent {preferred_agent!r}")
        if required is not None:
            task.own_required = dict(required)
        if preferred_agent is not None:
            task.preferred_agent = preferred_agent
            task.rejected_by.discard(preferred_agent)
        now = self._clock()
        decisions: list[Decision] = []
        freed: Agent | None = None
        if task.phase is Phase.WAITING:
            self._board.remove(task)
        elif task.phase is Phase.RESERVED:
            res = self.reservations.pop(task.reservation_id or "")
            freed = self.agents[res.agent_id]
            self._release_slot(freed, task, now, contact_ended=False)
        else:
            freed = self.agents[task.agent_id or ""]
            self._release_slot(freed, task, now, contact_ended=True)
        if priority is not None:
            task.priority = priority
        task.answered_at = None
        task.overflow_hops = 0
        old = task.queue
        self._enter_queue(task, queue, now, decisions, why=f"transferred from {old}")
        if freed is not None:
            self._agent_free(freed, now, decisions)
        return decisions

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """Clock time of the earliest pending timer (None if none); call :meth:`tick` then.

        Timers can be stale (their task moved on): an early tick simply does nothing.
        """
        timers = self._timers
        # An offer's RONA timer outlives the offer once it is answered (most of them):
        # drop such dead heads here, so a caller does not wake up for nothing.
        while timers and timers[0][2] == "rona" and timers[0][3] not in self.reservations:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def tick(self) -> list[Decision]:
        """Fire every timer due at the clock's current time."""
        now = self._clock()
        decisions: list[Decision] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, ref, epoch = heapq.heappop(timers)
            if kind == "rona":
                if ref in self.reservations:
                    decisions += self.timeout(ref)
                continue
            task = self.tasks.get(ref)
            if task is None or task.queue_epoch != epoch:
                continue
            if kind == "wrap":
                if task.phase is Phase.WRAP_UP:
                    decisions.append(self._wrap_up_ended(task))
                    self._finish(task, now, decisions)
            elif kind == "pref":
                self._end_preferred_window(task, now, decisions)
            elif kind.startswith("step"):
                self._escalate(task, int(kind[4:]), now, decisions)
            elif kind == "maxwait":
                self._max_wait(task, now, decisions)
        return decisions

    # ------------------------------------------------------------------ reads

    def agent_state(self, agent_id: str) -> AgentState:
        return self._agent(agent_id).state

    def position(self, task_id: str) -> int | None:
        """1-based place in the queue (None unless waiting)."""
        task = self._task(task_id)
        if task.phase is not Phase.WAITING:
            return None
        return self._board.position(task, self._clock())

    def estimated_wait(
        self, task_id: str | None = None, queue: str | None = None, channel: str = "voice"
    ) -> float:
        """Expected remaining wait in seconds for a waiting task, or for a new ``channel`` task
        in ``queue``: position × AHT / staffed agents (infinite when nobody is staffed);
        0 when an eligible agent is free; for an empty queue with staffed agents, the
        Erlang C mean wait from the window's arrival rate and AHT when it applies. Only
        agents who can take the channel count (for voice: with a registered softphone)."""
        self._need_stats()
        now = self._clock()
        if task_id is not None:
            task = self._task(task_id)
            if task.phase is not Phase.WAITING:
                return 0.0
            queue = task.queue
            channel = task.channel
            pos = self._board.position(task, now)
        else:
            if queue not in self.queues:
                raise RoutingError(f"unknown queue {queue!r}")
            pos = self._board.waiting.get(queue, 0) + 1
        staffed, available = self._staffing(queue, channel)
        aht = self._aht(queue, now)
        if task_id is None and pos == 1:
            if available:
                return 0.0
            ec = erlang_c_wait(self._qstats[queue].arrival_rate(now), aht, staffed)
            if ec is not None:
                return ec
        return position_wait(pos, aht, staffed)

    def queue_stats(self, queue: str, channel: str = "voice") -> QueueStats:
        """The queue's figures; ``staffed``/``available`` (and the EWT) count the agents who can
        take ``channel`` contacts: an agent without a registered softphone is not voice staff."""
        if queue not in self.queues:
            raise RoutingError(f"unknown queue {queue!r}")
        self._need_stats()
        now = self._clock()
        q = self.queues[queue]
        tr = self._qstats[queue]
        waiting = list(self._board.queue_tasks(queue))
        reserved = sum(1 for r in self.reservations.values() if r.queue == queue)
        staffed, available = self._staffing(queue, channel)
        occ = [o for a in self._staffed_agents(queue) if (o := self._astats[a.id].occupancy(now)) is not None]
        aht = self._aht(queue, now)
        tr.arrivals.prune(now)
        return QueueStats(
            queue=queue,
            waiting=len(waiting),
            reserved=reserved,
            longest_wait_s=max((now - t.queued_at for t in waiting), default=0.0),
            offered=tr.arrivals.count,
            answered=tr.answered.count,
            abandoned=tr.abandoned.count,
            service_level=tr.service_level(now),
            service_level_target=q.service_level.percent,
            service_level_seconds=q.service_level.seconds,
            asa_s=tr.answered.mean(now),
            aht_s=tr.handle.mean(now),
            abandon_rate=tr.abandon_rate(now),
            staffed=staffed,
            available=available,
            occupancy=sum(occ) / len(occ) if occ else None,
            ewt_s=self.estimated_wait(queue=queue, channel=channel),
            ewt_erlang_c_s=erlang_c_wait(tr.arrival_rate(now), aht, staffed),
            window_s=tr.arrivals.span,
        )

    def agent_stats(self, agent_id: str) -> AgentStats:
        agent = self._agent(agent_id)
        self._need_stats()
        now = self._clock()
        tr = self._astats[agent_id]
        return AgentStats(
            agent_id=agent.id,
            state=str(agent.state),
            reason=agent.reason,
            in_state_s=now - agent.last_state_change,
            load=dict(agent.load),
            capacity=dict(agent.capacity),
            contacts_today=agent.contacts_today,
            rejected_today=agent.rejected_today,
            rona_today=agent.rona_today,
            handled=tr.handle.count,
            aht_s=tr.handle.mean(now),
            occupancy=tr.occupancy(now),
        )

    def queues_served(self, agent_id: str) -> list[str]:
        """The queues whose required skills (and agent groups) the agent meets."""
        agent = self._agent(agent_id)
        return [name for name, q in self.queues.items()
                if meets(agent, q.required_skills, self._queue_groups[name])]  # fmt: skip

    def reset_day(self) -> None:
        """Zero the per-day agent counters (call at the contact center's day boundary)."""
        for agent in self.agents.values():
            agent.contacts_today = agent.rejected_today = agent.rona_today = 0

    # ------------------------------------------------------------------ internals

    def _need_stats(self) -> None:
        if not self._live:
            raise RoutingError("live statistics are off for this router (built with live_stats=False)")

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise RoutingError(f"unknown agent {agent_id!r}") from None

    def _task(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise RoutingError(f"unknown task {task_id!r}") from None

    def _reservation(self, reservation_id: str) -> Reservation:
        try:
            return self.reservations[reservation_id]
        except KeyError:
            raise RoutingError(f"no pending reservation {reservation_id!r}") from None

    def _timer(self, when: float, kind: str, ref: str, epoch: int) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), kind, ref, epoch))

    def _mark(self, agent: Agent, now: float) -> None:
        if agent.tasks:
            kind = "handling"
        elif agent.presence is Presence.AVAILABLE:
            kind = "idle"
        else:
            kind = "off"
        self._astats[agent.id].mark(now, kind)

    def _staffed_agents(self, queue: str) -> list[Agent]:
        """Logged-in agents able to serve the queue's base requirements. Cached until an
        agent logs in/out or is added/removed, so stats reads do not scan every agent."""
        cached = self._staffed_cache.get(queue)
        if cached is not None and cached[0] == self._roster_version:
            return cached[1]
        q = self.queues[queue]
        groups = frozenset(q.groups)
        staffed = [
            a
            for a in self.agents.values()
            if a.presence is not Presence.OFFLINE and meets(a, q.required_skills, groups)
        ]
        self._staffed_cache[queue] = (self._roster_version, staffed)
        return staffed

    def _staffing(self, queue: str, channel: str) -> tuple[int, int]:
        """Agents staffed for ``channel`` in the queue (logged in, skilled, with capacity and a
        device for it) and how many of them could take such a contact now."""
        staffed = [a for a in self._staffed_agents(queue)
                   if a.capacity.get(channel) and has_device(a, channel)]  # fmt: skip
        available = sum(1 for a in staffed if channel in self._index.channels_of(a.id))
        return len(staffed), available

    def _aht(self, queue: str, now: float) -> float:
        mean = self._qstats[queue].handle.mean(now)
        return mean if mean is not None else self.config.settings.default_aht_s

    def _drop(self, task: Task) -> None:
        task.phase = Phase.DONE
        self.tasks.pop(task.id, None)

    def _enter_queue(
        self, task: Task, queue: str, now: float, decisions: list[Decision], why: str,
        since: float | None = None,
    ) -> None:
        """Put a task in a queue (first time, overflow, move or transfer) and route it;
        ``since``: it has waited in this queue since then on another node (submit)."""
        q = self.queues[queue]
        if q.max_size is not None and self._board.waiting.get(queue, 0) >= q.max_size:
            if q.overflow is not None and task.overflow_hops < len(self.queues):
                self._overflow(task, queue, q.overflow, now, decisions, full_reason(queue, q))
                return
            self._drop(task)
            decisions.append(refused(task.id, queue, q))
            return
        task.queue = queue
        task.queue_epoch += 1
        start = now if since is None else min(since, now)
        task.queued_at = start
        task.phase = Phase.WAITING
        task.agent_id = None
        task.steps_done = 0
        task.rejected_by.clear()
        task.required = merge_min(q.required_skills, task.own_required)
        task.preferred = merge_min(q.preferred_skills, task.own_preferred)
        task.allowed_groups = self._queue_groups[queue]
        task.preferred_only_until = None
        if (
            task.preferred_agent is not None
            and q.preferred_agent_timeout_s > 0
            and task.preferred_agent in self.agents
        ):
            task.preferred_only_until = start + q.preferred_agent_timeout_s
            self._timer(task.preferred_only_until, "pref", task.id, task.queue_epoch)
        for i, step in enumerate(q.escalation):
            self._timer(start + step.after_s, f"step{i}", task.id, task.queue_epoch)
        if q.max_wait_s is not None:
            self._timer(start + q.max_wait_s, "maxwait", task.id, task.queue_epoch)
        if self._live and since is None:
            self._qstats[queue].arrivals.add(now)
        self._route_task(task, now, decisions, DecisionKind.QUEUED, why)

    def _route_task(
        self,
        task: Task,
        now: float,
        decisions: list[Decision],
        if_waiting: DecisionKind | None,
        why: str,
    ) -> None:
        """Task-first decision: offer to the best agent, or (re)place on the board."""
        picked = self._pick_agent(task, now)
        if picked is not None:
            agent, text, facts = picked
            if why and self._explain:
                text = f"{why}; {text}"
            decisions.append(self._reserve(task, agent, now, text, facts))
            return
        q = self.queues[task.queue]
        if task.group is None:
            self._board.add(task, q.aging.priority_per_minute / 60.0, q.weight)
        if if_waiting is not None and not self._explain:
            decisions.append(Decision(if_waiting, task.id, task.queue, UNEXPLAINED))
        elif if_waiting is not None:
            facts = {
                "queue": task.queue,
                "required": dict(task.required),
                "position": self._board.waiting.get(task.queue, 0),
            }
            text = waiting_text(task, now, why)
            decisions.append(Decision(if_waiting, task.id, task.queue, Explanation(text, facts)))

    def _pick_agent(self, task: Task, now: float) -> tuple[Agent, str, dict[str, Any]] | None:
        q = self.queues[task.queue]
        required, allowed = task.required, task.allowed_groups
        pref_id = task.preferred_agent
        if pref_id is not None:
            pref = self.agents.get(pref_id)
            if (
                pref is not None
                and task.channel in self._index.channels_of(pref_id)
                and pref_id not in task.rejected_by
                and meets(pref, required, allowed)
            ):
                return pref, *self._explain_offer(task, pref, "preferred agent", 1, {}, now)
            if task.preferred_only_until is not None:
                return None  # still inside the preferred agent's window
        candidates, checks = self._index.candidates(task.channel, required)
        if not candidates:
            return None  # some required skill has no routable holder at all
        rejected = task.rejected_by
        if q.strategy is Strategy.LONGEST_IDLE and not task.preferred:
            if len(checks) == 1 and self._index.has_levels(checks[0][0]):
                return self._longest_idle_by_level(task, checks[0], len(candidates), now)
            # Buckets are in idle order: the first eligible agent is the longest idle.
            for skipped, agent in enumerate(candidates):
                if has_levels(agent.skills, checks):
                    if agent.id in rejected or (allowed and allowed.isdisjoint(agent.groups)):
                        continue
                    return agent, *self._explain_offer(
                        task,
                        agent,
                        "longest_idle",
                        skipped + 1,
                        {"skipped_ineligible": skipped, "candidates": len(candidates)},
                        now,
                    )
            return None
        rr_last = self._rr_last.get(task.queue, 0)
        strategy = q.strategy
        # Candidates come in idle order and every key but round robin ends with the
        # idle sequence, so an agent reaching the key's lowest possible prefix wins
        # outright and the scan stops there.
        npref = len(task.preferred)
        if strategy is Strategy.MOST_SKILLED:
            floor: tuple[float | int, ...] = (-top_score(len(required), npref),)
        elif strategy is Strategy.ROUND_ROBIN:
            floor = (-npref, 0, rr_last + 1)
        elif strategy is Strategy.LONGEST_IDLE:
            floor = (-npref,)
        else:
            floor = (-npref, 0)
        cut = len(floor)
        best: tuple[tuple[float | int, ...], Agent] | None = None
        eligible = 0
        primary = self._primary_skill(task) if strategy is Strategy.MOST_SKILLED else None
        walk = primary is not None
        # The most-skilled walk's bound: the top score of every skill but the walked one.
        others = top_score(len(required) - 1, npref) if walk else 0
        # Without preferred skills these keys reduce to one number (ties go to the
        # earlier agent in idle order, or cannot happen for round robin), so agents that
        # cannot beat the best so far are skipped before their skills are even checked.
        scalar: Callable[[Agent], float] | None = None
        if not npref:
            if strategy is Strategy.FEWEST_CONTACTS:
                scalar = _contacts_today
            elif strategy is Strategy.LEAST_OCCUPIED:
                scalar = Agent.occupancy_now
            elif strategy is Strategy.ROUND_ROBIN:
                wrap = len(self.agents) + rr_last + 1

                def scalar(agent: Agent) -> float:
                    return agent.ordinal if agent.ordinal > rr_last else agent.ordinal + wrap

        best_scalar = math.inf
        value = 0.0
        for agent in self._scan_order(task, candidates):
            if scalar is not None:
                value = scalar(agent)
                if value >= best_scalar:
                    continue
            if walk and best is not None:
                # Levels come from 10 down: nobody from here on scores above `bound`.
                level = agent.skills[primary]
                bound = REQUIRED_WEIGHT * level + others
                top = -best[0][0]
                if top > bound or (top == bound and best[1].skills[primary] == level):
                    break
            if not has_levels(agent.skills, checks):
                continue
            if agent.id in rejected or (allowed and allowed.isdisjoint(agent.groups)):
                continue
            eligible += 1
            key = strategy_key(strategy, agent, task, rr_last)
            if best is None or key < best[0]:
                best = (key, agent)
                best_scalar = value if scalar is not None else best_scalar
                if key[:cut] <= floor:
                    break
        if best is None:
            return None
        key, agent = best
        if q.strategy is Strategy.ROUND_ROBIN:
            self._rr_last[task.queue] = agent.ordinal
        return agent, *self._explain_offer(
            task, agent, str(q.strategy), eligible, {"key": list(key), "candidates": len(candidates)}, now
        )

    def _longest_idle_by_level(
        self, task: Task, check: tuple[str, int], holders: int, now: float
    ) -> tuple[Agent, str, dict[str, Any]] | None:
        """Longest idle for one level-indexed required skill: the first eligible agent of
        each level bucket at or above the minimum (each bucket is in idle order), and
        the lowest idle sequence among those. Agents below the minimum are never seen."""
        skill, low = check
        rejected, allowed = task.rejected_by, task.allowed_groups
        best: Agent | None = None
        skipped = 0
        for level, bucket in self._index.level_buckets(task.channel, skill):
            if level < low:
                continue
            for agent in bucket.values():
                if best is not None and agent.idle_seq > best.idle_seq:
                    break
                if agent.id in rejected or (allowed and allowed.isdisjoint(agent.groups)):
                    skipped += 1
                    continue
                best = agent
                break
        if best is None:
            return None
        return best, *self._explain_offer(
            task,
            best,
            "longest_idle",
            skipped + 1,
            {"skipped_ineligible": skipped, "candidates": holders},
            now,
        )

    def _scan_order(self, task: Task, candidates: Collection[Agent]) -> Iterable[Agent]:
        """Agents to examine. Most-skilled walks the primary skill's levels from 10 down
        (idle order within a level) so it can stop early; the others use idle order."""
        primary = self._primary_skill(task)
        if self.queues[task.queue].strategy is not Strategy.MOST_SKILLED or primary is None:
            return candidates
        low = task.required[primary]
        return itertools.chain.from_iterable(
            bucket.values()
            for level, bucket in reversed(self._index.level_buckets(task.channel, primary))
            if level >= low
        )

    def _primary_skill(self, task: Task) -> str | None:
        """The level-indexed required skill to walk (highest minimum level, then name)."""
        indexed = [s for s in task.required if self._index.has_levels(s)]
        if not indexed:
            return None
        return min(indexed, key=lambda s: (-task.required[s], s))

    def _explain_offer(
        self, task: Task, agent: Agent, how: str, eligible: int, extra: dict[str, Any], now: float
    ) -> tuple[str, dict[str, Any]]:
        # `now` is the decision's own instant (one clock read per decision).
        if not self._explain:
            return UNEXPLAINED.text, UNEXPLAINED.facts
        q = self.queues[task.queue]
        if how == "preferred agent":
            why = "preferred agent (served this customer before)"
        elif how == "longest_idle":
            why = f"longest idle ({now - agent.idle_since:.0f}s idle)"
        elif how == "most_skilled":
            why = f"most skilled (score {skill_score(agent, task)} of eligible {eligible})"
        elif how == "least_occupied":
            why = f"least occupied ({100 * agent.occupancy_now():.0f}% busy now)"
        elif how == "fewest_contacts":
            why = f"fewest contacts today ({agent.contacts_today})"
        else:
            why = f"round robin (next after #{self._rr_last.get(task.queue, 0)})"
        if how in ("least_occupied", "fewest_contacts", "round_robin"):
            why += f", among {eligible} eligible"
        if how != "most_skilled" and task.preferred:
            n = preferred_matches(agent, task)
            why += f", {n}/{len(task.preferred)} preferred skills"
        text = (
            f"{task.queue}: {task.channel} task {task.id} → agent {agent.id} ({agent.name}) by "
            f"{why}; {describe_skills(agent, task.required, task.preferred)}"
        )
        if task.allowed_groups:
            text += f"; group {sorted(task.allowed_groups & agent.groups)[0]}"
        if task.step_notes:
            text += "; " + "; ".join(task.step_notes)
        facts: dict[str, Any] = {
            "decision": "task_first",
            "queue": task.queue,
            "strategy": str(q.strategy) if how != "preferred agent" else "preferred_agent",
            "agent": agent.id,
            "required": dict(task.required),
            "agent_levels": {s: agent.skills.get(s, 0) for s in (*task.required, *task.preferred)},
            "eligible_considered": eligible,
            "escalation_steps": list(task.step_notes),
            "priority": task.priority,
            "waited_s": now - task.queued_at,
            **extra,
        }
        return text, facts

    def _reserve(self, task: Task, agent: Agent, now: float, text: str, facts: dict[str, Any]) -> Decision:
        if task.group is not None:
            self._board.remove(task)
        q = self.queues[task.queue]
        res = Reservation(
            id=f"res-{next(self._res_seq)}",
            task_id=task.id,
            agent_id=agent.id,
            queue=task.queue,
            channel=task.channel,
            created=now,
            deadline=now + q.reservation_timeout_s,
            explanation=Explanation(text, facts) if self._explain else UNEXPLAINED,
        )
        self.reservations[res.id] = res
        task.phase = Phase.RESERVED
        task.agent_id = agent.id
        task.reservation_id = res.id
        agent.load[task.channel] = agent.load.get(task.channel, 0) + 1
        agent.tasks[task.id] = Phase.RESERVED
        self._index.refresh(agent)
        if self._live:
            self._mark(agent, now)
        self._timer(res.deadline, "rona", res.id, 0)
        return Decision(DecisionKind.OFFER, task.id, task.queue, res.explanation, agent.id, res)

    def _release_slot(self, agent: Agent, task: Task, now: float, *, contact_ended: bool) -> None:
        agent.load[task.channel] -= 1
        if not agent.load[task.channel]:
            del agent.load[task.channel]
        agent.tasks.pop(task.id, None)
        if contact_ended:
            agent.last_contact_end = now
            if self._live and task.answered_at is not None:
                handle = now - task.answered_at
                self._qstats[task.queue].handle.add(now, handle)
                self._astats[agent.id].handle.add(now, handle)
        if agent.total_load() == 0:
            agent.idle_since = now
        self._index.refresh(agent, restart_idle=contact_ended)
        if self._live:
            self._mark(agent, now)
        task.agent_id = None
        task.reservation_id = None

    def _revoke(self, res: Reservation, now: float, kind: DecisionKind, why: str) -> list[Decision]:
        """Withdraw a pending offer: the task goes back (same place), the agent's slot frees."""
        decisions: list[Decision] = []
        del self.reservations[res.id]
        task = self.tasks[res.task_id]
        agent = self.agents[res.agent_id]
        self._release_slot(agent, task, now, contact_ended=False)
        task.phase = Phase.WAITING
        explanation = (
            Explanation(
                f"{task.queue}: offer of {task.id} to agent {agent.id} withdrawn: {why}; "
                "the task keeps its age and place",
                {"agent": agent.id, "reservation": res.id, "reason": why},
            )
            if self._explain
            else UNEXPLAINED
        )
        decisions.append(Decision(kind, task.id, task.queue, explanation, agent.id))
        if self._max_wait_overdue(task, now):
            self._max_wait(task, now, decisions)
        else:
            self._route_task(task, now, decisions, None, f"back after {kind}")
        self._agent_free(agent, now, decisions)
        return decisions

    def _finish(self, task: Task, now: float, decisions: list[Decision]) -> None:
        agent = self.agents.get(task.agent_id or "")
        self._drop(task)
        if agent is not None:
            self._release_slot(agent, task, now, contact_ended=True)
            self._agent_free(agent, now, decisions)

    def _wrap_up_ended(self, task: Task) -> Decision:
        if not self._explain:
            return Decision(DecisionKind.WRAP_UP_ENDED, task.id, task.queue, UNEXPLAINED, task.agent_id)
        return Decision(
            DecisionKind.WRAP_UP_ENDED,
            task.id,
            task.queue,
            Explanation(
                f"{task.queue}: wrap-up of {task.id} ended after {self.queues[task.queue].wrap_up_s:.0f}s",
                {"wrap_up_s": self.queues[task.queue].wrap_up_s},
            ),
            task.agent_id,
        )

    def _agent_free(self, agent: Agent, now: float, decisions: list[Decision]) -> None:
        """Agent-first decision, repeated while the agent has free slots and work fits."""
        while True:
            channels = self._index.channels_of(agent.id)
            if not channels:
                return
            best = None
            for ch in sorted(channels):
                found = self._board.best_for(agent, ch, now)
                if found is not None and (
                    best is None
                    or (-found[2], found[0].created, found[0].seq) < (-best[2], best[0].created, best[0].seq)
                ):
                    best = found
            if best is None:
                return
            task, group, eff, considered = best
            text, facts = self._explain_take(agent, task, group.rate, eff, considered, now)
            decisions.append(self._reserve(task, agent, now, text, facts))

    def _explain_take(
        self, agent: Agent, task: Task, rate: float, eff: float, considered: int, now: float
    ) -> tuple[str, dict[str, Any]]:
        """The agent-first decision's text and facts."""
        if not self._explain:
            return UNEXPLAINED.text, UNEXPLAINED.facts
        q = self.queues[task.queue]
        aging = rate * max(0.0, now - task.created)
        text = (
            f"agent {agent.id} ({agent.name}) free on {task.channel}: took {task.id} from "
            f"{task.queue}, the best of {considered} eligible waiting heads by effective "
            f"priority {eff:.1f} (= priority {task.priority} + aging {aging:.1f}"
            f" + queue weight {q.weight:g}), waited {now - task.queued_at:.0f}s; "
            f"{describe_skills(agent, task.required, task.preferred)}"
        )
        if task.step_notes:
            text += "; " + "; ".join(task.step_notes)
        facts = {
            "decision": "agent_first",
            "queue": task.queue,
            "agent": agent.id,
            "effective_priority": eff,
            "priority": task.priority,
            "aging": aging,
            "weight": q.weight,
            "heads_considered": considered,
            "required": dict(task.required),
            "agent_levels": {s: agent.skills.get(s, 0) for s in task.required},
            "escalation_steps": list(task.step_notes),
            "waited_s": now - task.queued_at,
        }
        return text, facts

    def _overflow(
        self,
        task: Task,
        source: str,
        target: str,
        now: float,
        decisions: list[Decision],
        reason: str,
    ) -> None:
        if task.group is not None:
            self._board.remove(task)
        task.overflow_hops += 1
        decisions.append(overflowed(task.id, source, target, reason))
        self._enter_queue(task, target, now, decisions, why=f"overflow from {source}")

    def _max_wait_overdue(self, task: Task, now: float) -> bool:
        mw = self.queues[task.queue].max_wait_s
        return mw is not None and now - task.queued_at >= mw

    def _max_wait(self, task: Task, now: float, decisions: list[Decision]) -> None:
        q = self.queues[task.queue]
        if task.phase is Phase.RESERVED:
            # Ringing at max wait: decide when the offer resolves (accept or RONA).
            return
        if task.phase is not Phase.WAITING:
            return
        reason = max_wait_reason(task, q, now)
        if q.overflow is not None and task.overflow_hops < len(self.queues):
            self._overflow(task, task.queue, q.overflow, now, decisions, reason)
            return
        self._board.remove(task)
        self._drop(task)
        decisions.append(exited(task.id, task.queue, q, reason))

    def _end_preferred_window(self, task: Task, now: float, decisions: list[Decision]) -> None:
        if task.preferred_only_until is None:
            return
        task.preferred_only_until = None
        task.step_notes.append(PREFERRED_WINDOW_OVER)
        if task.phase is Phase.WAITING:
            self._board.remove(task)
            self._route_task(task, now, decisions, None, "")

    def _escalate(self, task: Task, index: int, now: float, decisions: list[Decision]) -> None:
        if task.phase not in (Phase.WAITING, Phase.RESERVED):
            return
        step = self.queues[task.queue].escalation[index]
        note = apply_step(task, step, index)
        decisions.append(escalated(task, step, index, note))
        if step.move_to is not None and task.phase is Phase.WAITING:
            self._overflow(task, task.queue, step.move_to, now, decisions, note)
            return
        if task.phase is Phase.WAITING:
            self._board.remove(task)
            self._route_task(task, now, decisions, None, "")
