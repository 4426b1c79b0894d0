"""The supervisor board's figures for *today* (since the server's local midnight), kept live
from the bus: per queue offered / answered / abandoned, service level and callers in the
IVR now; per agent contacts handled, average handle time and the seconds that make up
occupancy.

Routing's own queue figures (``QueueFigures``) are over a sliding window
(``settings.stats_window_s``, 15 minutes by default); a wallboard's counters are for the
day. They are counted here, on the server, from the same events the CRM records:

- offered: a contact queued in the queue (once per contact and queue); answered: it was
  connected to an agent from that queue; abandoned: the caller left while it was queued or
  ringing; service level = answered within the queue's target seconds / (answered +
  abandoned), as routing computes it;
- in IVR now: live contacts in self-service whose service's ``default_queue`` is the queue;
- per agent the contact they are offered, talking to or wrapping up now;
- handled: contacts whose wrap-up ended today (a transfer's first agent included); handle
  time = connected → wrap-up done (talk, hold and wrap-up, as the reports count AHT);
- occupancy = time reserved, busy or in wrap-up / that plus time available
  (``crm_bridge.agent_states``). The page counts the current state on from ``since``,
  so occupancy moves between messages without polling.

A (re)started server seeds the counts from the CRM records of the day
(``ReportService.seed_today``), then counts on. Changes reach supervisors as one
``{"type": "today", ...}`` WebSocket message at most every ``PUSH_S``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.contact import Contact
from crm_bridge.agent_states import WORKING

PUSH_S = 0.25  # coalesce a burst of events into one message, as the queue figures are
_IN_IVR = "self_service"


def local_midnight(now: float) -> float:
    """Epoch seconds of the server's local midnight that began the day of ``now``."""
    day = datetime.fromtimestamp(now).astimezone()
    return day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass(slots=True)
class QueueDay:
    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0

    def view(self) -> dict[str, Any]:
        denom = self.answered + self.abandoned
        return {"offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
                "answered_within": self.answered_within,
                "service_level": 100.0 * self.answered_within / denom if denom else None}  # fmt: skip


@dataclass(slots=True)
class AgentDay:
    handled: int = 0
    handle_s: float = 0.0
    working_s: float = 0.0  # reserved + busy + wrap-up, up to ``since``
    available_s: float = 0.0  # up to ``since``
    state: str = "offline"
    since: float = 0.0  # when ``state`` began (clamped to the day's start)
    started: dict[str, float] = field(default_factory=dict)  # contact id -> connected at
    contact_id: str | None = None  # the contact offered, connected or in wrap-up now

    def close_state(self, now: float) -> None:
        spent = max(0.0, now - self.since)
        if self.state in WORKING:
            self.working_s += spent
        elif self.state == "available":
            self.available_s += spent
        self.since = now

    def view(self, contact: Contact | None) -> dict[str, Any]:
        now = None
        if self.contact_id is not None and contact is not None:
            now = {"contact_id": self.contact_id, "phase": str(contact.phase), "ani": contact.ani,
                   "queue": contact.queue}  # fmt: skip
        elif self.contact_id is not None:  # gone from the core: the agent is wrapping it up
            now = {"contact_id": self.contact_id, "phase": "wrap_up", "ani": "", "queue": None}
        return {"handled": self.handled, "aht_s": self.handle_s / self.handled if self.handled else None,
                "working_s": round(self.working_s, 3), "available_s": round(self.available_s, 3),
                "state": self.state, "since": self.since, "contact": now}  # fmt: skip


