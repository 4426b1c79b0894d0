"""Typed, immutable events: the one language the components speak.

Producers publish events on the bus; consumers subscribe. ``routing`` and
``crm_bridge`` never import this module: they receive ``Event.as_dict()`` —
a plain dict with ``type``, ``event_id``, ``contact_id``, ``ts`` and the
event's own fields — so the packages stay independent.

Events whose class says ``recorded = False`` feed only the live views (agent
desktops, supervisor board: callcenter.web.desk_feed); the interaction record
learns the same facts from other events, so the CRM is not subscribed to them.
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
    recorded: ClassVar[bool] = True  # False: for the live views only, not the CRM timeline

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
    matched: bool = True  # False: no option or valid answer (value is then "", heard what was said/keyed)
    heard: str = ""  # the raw input when it matched nothing
    sensitive: bool = False  # a field marked sensitive (card number): value and heard are never kept


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
class ContactHandedOff(Event):
    """Several nodes: a waiting caller moved from ``from_node`` to ``to_node``, which had an
    agent free for them (callcenter/cluster/handoff.py); ``to_node`` publishes it when it
    takes the contact over, and carries the record on from there."""

    from_node: str
    to_node: str
    agent_id: str = ""  # the agent free there when the move was decided


@dataclass(frozen=True, kw_only=True)
class ContactEnded(Event):
    reason: str
    ended_by: str = ""  # caller | agent | system


@dataclass(frozen=True, kw_only=True)
class WrapUpCompleted(Event):
    agent_id: str
    disposition: str = ""
    notes: str = ""
    timed_out: bool = False  # wrap-up time ran out: disposition and notes are the agent's saved draft


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
    retry: bool = False  # not answered, and it goes back to its place in the queue


@dataclass(frozen=True, kw_only=True)
class CallbackDialling(Event):
    """An agent accepted a callback; the server is dialling the customer for them."""

    recorded: ClassVar[bool] = False  # CallbackAttempted records the attempt and its result
    agent_id: str
    number: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class WrapUpStarted(Event):
    """The agent's after-call work on the contact begins (the call ended or was transferred out)."""

    recorded: ClassVar[bool] = False  # the record has ContactEnded / ContactTransferred
    agent_id: str
    ended_by: str  # caller | agent | system | transfer
    wrap_up_s: float | None = None  # time the agent has before wrap-up ends by itself; None: no limit


# --- agents ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AgentStateChanged(Event):
    agent_id: str
    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class AgentDeviceChanged(Event):
    """The agent's voice device (softphone) registered or went away: without one an Available
    agent takes no calls, and the desk and the board say so."""

    recorded: ClassVar[bool] = False
    agent_id: str
    softphone: bool


# --- live views (not recorded) -----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RoutingDecided(Event):
    """One routing decision, for the supervisors' decision feed (``contact_id`` is the task)."""

    recorded: ClassVar[bool] = False
    decision: dict[str, Any]  # routing.model.Decision.as_dict()


@dataclass(frozen=True, kw_only=True)
class QueueFigures(Event):
    """Every queue's statistics, at most every few hundred ms while routing is busy; ``node``:
    the node whose router counted them (several nodes: callcenter/cluster/queue_view.py)."""

    recorded: ClassVar[bool] = False
    queues: list[dict[str, Any]]
    node: str = ""


@dataclass(frozen=True, kw_only=True)
class NodeAgents(Event):
    """Several nodes: the agents signed in on ``node``, as its supervisor snapshot shows them
    (sent every third of a lease; the other nodes' boards show them too)."""

    recorded: ClassVar[bool] = False
    node: str
    agents: list[dict[str, Any]]
    sip: str = ""  # where the other nodes send callers they hand over (callcenter/cluster/handoff.py)


@dataclass(frozen=True, kw_only=True)
class CustomerRecordRead(Event):
    """A supervisor's read of a customer, or an agent's read that shows other agents'
    interactions (callcenter.privacy). Not part of any interaction record: a read may
    concern no contact at all; the audit log line is its durable trace."""

    recorded: ClassVar[bool] = False
    reader: str
    role: str
    customer_id: str
    reason: str  # "supervisor", "offer" (the screen-pop), "lookup" (the agent's current contact)
    interactions: list[str]  # ids of the history entries shown
    other_agents: list[str]  # agents other than the reader whose interactions were shown


def recorded_types() -> list[type[Event]]:
    """The event types the interaction record (CRM) is subscribed to."""
    return [cls for cls in Event.registry.values() if cls.recorded]


# --- messages of non-voice channels (appended: email, chat, web form, fax) ----


@dataclass(frozen=True, kw_only=True)
class ContactMessage(Event):
    """One message of a contact's conversation: an email, a chat line, a form submission, a
    fax document. Recorded: the interaction record keeps them in order as ``messages`` (its
    attachments also in ``attachments``), so the record shows the whole thread or transcript.
    The desk feed sends it to the agent holding the contact."""

    direction: str  # in (from the customer) | out (from the agent or the center)
    channel: str  # email | chat | webform | fax
    message_id: str  # the channel's own id (Message-ID, chat line id); unique within the contact
    author: str = ""  # an address, a visitor's name, or the agent id for "out"
    text: str = ""
    # Each: {name, size, sha256, path, content_type} (stored with crm_bridge.files).
    attachments: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # channel specifics (subject, headers, pages)


# --- call recording and supervisor monitoring (appended: callcenter/recording, callcenter/monitoring) ---


@dataclass(frozen=True, kw_only=True)
class RecordingPaused(Event):
    """The call's recording paused (PCI: silence in both channels) or resumed. ``by``: an
    agent id, "api", or "ivr" (a field marked sensitive is being collected)."""

    paused: bool
    by: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class AttachmentAdded(Event):
    """A file of the contact (a call recording: kind "call_recording", with path, size,
    sha256, duration_s, format, channels, paused and hold intervals)."""

    attachment: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class MonitorSession(Event):
    """A supervisor listened to, whispered to or barged into a call: one event when the
    session ends (or failed), with every mode it was in and when."""

    supervisor: str
    agent_id: str = ""
    started: float = 0.0
    ended: float = 0.0
    modes: list[dict[str, Any]] = field(default_factory=list)  # [{mode, from, to}]
    result: str = "ended"  # ended | failed:<why>


# --- desk call controls: mute, consultation, conference (callcenter/channels/voice_consult.py) ---


@dataclass(frozen=True, kw_only=True)
class ContactMuted(Event):
    """The agent muted or unmuted themselves on a call (the customer hears silence)."""

    recorded: ClassVar[bool] = False
    agent_id: str
    muted: bool


@dataclass(frozen=True, kw_only=True)
class ConsultUpdated(Event):
    """A consultation (warm transfer) moved on: calling | talking | conference | over; for the
    agent's desk (``label`` names the target for people, ``reason`` says why it is over)."""

    recorded: ClassVar[bool] = False
    agent_id: str
    target: str  # agent:ID | number:+E164
    label: str = ""
    state: str = "calling"
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class Consultation(Event):
    """One consultation of the call, when it is over: who was consulted, when they answered,
    the conference (if any) with its participants, and how it ended."""

    agent_id: str
    target: str  # agent:ID | number:+E164
    started: float = 0.0
    answered: float | None = None
    conference_from: float | None = None
    ended: float = 0.0
    participants: list[str] = field(default_factory=list)  # customer, agent:ID, the target
    result: str = "cancelled"  # completed | cancelled | conference_left | target_left | failed:<why>
