"""Desk-accepted channels: the base of every channel whose offer the agent takes with
a button on the desk (email, web chat, web forms, fax), on the channel-neutral core.

Voice alerts the agent by ringing their phone and is accepted by the phone answering;
a desk task is alerted by the screen-pop alone and accepted by the desk's Accept
(``POST /api/contacts/{id}/accept`` → :meth:`ContactCore.accept_offer` →
:meth:`DeskTaskChannel.accept_from_desk`). Decline offers it to someone else, End
closes the conversation into wrap-up. Routing's per-channel capacity decides how many
of them an agent holds at once, next to a call where voice is not exclusive.

A channel subclasses this, names itself, and overrides what it does differently::

    class EmailChannel(DeskTaskChannel):
        name = "email"
        def view(self, contact): return {"thread": ...}   # the desk panel's payload

    email = EmailChannel(core)                            # registers with the core
    contact = email.new_contact(ani="grace@example.com", service="support")
    await email.receive(contact, "support")               # arrive, screen-pop data, queue
    email.message(contact, direction="in", message_id="<id@x>", text="...")  # ContactMessage
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from callcenter import events as ev
from callcenter.contacts.contact import WAITING, Contact, Offer, Phase
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import InvalidState
from callcenter.tasks import BackgroundTasks

log = logging.getLogger(__name__)


class DeskTaskChannel:
    """A :class:`callcenter.contacts.channel.Channel` whose offers are accepted on the desk."""

    name: ClassVar[str] = "task"  # the contacts' channel (Contact.channel, the record's channel)
    # Routing's channel, when it differs from ``name`` (chat and web forms share ``web`` slots).
    routing_channel: ClassVar[str | None] = None
    address_kind: ClassVar[str] = "email"  # how the ANI finds the customer: "email" or "phone"

    def __init__(self, core: ContactCore) -> None:
        self.core = core
        self.tasks = BackgroundTasks(log)
        core.add_channel(self.name, self)

    # ------------------------------------------------------------------ bringing contacts in

    def new_contact(
        self, *, ani: str, service: str, dnis: str = "", contact_id: str | None = None
    ) -> Contact:
        """A contact of this channel; ``ani`` is the customer's address (email or phone)."""
        return Contact(contact_id or ev.new_id(), self.name, ani, dnis, service)

    async def receive(
        self,
        contact: Contact,
        queue: str,
        *,
        priority: int = 0,
        skills: Mapping[str, int] | None = None,
        arrived: ev.ContactArrived | None = None,
    ) -> None:
        """The contact arrives (``arrived``: the channel's own ContactArrived, else one built
        from the contact), its customer is looked up for the screen-pop, and it enters
        ``queue``. Its messages may be published before or after."""
        self.core.arrive(contact, arrived or ev.ContactArrived(
            contact_id=contact.contact_id, channel=self.name, ani=contact.ani, dnis=contact.dnis,
            service=contact.service, from_addr=contact.ani))  # fmt: skip
        await self.core.customer_context(contact, self.address_kind)
        if self.core.contacts.get(contact.contact_id) is contact:  # not ended during the lookup
            self.core.enqueue(contact, queue, priority, dict(skills or {}))

    def message(
        self,
        contact: Contact,
        *,
        direction: str,
        message_id: str,
        author: str = "",
        text: str = "",
        attachments: Iterable[Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> ev.ContactMessage:
        """Publish one message of the conversation: recorded on the interaction, and sent to
        the desk of the agent holding the contact."""
        event = ev.ContactMessage(
            contact_id=contact.contact_id, direction=direction, channel=self.name, message_id=message_id,
            author=author, text=text, attachments=[dict(a) for a in attachments],
            meta=dict(meta or {}))  # fmt: skip
        self.core.publish(event)
        return event

    def customer_left(self, contact: Contact, reason: str = "customer_left") -> None:
        """The customer went away (a chat visitor closed the window): a conversation goes to
        wrap-up, a waiting or offered contact is abandoned."""
        if self.core.contacts.get(contact.contact_id) is not contact:
            return
        if contact.phase is Phase.CONNECTED:
            self.core.end_connected(contact, "customer", reason)
        elif contact.phase in WAITING or contact.phase is Phase.OFFERED:
            self.core.abandon(contact, reason, "customer")
        elif contact.phase is Phase.ARRIVED:
            self.core.end(contact, reason, "customer")

    # ------------------------------------------------------------------ the desk

    async def accept_from_desk(self, contact: Contact, offer: Offer) -> None:
        """The agent pressed Accept: routing's reservation becomes the assignment and the
        conversation starts (ContactConnected)."""
        self.core.accept(contact.contact_id, offer.agent_id)
        if contact.offer is not offer:  # routing had taken it back (RONA) in the same moment
            raise InvalidState("the offer was withdrawn")
        self.core.connect(contact, offer.agent_id)

    def view(self, contact: Contact) -> dict[str, Any]:
        """The channel's own payload for the desk panel (email thread, chat transcript...)."""
        return {}

    # ------------------------------------------------------------------ Channel protocol

    def reachable(self, contact: Contact) -> bool:
        return self.core.contacts.get(contact.contact_id) is contact

    def present(self, contact: Contact, offer: Offer) -> None:
        # The screen-pop is the whole alert; the offer then waits for Accept, Decline or RONA.
        self.tasks.spawn(self.core.present(contact, offer), name=f"{self.name}-offer-{contact.contact_id}")

    def withdraw(self, contact: Contact) -> None:
        """Nothing rings: the desk drops the offer on the OfferRejected message."""

    def no_agent(self, contact: Contact, why: str) -> None:
        """Routing gave up (queue full, maximum wait): the contact ends as failed, its record
        kept. Channels that can answer otherwise (an auto-reply) override this."""
        log.warning("%s contact %s: no agent (%s)", self.name, contact.contact_id, why)
        if contact.phase in (Phase.QUEUED, Phase.OFFERED, Phase.CALLBACK, Phase.TRANSFERRING):
            self.core.fail(contact, "no_agent")

    def waiting(self, contact: Contact) -> None:
        """Nothing plays while a task waits."""

    def release_agent(self, contact: Contact) -> None:
        """Nothing to drop: the conversation is in the core and the record."""

    def address(self, target: str) -> str:
        raise InvalidState(f"a {self.name} contact is transferred to a queue or an agent, not to {target}")

    async def transfer_out(self, contact: Contact, address: str) -> None:
        raise InvalidState(f"a {self.name} contact cannot leave the center")

    async def hold(self, contact: Contact, on_hold: bool) -> bool:
        raise InvalidState(f"a {self.name} contact has no hold")

    def hangup(self, contact: Contact) -> None:
        """The agent closed the conversation: the contact ends and its wrap-up begins."""
        self.core.end_connected(contact, "agent", "agent_ended")

    def send_digits(self, contact: Contact, digits: str) -> None:
        raise InvalidState(f"a {self.name} contact has no keypad")

    def forget(self, contact: Contact) -> None:
        """Nothing kept per contact here; subclasses drop their own state."""

    async def close(self) -> None:
        await self.tasks.close()
