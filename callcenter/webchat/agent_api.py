"""The agent's chat endpoints (through the core's channel hook, callcenter/web/channel_api.py).

``POST /api/chat/{id}/messages`` says a line to the customer, ``POST /api/chat/{id}/typing``
shows the customer that the agent is typing. Only the agent holding the chat, connected, may
(404 for another agent's chat, 409 before Accept or after the end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from callcenter.web.channel_api import AgentId, HeldContact

if TYPE_CHECKING:
    from callcenter.channels.chat import ChatChannel


class LineIn(BaseModel):
    text: str = Field(min_length=1, max_length=8000)


class TypingIn(BaseModel):
    on: bool


def router(channel: ChatChannel) -> APIRouter:
    r = APIRouter(tags=["chat"])

    @r.post("/api/chat/{contact_id}/messages")
    async def say(contact: HeldContact, agent_id: AgentId, body: LineIn) -> dict[str, Any]:
        """A line to the customer; the answer is the line as the transcript keeps it."""
        return channel.agent_says(contact.contact_id, agent_id, body.text.strip() or body.text)

    @r.post("/api/chat/{contact_id}/typing")
    async def typing(contact: HeldContact, agent_id: AgentId, body: TypingIn) -> dict[str, bool]:
        channel.agent_typing(contact.contact_id, agent_id, body.on)
        return {"on": body.on}

    @r.get("/api/chat/canned")
    async def canned(agent_id: AgentId) -> list[dict[str, Any]]:
        """The canned responses from webchat.yaml."""
        return [c.model_dump() for c in channel.webchat.cfg.canned]

    return r
