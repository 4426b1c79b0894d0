"""Callback requests kept over a restart.

A customer who asked to be called back has hung up; their request waits in a routing
queue, which lives in the server's memory only. ``CallbackKeeper`` writes every
waiting request to the CRM store (``pending_callbacks``, crm_bridge/recovery.py) as it
changes, and drops it once it is connected or over. At start-up, before calls are
taken, :meth:`restore` puts each kept request back in its queue with the time it first
entered it, so it keeps its place ahead of requests made later.

The keeper follows the contact core's events (a queued bus subscriber) and reads the
contact's current state when it handles one, so a burst of changes ends in the last
state; a request made in the last moments before a crash may be lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.contact import Contact, Phase
from callcenter.contacts.core import ContactCore

log = logging.getLogger(__name__)

# still a request to call back: waiting, or offered to an agent, or being dialled
PENDING = frozenset({Phase.CALLBACK, Phase.OFFERED, Phase.DIALLING})
EVENTS = (ev.ContactQueued, ev.CallbackRequested, ev.OfferRejected, ev.CallbackAttempted,
          ev.ContactConnected, ev.ContactEnded)  # fmt: skip


class PendingCallbackStore(Protocol):
    async def save_pending_callback(self, contact_id: str, created_at: float, data: dict[str, Any]) -> None:
        ...

    async def drop_pending_callback(self, contact_id: str) -> None: ...
    async def pending_callbacks(self) -> list[dict[str, Any]]: ...


class CallbackKeeper:
    def __init__(
        self, core: ContactCore, store: PendingCallbackStore, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.core = core
        self.store = store
        self.clock = clock  # the router's clock: task creation times are on it
        self._kept: set[str] = set()

    def attach(self, bus: EventBus) -> None:
        bus.subscribe("callbacks", self._on_event, EVENTS)

    def _wall(self, mono: float) -> float:
        return time.time() - (self.clock() - mono)

    async def _on_event(self, event: ev.Event) -> None:
        cid = event.contact_id
        contact = self.core.contacts.get(cid)
        if contact is not None and contact.callback_number and contact.phase in PENDING:
            task = self.core.router.tasks.get(cid)
            # between dial attempts the request is out of routing: its first time stays
            created = self._wall(task.created) if task is not None else (contact.queued_at or time.time())
            await self.store.save_pending_callback(cid, created, _data(contact))
            self._kept.add(cid)
        elif cid in self._kept:
            self._kept.discard(cid)
            await self.store.drop_pending_callback(cid)

    async def restore(
        self, register: Callable[[Contact], None], take: Callable[[str], Awaitable[bool]] | None = None
    ) -> list[str]:
        """Back into their queues with their first creation time; ``register`` gives each
        to its channel. Returns the contact ids (their records stay open). ``take``: only the
        requests it says yes to (a cluster node: those it owns, not another live node's)."""
        restored = []
        for row in await self.store.pending_callbacks():
            cid, d = row["contact_id"], row["data"]
            if take is not None and not await take(cid):
                continue
            contact = Contact(
                cid, "voice", d["ani"], d["dnis"], d["service"], arrived_at=d["arrived_at"],
                _phase=Phase.CALLBACK,  # restored as it was, not a transition: nothing to announce
                queue=d["queue"], priority=d["priority"], skills=dict(d["skills"]), queued_at=d["queued_at"],
                callback_number=d["callback_number"], callback_attempts=d["callback_attempts"],
            )  # fmt: skip
            self.core.contacts[cid] = contact
            register(contact)
            await self.core.customer_context(contact, "phone")
            self._kept.add(cid)
            restored.append(cid)
            created = self.clock() - (time.time() - row["created_at"])
            if not self.core.submit(contact, created=created):
                log.warning("callback %s: queue %r takes no tasks now; it fails", cid, contact.queue)
                self.core.fail(contact, "callback_failed")
        return restored


def _data(contact: Contact) -> dict[str, Any]:
    fields = ("ani", "dnis", "service", "arrived_at", "queue", "priority", "queued_at", "callback_number",
              "callback_attempts")  # fmt: skip
    return {**{f: getattr(contact, f) for f in fields}, "skills": dict(contact.skills)}
