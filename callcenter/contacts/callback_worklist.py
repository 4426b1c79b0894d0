"""The desk's callback worklist: callback requests waiting in the agent's queues, and taking one.

Routing hands callbacks out oldest (and highest priority) first, like calls. The worklist lets
an agent choose one — the customer they promised to call, the one whose language they speak —
from the queues they serve. Taking it moves that request to the front for this agent
(routing's transfer to the same queue, keeping its age, with the agent preferred and a
priority above the queue's) and makes the agent Available, so routing offers it to them at
once: their phone rings, and on answer the server dials the customer (voice_callback.py),
exactly as for a callback routing chose.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from callcenter.contacts.contact import Phase
from callcenter.contacts.errors import InvalidState, NotFound
from routing.model import Phase as TaskPhase
from routing.model import Presence

if TYPE_CHECKING:
    from callcenter.contacts.contact import Contact
    from callcenter.contacts.core import ContactCore

TAKE_PRIORITY = 1000  # above any configured priority: the agent chose this one


def _waiting(core: ContactCore, contact: Contact) -> bool:
    task = core.router.tasks.get(contact.contact_id)
    return (contact.phase is Phase.CALLBACK and contact.offer is None and task is not None
            and task.phase is TaskPhase.WAITING)  # fmt: skip


def pending_callbacks(core: ContactCore, agent_id: str) -> list[dict[str, Any]]:
    """Callback requests waiting for an agent in the queues ``agent_id`` serves, oldest first
    (a request between two dial attempts is not waiting, so not listed)."""
    served = set(core.router.queues_served(agent_id))
    now = time.time()
    items = [
        {
            "contact_id": c.contact_id,
            "number": c.callback_number,
            "queue": c.queue,
            "customer": (c.customer or {}).get("name"),
            "tier": (c.customer or {}).get("tier"),
            "attempts": c.callback_attempts,
            "waited_s": round(c.waited_s(now), 1),
            "queued_at": c.queued_at,
        }
        for c in core.contacts.values()
        if c.queue in served and _waiting(core, c)
    ]
    return sorted(items, key=lambda i: i["queued_at"] or 0.0)


def take_callback(core: ContactCore, agent_id: str, contact_id: str) -> Contact:
    """Offer the chosen callback to ``agent_id`` now (their phone rings); the agent goes Available."""
    contact = core.contacts.get(contact_id)
    if contact is None or contact.queue not in core.router.queues_served(agent_id):
        raise NotFound(f"no callback {contact_id!r} in your queues")
    if not _waiting(core, contact):
        raise InvalidState("this callback is no longer waiting (taken, or being dialled)")
    agent = core.router.agents[agent_id]
    if not agent.softphone:
        raise InvalidState("your phone is not registered: a callback rings it first")
    if agent.tasks:
        raise InvalidState("finish your current contacts first")
    core.route(core.router.transfer, contact_id, contact.queue or "", priority=TAKE_PRIORITY,
               preferred_agent=agent_id, agents=(agent_id,))  # fmt: skip
    if agent.presence is not Presence.AVAILABLE:
        core.route(core.router.set_agent_state, agent_id, "available", "", agents=(agent_id,))
    if contact.offer is None or contact.offer.agent_id != agent_id:
        raise InvalidState("the callback could not be offered to you now; it waits at the front")
    return contact
