"""One voice contact's live state, from INVITE to the end of wrap-up.

Plain data: the switchboard changes it, the CTI layer reads it. Wall-clock
timestamps (epoch seconds) because they go into events and records; durations
for the routing engine are measured on its own monotonic clock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callcenter.sip.calls import Call


class Phase(StrEnum):
    IVR = "ivr"
    QUEUED = "queued"
    RINGING = "ringing"  # offered to an agent, their phone is ringing
    DIALLING = "dialling"  # callback: the agent answered, the customer's phone is ringing
    CONNECTED = "connected"
    TRANSFERRING = "transferring"
    ENDED = "ended"


@dataclass(eq=False)
class VoiceContact:
    contact_id: str
    call: Call
    ani: str  # E.164, or "" when withheld
    dnis: str
    service: str
    arrived_at: float = field(default_factory=time.time)
    phase: Phase = Phase.IVR
    in_ivr: bool = False  # the flow is running: its result, not the hang-up, ends the contact
    customer: dict[str, Any] | None = None
    ivr_path: tuple[str, ...] = ()
    ivr_data: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    queued_at: float | None = None
    agent_id: str | None = None  # the agent ringing or connected
    reservation_id: str | None = None
    agent_call: Call | None = None
    connected_at: float | None = None
    on_hold: bool = False
    callback_number: str | None = None  # set when the customer asked to be called back
    callback_attempts: int = 0
    end_published: bool = False
    recent: list[dict[str, Any]] = field(default_factory=list)  # last interactions for the screen-pop
    ringing: asyncio.Task[None] | None = None
    treatment: asyncio.Task[None] | None = None
    routed: asyncio.Event = field(default_factory=asyncio.Event)  # set when the queue part is over

    @property
    def reachable(self) -> bool:
        """Still worth an agent: the caller is on the line, or is waiting for a call back."""
        return self.call.is_active or (self.callback_number is not None and self.phase is not Phase.ENDED)

    def waited_s(self, now: float | None = None) -> float:
        if self.queued_at is None:
            return 0.0
        return max(0.0, (self.connected_at or now or time.time()) - self.queued_at)

    def summary(self) -> dict[str, Any]:
        """What agent desktops and supervisors see of the contact."""
        return {
            "contact_id": self.contact_id,
            "channel": "voice",
            "phase": str(self.phase),
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
            "callback_number": self.callback_number,
        }

    def screen_pop(self, explanation: str) -> dict[str, Any]:
        """The offer bundle pushed to the agent desktop: built from memory, no I/O,
        so it reaches the desktop before the agent's phone rings."""
        customer = self.customer or {}
        return {
            "type": "offer",
            "contact": self.summary(),
            "interaction_id": self.contact_id,
            "customer": self.customer,
            "tier": customer.get("tier"),
            "recent": self.recent,
            "ivr": {"path": list(self.ivr_path), "data": self.ivr_data},
            "routing": explanation,
            "sent_at": time.time(),
        }
