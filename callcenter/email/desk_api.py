"""The agent's email endpoints (through the core's channel hook, callcenter/web/channel_api.py).

``POST /api/email/{id}/reply`` answers the customer (quoting their last message unless
``quote`` is false); ``GET /api/email/{id}/thread`` is the thread with our replies' send
state now; ``GET /api/email/{id}/attachments/{sha256}`` downloads an attachment of the
thread (always as a download: never rendered in the desk's origin). Only the agent holding
the email may (404 for anyone else's, 409 before Accept). ``GET /api/email/queues`` gives
supervisors the email figures per queue (waiting, oldest, first responses due and overdue).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from callcenter.web.auth import Principal
from callcenter.web.channel_api import AgentId, HeldContact, principal

if TYPE_CHECKING:
    from callcenter.channels.email import EmailChannel


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)
    quote: bool = True


def router(channel: EmailChannel, files_dir: Path) -> APIRouter:
    r = APIRouter(tags=["email"])

    @r.post("/api/email/{contact_id}/reply")
    async def reply(contact: HeldContact, agent_id: AgentId, body: ReplyIn) -> dict[str, Any]:
        """Queue the reply (sent by the relay; without one kept as "not sent: no relay")."""
        return await channel.reply(contact, agent_id, body.text, quote_last=body.quote)

    @r.get("/api/email/{contact_id}/thread")
    async def thread(contact: HeldContact, agent_id: AgentId) -> dict[str, Any]:
        return await channel.refresh_states(contact)

    @r.get("/api/email/{contact_id}/attachments/{sha256}")
    async def attachment(contact: HeldContact, agent_id: AgentId, sha256: str) -> FileResponse:
        for message in channel.view(contact).get("thread", []):
            for att in message.get("attachments", []):
                if att.get("sha256") == sha256:
                    path = files_dir / att["path"]
                    if not path.is_file():
                        raise HTTPException(410, "the attachment's file is gone from the file store")
                    return FileResponse(
                        path,
                        media_type="application/octet-stream",
                        filename=att.get("name") or sha256,
                        headers={"X-Content-Type-Options": "nosniff"},
                    )
        raise HTTPException(404, "no such attachment in this thread")

    @r.get("/api/email/queues")
    async def queues(p: Annotated[Principal, Depends(principal)]) -> list[dict[str, Any]]:
        """Supervisors: per queue, emails waiting, offered, with an agent, the oldest wait,
        first responses due within the hour and overdue (routing's queue figures count the
        same contacts together with the calls)."""
        if p.role != "supervisor":
            raise HTTPException(403, "supervisor role required")
        return channel.figures()

    return r
