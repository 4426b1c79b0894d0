"""HTTP for monitor sessions (supervisor token): start one on a connected call, switch its
mode, stop it, list them, and the connected calls that can be monitored. Refusals (not a
supervisor, no phone, not a connected call) are answered with their reason and logged by
the service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from callcenter.monitoring.service import MonitorRefused, MonitorService
from callcenter.web.auth import Principal
from callcenter.web.channel_api import principal

Who = Annotated[Principal, Depends(principal)]
Mode = Literal["listen", "whisper", "barge"]


class StartIn(BaseModel):
    contact_id: str
    mode: Mode = "listen"


class ModeIn(BaseModel):
    mode: Mode


def _svc(request: Request) -> MonitorService:
    svc: MonitorService | None = getattr(request.app.state, "monitoring", None)
    if svc is None:
        raise HTTPException(503, "monitoring starts with the voice channel")
    return svc


def make_router() -> APIRouter:
    router = APIRouter()

    @router.post("/api/monitor", status_code=202)
    async def start(body: StartIn, request: Request, who: Who) -> dict[str, Any]:
        try:
            s = await _svc(request).start(who.subject, who.role, body.contact_id, body.mode)
        except MonitorRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return s.view()

    @router.put("/api/monitor/{session_id}")
    async def mode(session_id: str, body: ModeIn, request: Request, who: Who) -> dict[str, Any]:
        if who.role != "supervisor":
            raise HTTPException(403, "only supervisors may monitor calls")
        try:
            return _svc(request).set_mode(session_id, who.subject, body.mode).view()
        except MonitorRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @router.delete("/api/monitor/{session_id}")
    async def stop(session_id: str, request: Request, who: Who) -> dict[str, Any]:
        svc = _svc(request)
        if who.role != "supervisor":
            raise HTTPException(403, "only supervisors may monitor calls")
        try:
            svc.owned(session_id, who.subject)
        except MonitorRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        svc.stop(session_id, f"stopped by {who.subject}")
        return {"stopped": session_id}

    @router.get("/api/monitor/calls")
    async def calls(request: Request, who: Who) -> list[dict[str, Any]]:
        """Connected calls, each with its monitor session or null (the supervisor page)."""
        if who.role != "supervisor":
            raise HTTPException(403, "only supervisors may monitor calls")
        return _svc(request).calls()

    @router.get("/api/monitor")
    async def sessions(request: Request, who: Who) -> list[dict[str, Any]]:
        if who.role != "supervisor":
            raise HTTPException(403, "only supervisors may monitor calls")
        return _svc(request).list()

    return router
