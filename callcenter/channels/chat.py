"""Web chat and web forms on the contact core: two desk-accepted channels.

``ChatChannel`` ("chat") carries a live chat from the widget (callcenter/webchat/): the chat
arrives when the pre-chat form is sent and stays in self-service (FAQ, order status) until the
customer asks for a person; then it queues like any contact and the agent takes it on the desk.
Every line — customer, assistant, agent — is a ``ContactMessage``, so the interaction record
holds the transcript with who said what and when, and the desk of the agent holding the chat
gets each line as it is said.

``WebFormChannel`` ("webform") carries a web form or the widget's offline message: one
interaction with the fields, queued for an agent to read and answer.

Both use routing's ``web`` capacity (agents.yaml ``capacity.web``): an agent holds as many
chats and forms at once as that says, and the routing profile's exclusive channels decide
whether a call blocks them (the demo: a call takes the whole agent).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from callcenter import events as ev
from callcenter.channels.desk_task import DeskTaskChannel
from callcenter.contacts.contact import WAITING, Contact, Offer, Phase
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import InvalidState, NotFound
from routing.router import RoutingError

if TYPE_CHECKING:
    from callcenter.web.hub import Hub
    from callcenter.webchat.service import WebChat
    from callcenter.webchat.sessions import ChatSession, Line

log = logging.getLogger(__name__)

ROUTING_CHANNEL = "web"


class ChatChannel(DeskTaskChannel):
    name: ClassVar[str] = "chat"
    routing_channel: ClassVar[str | None] = ROUTING_CHANNEL

    def __init__(self, core: ContactCore, webchat: WebChat, hub: Hub) -> None:
        super().__init__(core)
        self.webchat = webchat
        self.hub = hub
        webchat.channel = self
        self.customer_typing_now: dict[str, bool] = {}

    # ------------------------------------------------------------------ from the customer

    def open_chat(self, session: ChatSession) -> str:
        """The pre-chat form was sent: the chat arrives and starts in self-service."""
        cfg = self.webchat.cfg
        topic = cfg.topics[session.topic]
        contact = self.new_contact(ani=session.email or session.phone, service=topic.service or cfg.service,
                                   dnis="web")  # fmt: skip
        attributes = {"web_id": session.id, "name": session.name, "email": session.email,
                      "phone": session.phone, "topic": session.topic, "identity": "unverified",
                      "prechat": session.prechat(), "origin": session.origin}  # fmt: skip
        self.core.arrive(contact, ev.ContactArrived(
            contact_id=contact.contact_id, channel=self.name, ani=session.phone, dnis="web",
            service=contact.service, from_addr=session.email, to_addr="web",
            attributes=attributes))  # fmt: skip
        self.core.move(contact, Phase.SELF_SERVICE)
        return contact.contact_id

    async def queue_chat(self, session: ChatSession, queue: str, priority: int,
                         skills: dict[str, int]) -> None:  # fmt: skip
        """'Talk to a person': the chat enters ``queue``, its customer looked up for the screen-pop."""
        contact = self._contact(session.contact_id)
        # The screen-pop's path: what self-service did (faq:returns, order:ORD-1001).
        contact.ivr_path = tuple(f"{s['kind']}:{s['ref']}" if s["ref"] else s["kind"]
                                 for s in session.selfservice)  # fmt: skip
        contact.ivr_data = {"prechat": session.prechat(), "verified": session.verified,
                            "selfservice": [s["asked"] for s in session.selfservice]}  # fmt: skip
        await self.core.customer_context(contact, "email" if session.email else "phone")
        if self.core.contacts.get(contact.contact_id) is contact and contact.phase is Phase.SELF_SERVICE:
            self.core.enqueue(contact, queue, priority, skills)

    def line(self, session: ChatSession, line: Line) -> None:
        """One line of the chat into the record (and to the agent's desk)."""
        contact = self.core.contacts.get(session.contact_id or "")
        if contact is None:
            return
        direction = "in" if line.kind == "customer" else "out"
        author = {"customer": session.name, "agent": session.agent_id or ""}.get(line.kind, "assistant")
        self.message(contact, direction=direction, message_id=f"{session.id}:{line.seq}", author=author,
                     text=line.text, meta={"from": line.kind, "seq": line.seq, "name": line.author,
                                           **line.meta})  # fmt: skip
        if line.kind == "customer":
            self.customer_typing_now.pop(contact.contact_id, None)

    def customer_typing(self, contact_id: str, on: bool) -> None:
        contact = self.core.contacts.get(contact_id)
        if contact is None or contact.agent_id is None or contact.phase is not Phase.CONNECTED:
            return
        self.customer_typing_now[contact_id] = on
        self.hub.to_agent(contact.agent_id, {"type": "chat_typing", "contact_id": contact_id,
                                             "channel": self.name, "on": on})  # fmt: skip

    def customer_gone(self, contact_id: str, reason: str, by: str) -> None:
        """The customer ended the chat, or was gone longer than the grace period, or idle."""
        contact = self.core.contacts.get(contact_id)
        if contact is None:
            return
        if contact.phase in (Phase.ARRIVED, Phase.SELF_SERVICE):
            self.core.end(contact, reason, by)
        elif contact.phase is Phase.CONNECTED:
            self.core.end_connected(contact, by, reason)
        elif contact.phase in WAITING or contact.phase is Phase.OFFERED:
            self.core.abandon(contact, reason, by)

    def transcript_requested(self, session: ChatSession, address: str) -> None:
        """Kept on the record; the email channel sends it when the chat ends (docs/webchat.md)."""
        contact = self.core.contacts.get(session.contact_id or "")
        if contact is not None:
            self.message(contact, direction="in", message_id=f"{session.id}:transcript",
                         author=session.name, text="",
                         meta={"from": "request", "transcript_to": address})  # fmt: skip

    def transcript_result(self, session: ChatSession, state: str, email_id: Any) -> None:
        """What became of the transcript email (pending, no_relay, unavailable, failed), on the
        record even after the chat ended (the event joins the ended interaction)."""
        if not session.contact_id:
            return
        self.core.publish(ev.ContactMessage(
            contact_id=session.contact_id, direction="out", channel=self.name,
            message_id=f"{session.id}:transcript-mail", author="web chat", text="",
            meta={"from": "transcript", "to": session.transcript_to, "state": state,
                  "email_id": email_id}))  # fmt: skip

    # ------------------------------------------------------------------ routing figures

    def staffed(self, queue: str) -> int:
        return self.core.router.queue_stats(queue, ROUTING_CHANNEL).staffed

    def queue_info(self, contact_id: str) -> tuple[int | None, float | None]:
        """Place in the queue (1 = next) and the expected wait in seconds (None: unknown)."""
        router = self.core.router
        try:
            position = router.position(contact_id)
            wait = router.estimated_wait(task_id=contact_id)
        except RoutingError:
            return None, None
        return position, (None if wait == float("inf") else wait)

    # ------------------------------------------------------------------ from the agent

    def held(self, contact_id: str, agent_id: str) -> Contact:
        contact = self.core.contacts.get(contact_id)
        if contact is None or contact.channel != self.name:
            raise NotFound(f"no chat {contact_id!r}")
        if contact.agent_id != agent_id or contact.phase is not Phase.CONNECTED:
            raise InvalidState("this chat is not connected to you")
        return contact

    def agent_says(self, contact_id: str, agent_id: str, text: str) -> dict[str, Any]:
        self.held(contact_id, agent_id)
        session = self.webchat.session_of(contact_id)
        if session is None:
            raise NotFound("the chat session is gone")
        line = self.webchat.agent_line(contact_id, agent_id, text)
        seq = line["seq"]
        self.line(session, session.lines[seq - 1])
        return line

    def agent_typing(self, contact_id: str, agent_id: str, on: bool) -> None:
        self.held(contact_id, agent_id)
        self.webchat.agent_typing(contact_id, on)

    async def accept_from_desk(self, contact: Contact, offer: Offer) -> None:
        await super().accept_from_desk(contact, offer)
        self.webchat.agent_joined(contact.contact_id, offer.agent_id)

    def view(self, contact: Contact) -> dict[str, Any]:
        session = self.webchat.session_of(contact.contact_id)
        if session is None:
            return {}
        return {
            "session": session.id,
            "prechat": session.prechat(),
            "verified": session.verified,
            "selfservice": list(session.selfservice),
            "transcript": [line.message() for line in session.lines if line.kind != "system"],
            "customer_state": session.state,
            "customer_connected": session.socket is not None,
            "customer_typing": self.customer_typing_now.get(contact.contact_id, False),
            "canned": [c.model_dump() for c in self.webchat.cfg.canned],
        }

    def release_agent(self, contact: Contact) -> None:
        """Transferred: the customer is told and waits for the next agent."""
        self.customer_typing_now.pop(contact.contact_id, None)
        self.webchat.agent_left(contact.contact_id)

    def hangup(self, contact: Contact) -> None:
        super().hangup(contact)
        self.webchat.closed(contact.contact_id, "agent")

    def no_agent(self, contact: Contact, why: str) -> None:
        self.webchat.closed(contact.contact_id, "system")
        super().no_agent(contact, why)

    def forget(self, contact: Contact) -> None:
        self.customer_typing_now.pop(contact.contact_id, None)
        self.webchat.closed(contact.contact_id, "system")

    def _contact(self, contact_id: str | None) -> Contact:
        contact = self.core.contacts.get(contact_id or "")
        if contact is None:
            raise NotFound(f"no chat {contact_id!r}")
        return contact


class WebFormChannel(DeskTaskChannel):
    """A web form or an offline message: the fields, queued for an agent."""

    name: ClassVar[str] = "webform"
    routing_channel: ClassVar[str | None] = ROUTING_CHANNEL

    def __init__(self, core: ContactCore, default_service: str) -> None:
        super().__init__(core)
        self.default_service = default_service
        self.forms: dict[str, dict[str, Any]] = {}  # contact id → what the desk shows

    async def submit(self, form: str, fields: dict[str, str], queue: str, priority: int, *, ip: str = "",
                     extra: dict[str, str] | None = None, service: str | None = None,
                     web_id: str = "") -> str:  # fmt: skip
        email, phone = fields.get("email", ""), fields.get("phone", "")
        contact = self.new_contact(ani=email or phone, service=service or self.default_service, dnis="web")
        attributes: dict[str, Any] = {"form": form, "fields": fields, "identity": "unverified", "ip": ip}
        if web_id:
            attributes["web_id"] = web_id
        if extra:
            attributes["extra"] = extra  # fields the form does not declare: kept, and flagged
            attributes["flags"] = ["undeclared_fields"]
        for key in ("name", "email", "phone"):
            if fields.get(key):
                attributes[key] = fields[key]
        self.forms[contact.contact_id] = {"form": form, "fields": fields, "extra": extra or {}}
        arrived = ev.ContactArrived(contact_id=contact.contact_id, channel=self.name, ani=phone, dnis="web",
                                    service=contact.service, from_addr=email, to_addr=f"form:{form}",
                                    attributes=attributes)  # fmt: skip
        text = fields.get("message") or "\n".join(f"{k}: {v}" for k, v in fields.items())
        self.core.arrive(contact, arrived)
        self.message(contact, direction="in", message_id=f"form:{contact.contact_id}",
                     author=fields.get("name") or email or phone, text=text,
                     meta={"form": form, "fields": fields,
                           **({"extra": extra} if extra else {})})  # fmt: skip
        self.core.move(contact, Phase.SELF_SERVICE)  # the form was the self-service part
        await self.core.customer_context(contact, "email" if email else "phone")
        if self.core.contacts.get(contact.contact_id) is contact:
            self.core.enqueue(contact, queue, priority, {})
        return contact.contact_id

    def view(self, contact: Contact) -> dict[str, Any]:
        return dict(self.forms.get(contact.contact_id, {}))

    def forget(self, contact: Contact) -> None:
        self.forms.pop(contact.contact_id, None)
