"""Typed, immutable events: the one language the components speak.

Producers publish events on the bus; consumers subscribe. ``routing`` and
``crm_bridge`` never import this module: they receive ``Event.as_dict()`` —
a plain dict with ``type``, ``event_id``, ``contact_id``, ``ts`` and the
event's own fields — so the packages stay independent.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar


def new_id() -> str:
    """A sortable-enough unique id (uuid4 hex); ids are opaque to consumers."""
    return uuid.uuid4().hex


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``contact_id`` is empty for agent-only events."""

    contact_id: str = ""
    event_id: str = field(default_factory=new_id)
    ts: float = field(default_factory=time.time)

    registry: ClassVar[dict[str, type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Event.registry[cls.__name__] = cls

    @property
    def type(self) -> str:
        return type(self).__name__

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["type"] = self.type
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Event:
        """Rebuild an event from ``as_dict()`` output (e.g. read back from Redis)."""
        payload = dict(data)
        cls = Event.registry[payload.pop("type")]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})


# --- contact lifecycle -------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ContactArrived(Event):
    channel: str  # voice | fax | email | web
    direction: str = "inbound"
    ani: str = ""  # E.164 caller number, or "" when withheld
    dnis: str = ""
    service: str = ""
    from_addr: str = ""  # raw address as received (SIP From URI, email address, web session)
    to_addr: str = ""
    customer_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FlowEntered(Event):
    flow: str
    language: str = ""


@dataclass(frozen=True, kw_only=True)
class PromptPlayed(Event):
    step: str
    text: str = ""
    audio: str = ""
    interrupted: bool = False


@dataclass(frozen=True, kw_only=True)
class IvrInputCollected(Event):
    step: str
    name: str
    value: str
    how: str  # dtmf | speech | none
    confidence: float = 1.0


@dataclass(frozen=True, kw_only=True)
class BranchTaken(Event):
    step: str
    target: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class IvrCompleted(Event):
    outcome: str  # queued | self_served | voicemail | callback | transferred | hangup
    path: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ContactQueued(Event):
    queue: str
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AgentOffered(Event):
    agent_id: str
    queue: str
    reservation_id: str
    explanation: str = ""


@dataclass(frozen=True, kw_only=True)
class OfferRejected(Event):
    agent_id: str
    reservation_id: str
    reason: str  # rejected | rona | cancelled


@dataclass(frozen=True, kw_only=True)
class ContactConnected(Event):
    agent_id: str


@dataclass(frozen=True, kw_only=True)
class ContactHeld(Event):
    agent_id: str
    on_hold: bool


@dataclass(frozen=True, kw_only=True)
class ContactTransferred(Event):
    from_agent: str
    target: str  # queue:NAME | agent:ID | sip:URI


@dataclass(frozen=True, kw_only=True)
class ContactAbandoned(Event):
    waited_s: float
    where: str  # ivr | queue | ringing


@dataclass(frozen=True, kw_only=True)
class ContactEnded(Event):
    reason: str
    ended_by: str = ""  # caller | agent | system


@dataclass(frozen=True, kw_only=True)
class WrapUpCompleted(Event):
    agent_id: str
    disposition: str = ""
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class VoicemailRecorded(Event):
    path: str
    size: int
    sha256: str
    duration_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class CallbackRequested(Event):
    number: str


@dataclass(frozen=True, kw_only=True)
class CallbackAttempted(Event):
    """The server dialled a customer back for an agent who had answered."""

    agent_id: str
    number: str
    attempt: int
    result: str  # answered | busy | no_answer | failed | agent_hung_up


# --- agents ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AgentStateChanged(Event):
    agent_id: str
    old: str
    new: str
    reason: str = ""
