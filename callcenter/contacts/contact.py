"""One contact's channel-neutral state and its phase machine.

A contact (a call today; an email, a chat, a fax later) lives through the
phases of :class:`Phase`. ``TRANSITIONS`` lists every allowed change and the
event that announces it; :meth:`Contact.enter` is the only way to change the
phase, and :meth:`callcenter.contacts.core.ContactCore.move` the only caller
(it also logs the change and publishes the event). What a channel needs
beyond this (SIP legs, media tasks) is kept by its adapter, keyed by
``contact_id``.

Wall-clock timestamps (epoch seconds) because they go into events and
records; the routing engine measures durations on its own monotonic clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callcenter import events as ev
from callcenter.contacts.errors import IllegalTransition


class Phase(StrEnum):
    ARRIVED = "arrived"  # known to the center, not yet answered or read
    SELF_SERVICE = "self_service"  # the IVR flow (or a built-in app) is serving the customer
    QUEUED = "queued"  # waiting in a routing queue, the customer on the line
    CALLBACK = "callback"  # asked to be called back: waits in the queue (or the CRM) off the line
    OFFERED = "offered"  # reserved for an agent and presented to them (voice: their phone rings)
    DIALLING = "dialling"  # callback accepted: the customer is being dialled for the agent
    CONNECTED = "connected"  # customer and agent are talking
    TRANSFERRING = "transferring"  # the agent let go; on the way to another queue or outside
    EXTERNAL = "external"  # bridged to an outside number; the record ends with the call
    VOICEMAIL = "voicemail"  # left the queue to leave a message
    ABANDONED = "abandoned"  # the customer left while queued or offered
    FAILED = "failed"  # the center could not serve it (callback not reached, transfer failed)
    WRAP_UP = "wrap_up"  # the conversation is over; the agent's after-call work is open
    ENDED = "ended"  # over; ContactEnded has been published (exactly once)
    HANDED_OFF = "handed_off"  # moved to another node, which carries the record on (cluster/handoff.py)


P = Phase
# (old, new) → the event type that the change publishes, or None where the news is
# told by an event of its own (the IVR's FlowEntered; VoicemailRecorded when the
# message is saved; ContactTransferred when the agent let go; the ContactEnded
# that follows a failure).
TRANSITIONS: dict[tuple[Phase, Phase], type[ev.Event] | None] = {
    (P.ARRIVED, P.SELF_SERVICE): None,
    (P.ARRIVED, P.ENDED): ev.ContactEnded,
    (P.ARRIVED, P.QUEUED): ev.ContactQueued,  # no self-service first (an email, a chat, a fax)
    (P.ARRIVED, P.CALLBACK): ev.ContactQueued,  # an agent's outbound call, waiting for their phone
    (P.SELF_SERVICE, P.QUEUED): ev.ContactQueued,
    (P.SELF_SERVICE, P.CALLBACK): ev.ContactQueued,
    (P.SELF_SERVICE, P.EXTERNAL): None,
    (P.SELF_SERVICE, P.ENDED): ev.ContactEnded,
    (P.QUEUED, P.QUEUED): ev.ContactQueued,  # overflow to another queue
    (P.QUEUED, P.OFFERED): ev.AgentOffered,
    (P.QUEUED, P.CALLBACK): ev.CallbackRequested,
    (P.QUEUED, P.VOICEMAIL): None,
    (P.QUEUED, P.ABANDONED): ev.ContactAbandoned,
    (P.QUEUED, P.FAILED): None,  # the center lost the call (its media worker died)
    (P.QUEUED, P.HANDED_OFF): None,  # the node that took it publishes ContactHandedOff
    (P.CALLBACK, P.CALLBACK): ev.ContactQueued,  # overflow
    (P.CALLBACK, P.OFFERED): ev.AgentOffered,
    (P.CALLBACK, P.FAILED): None,
    (P.CALLBACK, P.ENDED): ev.ContactEnded,
    (P.OFFERED, P.QUEUED): ev.OfferRejected,
    (P.OFFERED, P.CALLBACK): ev.OfferRejected,
    (P.OFFERED, P.CONNECTED): ev.ContactConnected,
    (P.OFFERED, P.DIALLING): ev.CallbackDialling,
    (P.OFFERED, P.ABANDONED): ev.ContactAbandoned,
    (P.OFFERED, P.FAILED): None,  # lost while alerting the agent (media died, a fault in the channel)
    (P.DIALLING, P.CONNECTED): ev.ContactConnected,
    (P.DIALLING, P.CALLBACK): ev.CallbackAttempted,  # not reached: back to its place in the queue
    (P.DIALLING, P.FAILED): ev.CallbackAttempted,  # not reached, no attempts left
    (P.CONNECTED, P.TRANSFERRING): ev.ContactTransferred,
    (P.CONNECTED, P.WRAP_UP): ev.ContactEnded,
    (P.TRANSFERRING, P.QUEUED): ev.ContactQueued,
    (P.TRANSFERRING, P.EXTERNAL): None,
    (P.TRANSFERRING, P.FAILED): None,
    (P.TRANSFERRING, P.ENDED): ev.ContactEnded,
    (P.EXTERNAL, P.ENDED): ev.ContactEnded,
    (P.VOICEMAIL, P.ENDED): ev.ContactEnded,
    (P.ABANDONED, P.ENDED): ev.ContactEnded,
    (P.FAILED, P.ENDED): ev.ContactEnded,
    (P.WRAP_UP, P.ENDED): ev.WrapUpCompleted,
}
WAITING = frozenset({P.QUEUED, P.CALLBACK})  # in a routing queue, no agent yet


@dataclass(frozen=True, slots=True)
class Offer:
    """A routing reservation of one agent for the contact, from decision to answer."""

    agent_id: str
    reservation_id: str
    queue: str
    explanation: str
    deadline: float  # time.monotonic() when routing takes it back (RONA)


@dataclass(eq=False)
class Contact:
    contact_id: str
    channel: str  # voice | email | web | fax
    ani: str  # the customer's address: E.164 for voice, or "" when withheld
    dnis: str
    service: str
    arrived_at: float = field(default_factory=time.time)
    _phase: Phase = Phase.ARRIVED
    customer: dict[str, Any] | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)  # last interactions for the screen-pop
    ivr_path: tuple[str, ...] = ()
    ivr_data: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    queued_at: float | None = None
    offer: Offer | None = None  # set from the routing decision until accepted or withdrawn
    explanation: str = ""  # why routing chose the current agent (routing's line), kept after the offer
    why_you: str = ""  # the same in a plain sentence for the agent (contacts/why_you.py)
    ivr_titles: tuple[str, ...] = ()  # ivr_path in words: each step's flow title, else its id
    agent_id: str | None = None  # the agent offered, dialling or connected
    connected_at: float | None = None
    on_hold: bool = False
    muted: bool = False  # the agent's audio toward the customer is silenced (voice)
    callback_number: str | None = None  # the number to dial back, when the server can dial out
    callback_attempts: int = 0

    @property
    def phase(self) -> Phase:
        return self._phase

    def enter(self, new: Phase, event: ev.Event | None) -> Phase:
        """Change the phase if the table allows it with this event; returns the old phase.

        Only :meth:`ContactCore.move` calls this (it logs and publishes)."""
        old = self._phase
        key = (old, new)
        if key not in TRANSITIONS:
            raise IllegalTransition(f"contact {self.contact_id}: {old} → {new} is not a transition")
        wanted = TRANSITIONS[key]
        if (event is None) != (wanted is None) or (wanted is not None and type(event) is not wanted):
            got = type(event).__name__ if event is not None else None
            raise IllegalTransition(
                f"contact {self.contact_id}: {old} → {new} publishes "
                f"{wanted.__name__ if wanted else None}, not {got}"
            )
        self._phase = new
        return old

    def waited_s(self, now: float | None = None) -> float:
        if self.queued_at is None:
            return 0.0
        return max(0.0, (self.connected_at or now or time.time()) - self.queued_at)

    def summary(self) -> dict[str, Any]:
        """What agent desktops and supervisors see of the contact."""
        return {
            "contact_id": self.contact_id,
            "channel": self.channel,
            "phase": str(self._phase),
            "ani": self.ani,
            "dnis": self.dnis,
            "service": self.service,
            "queue": self.queue,
            "priority": self.priority,
            "agent_id": self.agent_id,
            "arrived_at": self.arrived_at,
            "queued_at": self.queued_at,
            "connected_at": self.connected_at,
            "waited_s": round(self.waited_s(), 3),
            "on_hold": self.on_hold,
            "muted": self.muted,
            "callback_number": self.callback_number,
            "ring_deadline": self.ring_deadline(),
        }

    def ring_deadline(self) -> float | None:
        """Epoch seconds when routing takes the offer back (RONA), for a desk countdown;
        None without an offer. The offer's deadline is monotonic: browsers count in epoch time."""
        if self.offer is None:
            return None
        return round(time.time() + (self.offer.deadline - time.monotonic()), 3)

    def screen_pop(self, explanation: str) -> dict[str, Any]:
        """The offer bundle for the agent desktop: built from memory, no I/O, so it
        reaches the desktop before the agent is alerted by the channel."""
        customer = self.customer or {}
        return {
            "type": "offer",
            "contact": self.summary(),
            "interaction_id": self.contact_id,
            "customer": self.customer,
            "tier": customer.get("tier"),
            "recent": self.recent,
            "ivr": {"path": list(self.ivr_path), "titles": list(self.ivr_titles or self.ivr_path),
                    "data": self.ivr_data},
            "routing": explanation,
            "why_you": self.why_you,
            "sent_at": time.time(),
        }
