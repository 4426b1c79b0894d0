"""Routing's data model: agents, tasks, reservations and the decisions about them.

Plain dataclasses with no behaviour beyond small derived properties; the
``Router`` owns every state change so the invariants (capacity, one
reservation per task) live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Presence(StrEnum):
    """What the agent chose: logged out, ready for work, or not ready (with a reason)."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    NOT_READY = "not_ready"


class AgentState(StrEnum):
    """The agent state shown to supervisors, derived from presence and contact phases.

    offline → available ⇄ reserved → busy → wrap_up → available, plus not_ready.
    An agent who is handling contacts shows the most engaged phase even when
    their presence is not_ready ("pending not ready" in other ACDs).
    """

    OFFLINE = "offline"
    AVAILABLE = "available"
    RESERVED = "reserved"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    NOT_READY = "not_ready"


class Phase(StrEnum):
    """Where a task is in its life."""

    WAITING = "waiting"
    RESERVED = "reserved"
    ASSIGNED = "assigned"
    WRAP_UP = "wrap_up"
    DONE = "done"


class DecisionKind(StrEnum):
    OFFER = "offer"  # a reservation: offer the task to the agent
    QUEUED = "queued"  # no eligible agent now; the task waits
    ESCALATED = "escalated"  # an escalation step changed the task's requirements/priority
    OVERFLOW = "overflow"  # the task moved to another queue (max size / max wait / step)
    EXITED = "exited"  # the task left routing without an agent (max wait, no overflow)
    REFUSED = "refused"  # the queue is full and has no overflow target
    RONA = "rona"  # reservation timed out: agent set not ready (reason rona), task requeued
    REQUEUED = "requeued"  # reservation rejected/revoked; the task waits again
    WRAP_UP_ENDED = "wrap_up_ended"  # automatic end of wrap-up after the queue's wrap_up_s


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a decision was taken: one readable line plus the structured facts behind it."""

    text: str
    facts: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class Agent:
    id: str
    name: str
    skills: dict[str, int]
    capacity: dict[str, int]
    groups: frozenset[str] = frozenset()
    presence: Presence = Presence.OFFLINE
    reason: str = ""
    softphone: bool = False
    load: dict[str, int] = field(default_factory=dict)  # channel -> contacts holding a slot
    tasks: dict[str, Phase] = field(default_factory=dict)  # task id -> reserved/assigned/wrap_up
    last_state_change: float = 0.0
    last_contact_end: float | None = None
    idle_since: float = 0.0
    idle_seq: int = 0  # monotone with idle_since; the longest-idle key and its tie-break
    contacts_today: int = 0
    rejected_today: int = 0
    rona_today: int = 0
    ordinal: int = 0  # stable position for round-robin

    @property
    def state(self) -> AgentState:
        if self.presence is Presence.OFFLINE:
            return AgentState.OFFLINE
        phases = set(self.tasks.values())
        if Phase.RESERVED in phases:
            return AgentState.RESERVED
        if Phase.ASSIGNED in phases:
            return AgentState.BUSY
        if Phase.WRAP_UP in phases:
            return AgentState.WRAP_UP
        if self.presence is Presence.NOT_READY:
            return AgentState.NOT_READY
        return AgentState.AVAILABLE

    def total_load(self) -> int:
        return sum(self.load.values())

    def occupancy_now(self) -> float:
        """Share of each channel's slots in use, summed (0 = idle)."""
        if not self.load:
            return 0  # what sum() of nothing gives; idle agents are most of a scan
        return sum(n / self.capacity[ch] for ch, n in self.load.items() if self.capacity.get(ch))


@dataclass(slots=True)
class Task:
    id: str
    channel: str
    queue: str
    required: dict[str, int] = field(default_factory=dict)  # skill -> minimum level
    preferred: dict[str, int] = field(default_factory=dict)
    priority: int = 0
    created: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)
    preferred_agent: str | None = None
    # --- routing state, owned by the Router
    own_required: dict[str, int] = field(default_factory=dict)  # as submitted, before queue merge
    own_preferred: dict[str, int] = field(default_factory=dict)
    phase: Phase = Phase.WAITING
    entered: float = 0.0  # first entered routing
    answered_at: float | None = None
    group: Any = None  # the waiting-board group holding the task, None when not waiting
    queued_at: float = 0.0  # entered the current queue (escalation and max wait count from here)
    seq: int = 0  # arrival order; the last FIFO tie-break
    version: int = 0  # bumped when the task's place in the waiting board changes
    queue_epoch: int = 0  # bumped when the task changes queue; invalidates queue timers
    steps_done: int = 0
    step_notes: list[str] = field(default_factory=list)
    allowed_groups: frozenset[str] = frozenset()  # empty = any agent group
    preferred_only_until: float | None = None
    rejected_by: set[str] = field(default_factory=set)
    agent_id: str | None = None
    reservation_id: str | None = None
    overflow_hops: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    task_id: str
    agent_id: str
    queue: str
    channel: str
    created: float
    deadline: float
    explanation: Explanation


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing the router decided; callcenter acts on it (ring a phone, play a prompt...)."""

    kind: DecisionKind
    task_id: str
    queue: str
    explanation: Explanation
    agent_id: str | None = None
    reservation: Reservation | None = None
    target_queue: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "task_id": self.task_id,
            "queue": self.queue,
            "agent_id": self.agent_id,
            "reservation_id": self.reservation.id if self.reservation else None,
            "deadline": self.reservation.deadline if self.reservation else None,
            "target_queue": self.target_queue,
            "explanation": self.explanation.text,
            "facts": self.explanation.facts,
        }
