"""HTTP for recordings: start/pause/resume a call's recording (the desk, or the API with a
supervisor's token), and playback.

Playback: a browser's ``<audio>`` cannot send our bearer token, and a token in a URL ends
up in logs and history. So an authorised user asks for a link (``POST
/api/recordings/{id}/link``: supervisors; the agents of the call too when
``agents_play_own``) and gets a URL signed with the key in ``<data_dir>/recording-link.key``
(wiring.py: it survives a restart) that expires in ``LINK_TTL_S``; ``GET
/recordings/{id}.ogg?exp=&sig=`` then serves the file with HTTP range requests (206,
``Accept-Ranges: bytes``), which is what lets the player seek.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from callcenter.recording.config import policy_for
from callcenter.recording.service import RecordingRefused, RecordingService
from callcenter.web.auth import Principal
from callcenter.web.channel_api import principal

log = logging.getLogger(__name__)
LINK_TTL_S = 300
Who = Annotated[Principal, Depends(principal)]


class RecordingAction(BaseModel):
    action: Literal["start", "pause", "resume"]


def _service(request: Request) -> RecordingService:
    svc: RecordingService | None = getattr(request.app.state, "recording", None)
    if svc is None:
        raise HTTPException(404, "call recording is not configured (recording.yaml)")
    return svc


def sign(key: bytes, rec_id: str, exp: int) -> str:
    return hmac.new(key, f"{rec_id}:{exp}".encode(), hashlib.sha256).hexdigest()


def make_router() -> APIRouter:
    router = APIRouter()

    @router.get("/api/contacts/{contact_id}/recording")
    async def recording_state(contact_id: str, request: Request, who: Who) -> dict[str, Any]:
        """The call's recording and its policy ("never" too when nothing is configured, so a
        desk asks without an error and shows nothing). A contact that is not (or no longer)
        one of the caller's live calls gets the same empty answer, ``live: false``, not a 404:
        a desk asking just as the call ends is not an error, and the answer tells nothing."""
        contact = _controlled(request, who, contact_id)
        if contact is None:
            return {"recording": False, "policy": "never", "live": False}
        svc: RecordingService | None = getattr(request.app.state, "recording", None)
        if svc is None:
            return {"recording": False, "policy": "never"}
        return _state(svc, contact)

    @router.post("/api/contacts/{contact_id}/recording")
    async def recording_action(contact_id: str, body: RecordingAction, request: Request,
                               who: Who) -> dict[str, Any]:  # fmt: skip
        svc = _service(request)
        contact = _may_control(request, who, contact_id)
        by = who.subject if who.role == "agent" else f"api:{who.subject}"
        try:
            if body.action == "start":
                svc.start(contact_id, contact.service, contact.queue)
            else:
                svc.pause(contact_id, body.action == "pause", by)
        except RecordingRefused as exc:
            raise HTTPException(409, str(exc)) from None
        log.info("recording %s of contact %s by %s", body.action, contact_id, by)
        return _state(svc, contact)

    @router.post("/api/recordings/{rec_id}/link")
    async def playback_link(rec_id: str, request: Request, who: Who) -> dict[str, Any]:
        svc = _service(request)
        entry = svc.entry(rec_id)
        if entry is None:
            raise HTTPException(404, "no such recording")
        allowed = who.role == "supervisor" or (
            svc.cfg.agents_play_own and who.role == "agent" and who.subject in entry.get("agents", [])
        )
        if not allowed:
            log.warning("playback of recording %s refused to %s %s", rec_id, who.role, who.subject)
            raise HTTPException(403, "not allowed to play this recording")
        exp = int(time.time()) + LINK_TTL_S
        ext = "ogg" if entry.get("format") == "opus" else "wav"
        log.info("playback link for recording %s given to %s %s", rec_id, who.role, who.subject)
        url = f"/recordings/{rec_id}.{ext}?exp={exp}&sig={sign(svc.link_key, rec_id, exp)}"
        return {"url": url, "expires": exp, "duration_s": entry.get("duration_s"),
                "channels": entry.get("channels")}  # fmt: skip

    @router.get("/recordings/{name}")
    async def playback(name: str, exp: int, sig: str, request: Request) -> FileResponse:
        svc = _service(request)
        rec_id = name.rsplit(".", 1)[0]
        good = hmac.compare_digest(sig, sign(svc.link_key, rec_id, exp))
        if not good or exp < time.time():
            raise HTTPException(403, "link expired or invalid")
        entry = svc.entry(rec_id)
        if entry is None or not Path(entry["file"]).is_file():
            raise HTTPException(404, "no such recording (purged?)")
        # FileResponse answers Range requests (206, Content-Range) itself
        return FileResponse(entry["file"], media_type=entry.get("content_type", "audio/ogg"),
                            headers={"Cache-Control": "private, no-store"})  # fmt: skip

    return router


def _state(svc: RecordingService, contact: Any) -> dict[str, Any]:
    return {**svc.state(contact.contact_id), "policy": policy_for(svc.cfg, contact.service, contact.queue)}


def _controlled(request: Request, who: Principal, contact_id: str) -> Any:
    """The live contact if ``who`` controls it (an agent the calls they hold, a supervisor
    any live call), else None."""
    core = request.app.state.backend.ready
    contact = core.contacts.get(contact_id)
    if contact is None or (who.role == "agent" and contact not in core.live_contacts(who.subject)):
        return None
    return contact


def _may_control(request: Request, who: Principal, contact_id: str) -> Any:
    contact = _controlled(request, who, contact_id)
    if contact is None:  # the same answer either way: it tells nothing of other agents' calls
        raise HTTPException(404, f"no live contact of yours {contact_id!r}")
    return contact
