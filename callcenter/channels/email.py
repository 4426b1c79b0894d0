"""Email as a channel on the contact core (a desk-accepted channel).

Processing (callcenter/email/process.py) hands each inbound message here
(:meth:`EmailChannel.deliver`):

- a new thread, or a customer's reply to a thread whose contact has closed, becomes a
  contact: ``ContactArrived`` (from_addr, the mailbox as to_addr, subject and thread in
  the attributes), the message as ``ContactMessage``, then a routing task in the
  mailbox's queue with its skills, the customer's priority (VIP tiers get
  ``vip_priority`` more) and channel ``email`` (agents.yaml ``capacity.email``);
- a reply while the thread's contact is still open joins it (a ``ContactMessage``,
  which the desk of the agent holding it receives);
- robots and bounces (the loop guard) are recorded — arrival, message, ended with
  reason ``not_routed`` — and never queued or answered.

The agent's desk shows the whole thread (``view``: every message in and out of the
thread, with attachments and the send state of our replies). ``reply`` queues the
agent's answer through the outbound queue (callcenter/email/outbound.py) with the
thread's Message-ID chain and records it as an outgoing ``ContactMessage``; Close is
the desk's End (wrap-up with a disposition), Transfer the core's transfer to a queue.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, ClassVar

from callcenter import events as ev
from callcenter.channels.desk_task import DeskTaskChannel
from callcenter.contacts.contact import Contact, Phase
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import Invalid, InvalidState
from callcenter.email.config import EmailCfg
from callcenter.email.outbound import Outbound, quote, reply_subject
from callcenter.email.process import InboundEmail
from callcenter.email.store import EmailStore

log = logging.getLogger(__name__)

VIEW_CACHE = 5000  # threads kept for desk views (contacts open or in wrap-up)
CLOSED = (Phase.ENDED, Phase.WRAP_UP)


def arrived_event_id(contact_id: str) -> str:
    """ContactArrived of an email contact has a fixed id: arriving again after a restart
    (the contact re-queued) is the same event, kept once by the CRM."""
    return f"{contact_id}:arrived"


class EmailChannel(DeskTaskChannel):
    name: ClassVar[str] = "email"
    address_kind: ClassVar[str] = "email"

    def __init__(self, core: ContactCore, cfg: EmailCfg, store: EmailStore, outbound: Outbound) -> None:
        super().__init__(core)
        self.cfg = cfg
        self.store = store
        self.outbound = outbound
        # contact id → {thread_id, mailbox, subject, customer address, first_response_due, messages}
        self.threads: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()

    # ------------------------------------------------------------------ from processing

    def is_open(self, contact_id: str) -> bool:
        contact = self.core.contacts.get(contact_id)
        return contact is not None and contact.phase not in CLOSED

    async def deliver(self, mail: InboundEmail) -> None:
        p = mail.parsed
        message = self._message_view(mail)
        if mail.joins:
            contact = self.core.contacts.get(mail.contact_id)
            if contact is not None:
                shown = self._remember(contact.contact_id)["messages"]
                if all(m["id"] != mail.row_id for m in shown):
                    shown.append(message)
                self._publish_in(contact, mail)
                return
        contact = self.new_contact(
            ani=p.from_addr,
            service=mail.mailbox.service,
            dnis=mail.mailbox.address,
            contact_id=mail.contact_id,
        )
        first_due = mail.received_at + mail.mailbox.first_response_s
        attributes = {
            "subject": p.subject,
            "thread_id": mail.thread_id,
            "mailbox": mail.mailbox.address,
            "email_flags": p.flags,
            "first_response_due": first_due,
        }
        if p.junk:
            attributes["not_routed"] = p.junk
        arrived = ev.ContactArrived(
            contact_id=contact.contact_id,
            event_id=arrived_event_id(contact.contact_id),
            channel=self.name,
            ani=p.from_addr,
            dnis=mail.mailbox.address,
            service=mail.mailbox.service,
            from_addr=p.from_display or p.from_addr,
            to_addr=mail.mailbox.address,
            attributes=attributes,
            ts=mail.received_at or time.time(),
        )
        # a new thread has nothing before this message: no query
        thread = await self.store.thread(mail.thread_id) if mail.thread_id != mail.contact_id else []
        self.threads[contact.contact_id] = {
            "thread_id": mail.thread_id,
            "mailbox": mail.mailbox.address,
            "subject": p.subject,
            "customer": p.from_addr,
            "first_response_due": first_due,
            "first_response_at": None,
            "messages": [self._stored_view(m) for m in thread if m["id"] != mail.row_id] + [message],
        }
        self._trim()
        self.core.arrive(contact, arrived)
        self._publish_in(contact, mail)
        if p.junk:  # recorded, never routed or answered
            self.core.end(contact, f"not_routed:{p.junk}"[:64], "system")
            return
        await self.core.customer_context(contact, self.address_kind)
        if self.core.contacts.get(contact.contact_id) is not contact:
            return
        tier = str((contact.customer or {}).get("tier") or "")
        priority = mail.mailbox.priority + (
            mail.mailbox.vip_priority if tier in mail.mailbox.vip_tiers else 0
        )
        self.core.enqueue(contact, mail.mailbox.queue, priority, dict(mail.mailbox.skills))

    def _publish_in(self, contact: Contact, mail: InboundEmail) -> None:
        """The message as a ContactMessage whose event id is derived from the stored row, so
        delivering it again (after a crash, or a restart's re-queue) is kept once."""
        p = mail.parsed
        self.core.publish(
            ev.ContactMessage(
                contact_id=contact.contact_id,
                event_id=f"{contact.contact_id}:in:{mail.row_id}",
                ts=mail.received_at,
                direction="in",
                channel=self.name,
                message_id=p.message_id or mail.row_id,
                author=p.from_addr,
                text=p.text,
                attachments=[dict(a) for a in mail.attachments],
                meta={
                    "subject": p.subject,
                    "to": p.to,
                    "cc": p.cc,
                    "flags": p.flags,
                    "junk": p.junk,
                    "html_rendered": p.html_rendered,
                    "thread_id": mail.thread_id,
                    "row_id": mail.row_id,
                },
            )
        )

    # ------------------------------------------------------------------ the desk

    @staticmethod
    def _message_view(mail: InboundEmail) -> dict[str, Any]:
        p = mail.parsed
        return {
            "id": mail.row_id,
            "direction": "in",
            "message_id": p.message_id,
            "from": p.from_addr,
            "from_display": p.from_display,
            "to": p.to,
            "cc": p.cc,
            "subject": p.subject,
            "text": p.text,
            "ts": mail.received_at,
            "attachments": mail.attachments,
            "flags": p.flags,
            "junk": p.junk,
            "contact_id": mail.contact_id,
        }

    @staticmethod
    def _stored_view(row: dict[str, Any]) -> dict[str, Any]:
        s = row.get("summary") or {}
        return {
            "id": row["id"],
            "direction": row["direction"],
            "message_id": row["message_id"],
            "from": s.get("from", row.get("sender", "")),
            "from_display": s.get("from_display", ""),
            "to": s.get("to", []),
            "cc": s.get("cc", []),
            "subject": s.get("subject", ""),
            "text": s.get("text", ""),
            "ts": row["received_at"],
            "attachments": s.get("attachments", []),
            "flags": s.get("flags", []),
            "junk": s.get("junk", ""),
            "contact_id": row.get("contact_id"),
            "kind": row.get("outcome", ""),
            "author": s.get("author", ""),
        }

    def _remember(self, contact_id: str) -> dict[str, Any]:
        entry = self.threads.setdefault(contact_id, {"thread_id": contact_id, "messages": []})
        self.threads.move_to_end(contact_id)
        return entry

    def _trim(self) -> None:
        while len(self.threads) > VIEW_CACHE:
            self.threads.popitem(last=False)

    def view(self, contact: Contact) -> dict[str, Any]:
        """The desk panel's payload: the thread, oldest first, with our replies' send state."""
        entry = self.threads.get(contact.contact_id)
        if entry is None:
            return {"thread": [], "relay": self.outbound.relay}
        return {
            "thread_id": entry["thread_id"],
            "subject": entry.get("subject", ""),
            "customer": entry.get("customer", ""),
            "mailbox": entry.get("mailbox", ""),
            "first_response_due": entry.get("first_response_due"),
            "first_response_at": entry.get("first_response_at"),
            "relay": self.outbound.relay,
            "thread": entry["messages"],
        }

    async def reply(
        self, contact: Contact, agent_id: str, text: str, *, quote_last: bool = True
    ) -> dict[str, Any]:
        """The agent's answer: queued for the relay (or kept: no relay), recorded on the contact."""
        if contact.phase is not Phase.CONNECTED:
            raise InvalidState("accept the email before replying")
        entry = self.threads.get(contact.contact_id)
        if entry is None:
            raise InvalidState("the thread of this email is not loaded; reload the desk")
        text = (text or "").strip()
        if not text:
            raise Invalid("the reply is empty")
        inbound = [m for m in entry["messages"] if m["direction"] == "in" and not m.get("junk")]
        last = inbound[-1] if inbound else None
        to = entry.get("customer") or (last or {}).get("from") or contact.ani
        if not to:
            raise InvalidState("the customer's address is unknown: cannot reply")
        if quote_last and last is not None:
            when = time.strftime("%a, %d %b %Y %H:%M", time.gmtime(last["ts"]))
            text = f"{text}\n\n{quote(last['text'], last.get('from_display') or last['from'], when + ' UTC')}"
        refs = [m["message_id"] for m in entry["messages"] if m.get("message_id")]
        queued = await self.outbound.send(
            to=[to],
            subject=reply_subject(entry.get("subject", ""), entry["thread_id"]),
            text=text,
            contact_id=contact.contact_id,
            thread_id=entry["thread_id"],
            mailbox=entry.get("mailbox"),
            kind="reply",
            in_reply_to=(last or {}).get("message_id", ""),
            references=refs,
            author=agent_id,
        )
        sent = self._outgoing(contact, queued, text, to, agent_id, "reply")
        entry = self._remember(contact.contact_id)
        if entry.get("first_response_at") is None:
            entry["first_response_at"] = sent["ts"]
        return sent

    def acknowledged(self, mail: InboundEmail, queued: dict[str, Any], text: str) -> None:
        """Processing queued the auto-acknowledgement: on the thread and the record."""
        contact = self.core.contacts.get(mail.contact_id)
        if contact is not None:
            self._outgoing(contact, queued, text, mail.parsed.from_addr, "auto", "ack")

    def _outgoing(
        self, contact: Contact, queued: dict[str, Any], text: str, to: str, author: str, kind: str
    ) -> dict[str, Any]:
        """A message we queued: shown on the thread, recorded as an outgoing ContactMessage."""
        entry = self._remember(contact.contact_id)
        shown = {
            "id": queued["id"],
            "direction": "out",
            "message_id": queued["message_id"],
            "from": entry.get("mailbox", ""),
            "to": [to],
            "cc": [],
            "subject": queued["subject"],
            "text": text,
            "ts": time.time(),
            "attachments": [],
            "flags": [],
            "junk": "",
            "contact_id": contact.contact_id,
            "kind": kind,
            "author": author,
            "state": queued["state"],
        }
        entry["messages"].append(shown)
        not_sent = "" if queued["state"] == "pending" else "not sent: no relay"
        self.message(
            contact,
            direction="out",
            message_id=queued["message_id"],
            author=author,
            text=text,
            meta={
                "subject": queued["subject"],
                "to": [to],
                "kind": kind,
                "state": queued["state"],
                "outbound_id": queued["id"],
                "not_sent": not_sent,
            },
        )
        return shown

    async def refresh_states(self, contact: Contact) -> dict[str, Any]:
        """Our replies' send state as the outbound queue has it now (sent, retrying, dead, no relay)."""
        entry = self.threads.get(contact.contact_id)
        if entry is None:
            return self.view(contact)
        states = await self.store.outbound_state([entry["thread_id"]])
        for m in entry["messages"]:
            if m["direction"] == "out" and m["message_id"] in states:
                st = states[m["message_id"]]
                m["state"], m["last_error"] = st["state"], st["last_error"]
        return self.view(contact)

    def figures(self, now: float | None = None) -> list[dict[str, Any]]:
        """Per queue, the email contacts in the center now, for supervisors: waiting, offered,
        with an agent, the oldest wait, and first responses due within the hour or overdue."""
        now = time.time() if now is None else now

        def empty(queue: str) -> dict[str, Any]:
            return {
                "queue": queue,
                "waiting": 0,
                "offered": 0,
                "with_agent": 0,
                "oldest_wait_s": 0.0,
                "due_within_hour": 0,
                "overdue": 0,
            }

        # every mailbox's queue, also when empty (the board shows a quiet queue as 0)
        out = {mb.queue: empty(mb.queue) for mb in self.cfg.mailboxes}
        for contact in self.core.contacts.values():
            if contact.channel != self.name or contact.phase in CLOSED or not contact.queue:
                continue
            q = out.setdefault(contact.queue, empty(contact.queue))  # transferred to another queue
            if contact.phase is Phase.QUEUED:
                q["waiting"] += 1
                q["oldest_wait_s"] = max(q["oldest_wait_s"], now - (contact.queued_at or now))
            elif contact.phase is Phase.OFFERED:
                q["offered"] += 1
            elif contact.phase is Phase.CONNECTED:
                q["with_agent"] += 1
            entry = self.threads.get(contact.contact_id) or {}
            due = entry.get("first_response_due")
            if due is not None and entry.get("first_response_at") is None:
                if due < now:
                    q["overdue"] += 1
                elif due < now + 3600:
                    q["due_within_hour"] += 1
        return sorted(out.values(), key=lambda q: q["queue"])

    # ------------------------------------------------------------------ Channel protocol

    def no_agent(self, contact: Contact, why: str) -> None:
        """Routing gave up (queue full, maximum wait): an email must not be lost by that. It
        stays on its record as failed; the thread's next message opens it again."""
        log.warning("email %s: no agent (%s); the record keeps it as failed", contact.contact_id, why)
        super().no_agent(contact, why)

    def forget(self, contact: Contact) -> None:
        if contact.phase is Phase.ENDED:  # in wrap-up the desk still shows the thread
            self.threads.pop(contact.contact_id, None)
