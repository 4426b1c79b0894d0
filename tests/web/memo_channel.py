"""A test-only desk channel ("memo") on the real server: a DeskTaskChannel with a view, one
channel route (POST /api/memo/{id}/reply) and a desk panel script (desk_memo.js), wired
through callcenter.web.channel_api exactly as a real channel is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from callcenter.channels.desk_task import DeskTaskChannel
from callcenter.contacts.contact import Contact
from callcenter.events import new_id
from callcenter.web.channel_api import AgentId, HeldContact, include_channel

SCRIPT = Path(__file__).with_name("desk_memo.js")


class Memo(DeskTaskChannel):
    name = "memo"
    routing_channel = "email"  # agents' email slots (routing knows voice, email, web, fax)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.lines: dict[str, list[str]] = {}

    def view(self, contact: Contact) -> dict[str, Any]:
        return {"text": f"memo from {contact.ani}", "lines": self.lines.get(contact.contact_id, [])}

    def say(self, contact: Contact, direction: str, author: str, text: str) -> None:
        self.lines.setdefault(contact.contact_id, []).append(f"{author}: {text}")
        self.message(contact, direction=direction, message_id=new_id(), author=author, text=text)

    async def arrive(self, queue: str, text: str, ani: str = "grace@example.com") -> Contact:
        contact = self.new_contact(ani=ani, service="support")
        await self.receive(contact, queue)
        self.say(contact, "in", ani, text)
        return contact


class ReplyIn(BaseModel):
    text: str


def wire_memo(center: Any) -> Memo:
    memo = Memo(center.core)
    router = APIRouter(tags=["memo"])

    @router.post("/api/memo/{contact_id}/reply")
    async def reply(contact: HeldContact, agent_id: AgentId, body: ReplyIn) -> dict[str, str]:
        memo.say(contact, "out", agent_id, body.text)
        return {"status": "sent"}

    include_channel(center.app, "memo", router=router, script=SCRIPT)
    return memo


def memo_queues(queues: dict[str, Any]) -> None:
    """Short rings for calls, a long offer for memos, and voice not exclusive, so one agent
    holds memos and a call at once."""
    from tests.support.rig import short_ring

    short_ring(queues)
    queues["queues"]["sales"]["reservation_timeout_s"] = 120
    queues.setdefault("settings", {})["exclusive_channels"] = []
