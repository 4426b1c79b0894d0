"""Click-to-dial from the desk: an outbound call the agent starts from a number or a customer.

Like a callback (voice_callback.py), the agent's phone rings first and, once they answer,
the server dials the customer through ``callbacks.dial_uri``; the two legs are then bridged
and the call is a contact like any other (hold, transfer, wrap-up), recorded as channel voice,
direction ``outbound``. Routing still decides nothing but keeps its books: the contact is a
task in one of the agent's queues, submitted for that agent with top priority (the agent goes
Available if they were not), so their capacity and state stay right while they dial.

It belongs to the agent who dialled: if the offer is not answered (RONA, Decline, the phone
refuses), or routing would give it to anyone else, the call is dropped as ``failed`` — no
other agent is rung, and the customer is dialled once (no retries as for callbacks).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from callcenter import events as ev
from callcenter.contacts.callback_worklist import TAKE_PRIORITY
from callcenter.contacts.contact import Contact, Offer, Phase
from callcenter.contacts.errors import Invalid, InvalidState, NotFound
from crm_bridge.addresses import normalize_phone
from routing.model import Presence

if TYPE_CHECKING:
    from callcenter.channels.voice import VoiceChannel

log = logging.getLogger(__name__)


class OutboundDialler:
    def __init__(self, channel: VoiceChannel) -> None:
        self.channel = channel
        self.core = channel.core
        self.owners: dict[str, str] = {}  # contact id -> the agent who dialled it

    async def dial(
        self, agent_id: str, *, number: str | None = None, customer_id: str | None = None,
        queue: str | None = None,
    ) -> Contact:  # fmt: skip
        """Ring ``agent_id``'s phone for a call to ``number`` (or the customer's first phone)."""
        core, router = self.core, self.core.router
        if not self.channel.dialler.can_dial_out:
            raise InvalidState("outbound calls need callbacks.dial_uri (the trunk) in server.yaml")
        number = await self._number(number, customer_id)
        served = router.queues_served(agent_id)
        queue = queue or self._home_queue(agent_id, served)
        if queue not in served:
            raise NotFound(f"no queue {queue!r} among yours: {', '.join(served) or 'none'}")
        agent = router.agents[agent_id]
        if not agent.softphone:
            raise InvalidState("your phone is not registered: an outbound call rings it first")
        if agent.tasks:
            raise InvalidState("finish your current contacts first")
        from callcenter.channels.voice import VoiceLegs
        from callcenter.channels.voice_callback import GONE_LEG

        contact = Contact(ev.new_id(), "voice", number, "", "outbound")
        contact.callback_number = number
        # One dial only: the dialler retries while attempts < max_attempts.
        contact.callback_attempts = self.channel.dialler.cfg.max_attempts - 1
        cid = contact.contact_id
        self.channel.legs[cid] = VoiceLegs(GONE_LEG)  # no customer leg until they are dialled
        self.owners[cid] = agent_id
        core.arrive(contact, ev.ContactArrived(contact_id=cid, channel="voice", direction="outbound",
                                               ani=number, to_addr=number, service="outbound",
                                               attributes={"dialled_by": agent_id}))  # fmt: skip
        await core.customer_context(contact, "phone")
        contact.queue, contact.priority, contact.skills = queue, TAKE_PRIORITY, {}
        contact.queued_at = contact.arrived_at
        queued = ev.ContactQueued(contact_id=cid, queue=queue, priority=TAKE_PRIORITY, skills={})
        core.move(contact, Phase.CALLBACK, queued)
        submitted = core.route(router.submit, cid, queue, "voice", priority=TAKE_PRIORITY,
                               preferred_agent=agent_id, agents=(agent_id,))  # fmt: skip
        if submitted and agent.presence is not Presence.AVAILABLE:
            core.route(router.set_agent_state, agent_id, "available", "", agents=(agent_id,))
        if contact.offer is None or contact.offer.agent_id != agent_id:
            self.drop(contact, "agent_unavailable")
            raise InvalidState("the call could not ring your phone now")
        return contact

    def _home_queue(self, agent_id: str, served: list[str]) -> str | None:
        """The queue an outbound call goes on the books of by default: of those the agent serves,
        the one needing the skill they are best at (sales for a salesperson, not the fax tray)."""
        skills = self.core.router.agents[agent_id].skills

        def level(name: str) -> int:
            required = self.core.router.queues[name].required_skills
            return max((skills.get(s, 0) for s in required), default=0)

        return max(served, key=level, default=None)  # max keeps the first of equals: config order

    async def _number(self, number: str | None, customer_id: str | None) -> str:
        if customer_id:
            crm = self.core.crm
            customer = await crm.get_customer(customer_id) if crm is not None else None  # type: ignore[attr-defined]
            if customer is None:
                raise NotFound(f"no customer {customer_id!r}")
            phones = [p["value"] for p in customer.get("contact_points", []) if p.get("kind") == "phone"]
            if not phones:
                raise Invalid(f"customer {customer_id} has no phone number")
            number = phones[0]
        normal = normalize_phone(number or "", self.channel.default_region)
        if normal is None:
            raise Invalid(f"not a phone number: {number!r}")
        return normal

    # ------------------------------------------------------------------ the voice channel's hooks

    def foreign(self, contact: Contact, offer: Offer) -> bool:
        """An outbound call offered to anyone but the agent who dialled it: dropped, not rung."""
        owner = self.owners.get(contact.contact_id)
        if owner is None or owner == offer.agent_id:
            return False
        asyncio.get_running_loop().call_soon(self.drop, contact, "agent_unavailable")
        return True

    def withdrawn(self, contact: Contact) -> None:
        """The dialling agent's offer is over (RONA, Decline): the call is dropped."""
        if contact.contact_id in self.owners:
            asyncio.get_running_loop().call_soon(self.drop, contact, "agent_did_not_answer")

    def drop(self, contact: Contact, reason: str) -> None:
        if self.core.contacts.get(contact.contact_id) is not contact:
            return
        if contact.phase in (Phase.CALLBACK, Phase.OFFERED, Phase.QUEUED):
            log.info("outbound call %s dropped: %s", contact.contact_id, reason)
            agent = contact.agent_id
            self.core.withdraw_offer(contact, reason)
            self.core.route(self.core.router.cancel, contact.contact_id, reason,
                            agents=(agent,) if agent else ())  # fmt: skip
            self.core.fail(contact, reason)

    def forget(self, contact: Contact) -> None:
        self.owners.pop(contact.contact_id, None)
