"""Events → WebSocket messages for agent desktops and the supervisor board.

The desk feed is a bus subscriber like the CRM bridge: the contact core
publishes events and knows nothing of desktops. It subscribes *inline*
(``EventBus.subscribe_inline``): mapping an event to a message and putting it
on the connections' queues never waits, so it needs no queue of its own, and
the desktop then sees each message in the same step as the state change it
describes (a summary built now shows the phase the event announced).

The screen-pop guarantee: for ``AgentOffered`` the feed returns one future
per desktop connection that resolves when the offer bundle has been written to
that socket; ``publish`` hands them to the core, which waits for them (at most
``SCREEN_POP_WAIT_S``) before the channel alerts the agent.

An agent may hold several contacts (a call, emails, chats): every message about a
contact carries its ``contact_id`` and ``channel``, so the desk can update the right
item of its work list; ``ContactMessage`` (an email, a chat line) goes to the agents
holding that contact.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.contact import Contact
from callcenter.web.hub import Hub

RECENT_DECISIONS = 50  # what the supervisor snapshot shows of the decision feed


class DeskFeed:
    def __init__(
        self,
        hub: Hub,
        contact: Callable[[str], Contact | None],
        pop_view: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
        dispositions: Callable[[str, str], list[str]] | None = None,
        holders: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.hub = hub
        self._contact = contact  # the live contact, for summaries and the screen-pop
        # (agent id, screen-pop) → what that agent may see of it (callcenter.privacy)
        self._pop_view = pop_view or (lambda _agent, pop: pop)
        # (agent id, contact id) → the choices of that wrap-up
        self._dispositions = dispositions or (lambda _agent, _contact: [])
        self._holders = holders or (lambda _contact: [])  # contact id → the agents holding it
        self.recent_decisions: deque[dict[str, Any]] = deque(maxlen=RECENT_DECISIONS)
        # Several nodes: figures from any node → the whole cluster's (callcenter/cluster/queue_view.py)
        self.queue_view: Callable[[ev.QueueFigures], list[dict[str, Any]]] | None = None
        self._handlers: dict[type[ev.Event], Callable[[Any], list[asyncio.Future[None]] | None]] = {
            ev.AgentStateChanged: self._agent_state,
            ev.AgentDeviceChanged: self._agent_device,
            ev.QueueFigures: self._queues,
            ev.RoutingDecided: self._decision,
            ev.AgentOffered: self._offer,
            ev.OfferRejected: self._withdrawn,
            ev.ContactConnected: self._connected,
            ev.CallbackDialling: self._dialling,
            ev.CallbackAttempted: self._callback_result,
            ev.WrapUpStarted: self._wrap_up,
            ev.WrapUpCompleted: self._wrap_up_done,
            ev.ContactHeld: self._hold,
            ev.ContactTransferred: self._transferred,
            ev.ContactMuted: self._muted,
            ev.ConsultUpdated: self._consult,
            ev.ContactMessage: self._message,
        }

    def attach(self, bus: EventBus) -> None:
        bus.subscribe_inline("desk", self.on_event, self._handlers)

    def on_event(self, event: ev.Event) -> list[asyncio.Future[None]] | None:
        return self._handlers[type(event)](event)

    def _channel(self, contact_id: str) -> str | None:
        contact = self._contact(contact_id)
        return contact.channel if contact is not None else None

    def _agent_state(self, e: ev.AgentStateChanged) -> None:
        message = {
            "type": "agent_state",
            "agent_id": e.agent_id,
            "old": e.old,
            "state": e.new,
            "reason": e.reason,
            "ts": e.ts,
        }
        self.hub.to_agent(e.agent_id, message)
        self.hub.to_supervisors(message)

    def _agent_device(self, e: ev.AgentDeviceChanged) -> None:
        message = {"type": "agent_device", "agent_id": e.agent_id, "softphone": e.softphone, "ts": e.ts}
        self.hub.to_agent(e.agent_id, message)
        self.hub.to_supervisors(message)

    def _queues(self, e: ev.QueueFigures) -> None:
        queues = self.queue_view(e) if self.queue_view is not None else e.queues
        self.hub.to_supervisors({"type": "queues", "queues": queues, "ts": e.ts})

    def _decision(self, e: ev.RoutingDecided) -> None:
        info = {**e.decision, "ts": e.ts}
        self.recent_decisions.append(info)
        self.hub.to_supervisors({"type": "decision", **info})

    def _offer(self, e: ev.AgentOffered) -> list[asyncio.Future[None]]:
        contact = self._contact(e.contact_id)
        if contact is None:
            return []
        pop = self._pop_view(e.agent_id, contact.screen_pop(e.explanation))
        return self.hub.deliver_to_agent(e.agent_id, pop)

    def _withdrawn(self, e: ev.OfferRejected) -> None:
        self.hub.to_agent(
            e.agent_id,
            {"type": "offer_withdrawn", "contact_id": e.contact_id, "channel": self._channel(e.contact_id),
             "reason": e.reason, "ts": e.ts},
        )

    def _connected(self, e: ev.ContactConnected) -> None:
        contact = self._contact(e.contact_id)
        if contact is not None:
            self.hub.to_agent(e.agent_id, {"type": "connected", "contact_id": e.contact_id,
                                           "channel": contact.channel, "contact": contact.summary(),
                                           "ts": e.ts})  # fmt: skip

    def _dialling(self, e: ev.CallbackDialling) -> None:
        contact = self._contact(e.contact_id)
        if contact is not None:
            self.hub.to_agent(
                e.agent_id,
                {
                    "type": "dialling",
                    "contact": contact.summary(),
                    "number": e.number,
                    "attempt": e.attempt,
                    "ts": e.ts,
                },
            )

    def _callback_result(self, e: ev.CallbackAttempted) -> None:
        self.hub.to_agent(
            e.agent_id,
            {
                "type": "callback_result",
                "contact_id": e.contact_id,
                "result": e.result,
                "retry": e.retry,
                "ts": e.ts,
            },
        )

    def _wrap_up(self, e: ev.WrapUpStarted) -> None:
        self.hub.to_agent(
            e.agent_id,
            {
                "type": "wrapup",
                "contact_id": e.contact_id,
                "channel": self._channel(e.contact_id),
                "ended_by": e.ended_by,
                "remaining_s": e.wrap_up_s,
                "dispositions": self._dispositions(e.agent_id, e.contact_id),
                "ts": e.ts,
            },
        )

    def _wrap_up_done(self, e: ev.WrapUpCompleted) -> None:
        self.hub.to_agent(
            e.agent_id,
            {
                "type": "wrapup_done",
                "contact_id": e.contact_id,
                "channel": self._channel(e.contact_id),
                "disposition": e.disposition,
                "timed_out": e.timed_out,
                "ts": e.ts,
            },
        )

    def _hold(self, e: ev.ContactHeld) -> None:
        self.hub.to_agent(e.agent_id, {"type": "hold", "on_hold": e.on_hold, "contact_id": e.contact_id,
                                       "channel": self._channel(e.contact_id)})  # fmt: skip

    def _muted(self, e: ev.ContactMuted) -> None:
        self.hub.to_agent(e.agent_id, {"type": "mute", "muted": e.muted, "contact_id": e.contact_id})

    def _consult(self, e: ev.ConsultUpdated) -> None:
        self.hub.to_agent(e.agent_id, {"type": "consult", "contact_id": e.contact_id, "target": e.target,
                                       "label": e.label, "state": e.state, "reason": e.reason})  # fmt: skip

    def _transferred(self, e: ev.ContactTransferred) -> None:
        message = {"type": "transferred", "contact_id": e.contact_id, "channel": self._channel(e.contact_id),
                   "target": e.target, "ts": e.ts}  # fmt: skip
        self.hub.to_agent(e.from_agent, message)

    def _message(self, e: ev.ContactMessage) -> None:
        message = {
            "type": "contact_message",
            "contact_id": e.contact_id,
            "channel": e.channel,
            "direction": e.direction,
            "message_id": e.message_id,
            "author": e.author,
            "text": e.text,
            "attachments": e.attachments,
            "meta": e.meta,
            "ts": e.ts,
        }
        for agent_id in self._holders(e.contact_id):
            self.hub.to_agent(agent_id, message)