class TodayFigures:
    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        queues: Iterable[str],
        sl_seconds: Callable[[str], float],
        queue_of_service: Callable[[str], str | None],
        contacts: Mapping[str, Contact],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._send = send  # to every supervisor connection
        self._queue_names = list(queues)
        self._sl_seconds = sl_seconds
        self._queue_of_service = queue_of_service
        self._contacts = contacts
        self._clock = clock
        self.day_start = local_midnight(clock())
        self._next_day = self._day_after(self.day_start)
        self.queues: dict[str, QueueDay] = {q: QueueDay() for q in self._queue_names}
        self.agents: dict[str, AgentDay] = {}
        self._queued: dict[str, tuple[str, float]] = {}  # contact id -> (queue, queued at)
        self._push: asyncio.TimerHandle | None = None
        self._handlers: dict[type[ev.Event], Callable[[Any], None]] = {
            ev.ContactArrived: self._ivr_changed,
            ev.FlowEntered: self._ivr_changed,
            ev.IvrCompleted: self._ivr_changed,
            ev.ContactQueued: self._queued_in,
            ev.AgentOffered: self._offered,
            ev.OfferRejected: self._offer_gone,
            ev.ContactConnected: self._connected,
            ev.ContactAbandoned: self._abandoned,
            ev.ContactEnded: self._ended,
            ev.WrapUpCompleted: self._wrapped_up,
            ev.AgentStateChanged: self._agent_state,
        }

    @staticmethod
    def _day_after(start: float) -> float:
        return local_midnight(start + 86_400 + 3_600)  # +1 h: a 23-hour DST day still lands tomorrow

    def attach(self, bus: EventBus) -> None:
        bus.subscribe_inline("board-today", self.on_event, self._handlers)

    def on_event(self, event: ev.Event) -> None:
        self._roll(event.ts)
        self._handlers[type(event)](event)
        self._changed()

    # ------------------------------------------------------------------ the day

    def _roll(self, now: float) -> None:
        """At local midnight the counts start again; states carry over from midnight."""
        if now < self._next_day:
            return
        self.day_start = local_midnight(now)
        self._next_day = self._day_after(self.day_start)
        self.queues = {q: QueueDay() for q in self._queue_names}
        for agent in self.agents.values():
            agent.handled, agent.handle_s, agent.working_s, agent.available_s = 0, 0.0, 0.0, 0.0
            agent.since = max(agent.since, self.day_start)

    def _queue(self, name: str) -> QueueDay:
        return self.queues.setdefault(name, QueueDay())

    def _agent(self, agent_id: str) -> AgentDay:
        found = self.agents.get(agent_id)
        if found is None:
            found = self.agents[agent_id] = AgentDay(since=self.day_start)
        return found

    # ------------------------------------------------------------------ events

    def _ivr_changed(self, _e: ev.Event) -> None:
        pass  # nothing to count: in_ivr is read from the live contacts when the view is built

    def _queued_in(self, e: ev.ContactQueued) -> None:
        before = self._queued.get(e.contact_id)
        if before is not None and before[0] == e.queue:
            return  # back in the same queue (a re-queue): offered once
        self._queue(e.queue).offered += 1
        self._queued[e.contact_id] = (e.queue, e.ts)

    def _offered(self, e: ev.AgentOffered) -> None:
        self._agent(e.agent_id).contact_id = e.contact_id

    def _offer_gone(self, e: ev.OfferRejected) -> None:
        agent = self._agent(e.agent_id)
        if agent.contact_id == e.contact_id:
            agent.contact_id = None

    def _connected(self, e: ev.ContactConnected) -> None:
        agent = self._agent(e.agent_id)
        agent.started[e.contact_id] = e.ts
        agent.contact_id = e.contact_id
        queued = self._queued.pop(e.contact_id, None)
        if queued is None:
            return  # not from a queue (an outbound call)
        queue, at = queued
        day = self._queue(queue)
        day.answered += 1
        if e.ts - at <= self._sl_seconds(queue):
            day.answered_within += 1

    def _abandoned(self, e: ev.ContactAbandoned) -> None:
        queued = self._queued.pop(e.contact_id, None)
        if queued is not None:
            self._queue(queued[0]).abandoned += 1

    def _ended(self, e: ev.ContactEnded) -> None:
        self._queued.pop(e.contact_id, None)  # e.g. a callback or voicemail taken from the queue

    def _wrapped_up(self, e: ev.WrapUpCompleted) -> None:
        agent = self._agent(e.agent_id)
        if agent.contact_id == e.contact_id:
            agent.contact_id = None
        start = agent.started.pop(e.contact_id, None)
        if start is None:
            return
        agent.handled += 1
        agent.handle_s += max(0.0, e.ts - max(start, self.day_start))

    def _agent_state(self, e: ev.AgentStateChanged) -> None:
        agent = self._agent(e.agent_id)
        agent.close_state(e.ts)
        agent.state = e.new

    # ------------------------------------------------------------------ out

    def view(self) -> dict[str, Any]:
        in_ivr = dict.fromkeys(self.queues, 0)
        for contact in self._contacts.values():
            if str(contact.phase) == _IN_IVR:
                queue = self._queue_of_service(contact.service)
                if queue in in_ivr:
                    in_ivr[queue] += 1
        return {
            "day_start": self.day_start,
            "queues": {q: {**d.view(), "in_ivr": in_ivr[q]} for q, d in self.queues.items()},
            "agents": {a: d.view(self._contacts.get(d.contact_id or "")) for a, d in self.agents.items()},
        }

    def _changed(self) -> None:
        if self._push is None:
            self._push = asyncio.get_running_loop().call_later(PUSH_S, self._flush)

    def _flush(self) -> None:
        self._push = None
        self._send({"type": "today", "ts": self._clock(), **self.view()})

    def close(self) -> None:
        if self._push is not None:
            self._push.cancel()
            self._push = None

    def seed(self, queues: Mapping[str, Mapping[str, Any]], agents: Mapping[str, Mapping[str, Any]]) -> None:
        """Counts of the day so far from the records, before live events count on (at start).

        ``queues``: queue -> offered, answered, answered_within, abandoned; ``agents``:
        agent -> handled, aht_s, working_s, available_s (see ``ReportService.seed_today``)."""
        for name, row in queues.items():
            day = self._queue(name)
            day.offered, day.answered = int(row["offered"]), int(row["answered"])
            day.answered_within, day.abandoned = int(row["answered_within"]), int(row["abandoned"])
        for agent_id, row in agents.items():
            agent = self._agent(agent_id)
            agent.handled = int(row.get("handled") or 0)
            agent.handle_s = float(row.get("aht_s") or 0.0) * agent.handled
            agent.working_s = float(row.get("working_s") or 0.0)
            agent.available_s = float(row.get("available_s") or 0.0)
