"""HTTP for the desk's call controls beyond hold and blind transfer: mute, and consultation
(warm transfer) with its three-way conference (callcenter/channels/voice_consult.py).

Agent token only; every route names the contact (``/api/contacts/{id}/...``), and mute has
the agent-level form the desk's buttons use for the call (``/api/agent/mute``). Refusals are
the contact core's domain errors, answered by the app's handler (404/409/422)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from callcenter.channels.voice_consult import Consults
from callcenter.contacts.core import ContactCore
from callcenter.web.auth import Principal
from callcenter.web.channel_api import principal

Who = Annotated[Principal, Depends(principal)]
ContactId = Annotated[str, Path(min_length=1, max_length=64)]


class MuteIn(BaseModel):
    muted: bool


class ConsultIn(BaseModel):
    target: str = Field(min_length=1, max_length=200,
                        description="agent:ID, queue:NAME (who is free there), number:+E164, or a number")


def _agent(p: Principal) -> str:
    if p.role != "agent":
        raise HTTPException(403, "agents only")
    return p.subject


def _core(request: Request) -> ContactCore:
    core: ContactCore = request.app.state.backend.ready
    return core


def _consults(request: Request) -> Consults:
    voice = _core(request).channels.get("voice")
    consults: Consults | None = getattr(voice, "consults", None)
    if consults is None:
        raise HTTPException(503, "consultations start with the voice channel")
    return consults


def make_router() -> APIRouter:
    router = APIRouter(tags=["contacts"])

    @router.post("/api/contacts/{contact_id}/mute")
    async def mute(contact_id: ContactId, body: MuteIn, request: Request, p: Who) -> dict[str, Any]:
        """Mute: the agent's audio toward the customer (and a conference) is silence at the server."""
        _core(request).set_mute(_agent(p), body.muted, contact_id)
        return {"muted": body.muted, "contact_id": contact_id}

    @router.post("/api/agent/mute", tags=["agent"])
    async def agent_mute(body: MuteIn, request: Request, p: Who) -> dict[str, Any]:
        """Mute on the agent's call (their voice contact)."""
        _core(request).set_mute(_agent(p), body.muted)
        return {"muted": body.muted}

    @router.post("/api/contacts/{contact_id}/consult", status_code=202)
    async def consult(contact_id: ContactId, body: ConsultIn, request: Request, p: Who) -> dict[str, Any]:
        """Consult an agent, a queue's free agent or a number: the customer is held, the target
        called; the desk is told (``consult`` messages) when they answer, decline or hang up."""
        c = await _consults(request).start(_agent(p), contact_id, body.target.strip())
        return {"contact_id": contact_id, "target": c.target, "label": c.label, "state": c.state}

    @router.get("/api/contacts/{contact_id}/consult")
    async def consult_state(contact_id: ContactId, request: Request, p: Who) -> dict[str, Any]:
        """The consultation on the call (null: none) and the agent's mute, for a desk reloaded mid-call."""
        consults = _consults(request)
        contact = _core(request).held_contact(_agent(p), contact_id)
        return {"contact_id": contact_id, "consult": consults.view(contact_id), "muted": contact.muted}

    @router.post("/api/contacts/{contact_id}/consult/complete")
    async def complete(contact_id: ContactId, request: Request, p: Who) -> dict[str, Any]:
        """Hand the customer to the consulted party (from a conference: the agent leaves)."""
        await _consults(request).complete(_agent(p), contact_id)
        return {"contact_id": contact_id, "status": "completed"}

    @router.post("/api/contacts/{contact_id}/consult/conference")
    async def conference(contact_id: ContactId, request: Request, p: Who) -> dict[str, Any]:
        """Join customer, agent and consulted party: each hears the other two."""
        c = await _consults(request).conference(_agent(p), contact_id)
        return {"contact_id": contact_id, "state": c.state}

    @router.post("/api/contacts/{contact_id}/consult/cancel")
    async def cancel(contact_id: ContactId, request: Request, p: Who) -> dict[str, Any]:
        """Hang up on the consulted party (or drop them from the conference): back to the customer."""
        await _consults(request).cancel(_agent(p), contact_id)
        return {"contact_id": contact_id, "status": "cancelled"}

    return router
