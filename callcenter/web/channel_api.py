"""The hook through which a channel adds its own HTTP endpoints and desk panel.

Voice needs none; email, web chat and fax each have endpoints of their own (reply to an
email, post a chat line, a fax page's image) and a panel on the desk. A channel's wiring
calls :func:`include_channel` with a FastAPI ``APIRouter`` and its desk script; the
desk page loads every registered script (``GET /desk/channels.json``), so adding a
channel never edits desk.html. Routes authenticate the agent with :data:`AgentId` and
reach the contact with :data:`HeldContact` (only the agent's own contacts: offered,
connected or in their wrap-up; 404 for any other)::

    router = APIRouter(tags=["email"])

    @router.post("/api/email/{contact_id}/reply")
    async def reply(contact: HeldContact, agent_id: AgentId, body: ReplyIn) -> dict: ...

    include_channel(app, "email", router=router, script=PAGES_DIR / "desk_email.js")

The core's refusals (callcenter.contacts.errors) raised in a channel route get the same
HTTP answers as everywhere else (404, 409, 422, 503).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callcenter.contacts.contact import Contact
from callcenter.contacts.errors import NotFound
from callcenter.web.auth import Authenticator, Principal

if TYPE_CHECKING:
    from callcenter.contacts.core import ContactCore

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)
SCRIPT_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def principal(
    request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The signed-in user of a request (401 without a valid token)."""
    auth: Authenticator = request.app.state.auth
    p = auth.verify(cred.credentials) if cred else None
    if p is None:
        raise HTTPException(401, "missing or invalid token", {"WWW-Authenticate": "Bearer"})
    return p


def _agent_id(p: Annotated[Principal, Depends(principal)]) -> str:
    if p.role != "agent":
        raise HTTPException(403, "agent role required")
    return p.subject


AgentId = Annotated[str, Depends(_agent_id)]


def contact_core(request: Request) -> ContactCore:
    """The running contact core (503 while the server is still starting)."""
    core: ContactCore = request.app.state.backend.ready
    return core


def _held_contact(contact_id: str, agent_id: AgentId, request: Request) -> Contact:
    core = contact_core(request)
    contact = core.contacts.get(contact_id)
    if contact is not None and contact in core.live_contacts(agent_id):
        return contact
    for wrapping, _draft in core.wrap_up_contacts(agent_id):
        if wrapping.contact_id == contact_id:
            return wrapping
    raise NotFound(f"you hold no contact {contact_id!r}")


HeldContact = Annotated[Contact, Depends(_held_contact)]


def include_channel(
    app: FastAPI, name: str, *, router: APIRouter | None = None, script: Path | None = None
) -> None:
    """Add a channel's routes to the app and its panel script to the desk. Call it before
    the server starts; a second call for the same name replaces the script."""
    if router is not None:
        app.include_router(router)
    if script is not None:
        if not Path(script).is_file():  # the desk still works: the channel's items get a plain view
            log.warning("desk script of channel %r not found: %s; its contacts show without a panel",
                        name, script)  # fmt: skip
            return
        desk_scripts(app)[name] = Path(script)


def desk_scripts(app: FastAPI) -> dict[str, Path]:
    scripts: dict[str, Path] | None = getattr(app.state, "desk_channel_scripts", None)
    if scripts is None:
        scripts = app.state.desk_channel_scripts = {}
    return scripts


def mount_channel_scripts(app: FastAPI) -> None:
    """``GET /desk/channels.json`` (the scripts the desk loads) and ``/desk/channels/NAME.js``."""

    @app.get("/desk/channels.json", include_in_schema=False)
    async def channel_scripts() -> dict[str, Any]:
        return {"channels": [{"name": n, "script": f"/desk/channels/{n}.js"} for n in desk_scripts(app)]}

    @app.get("/desk/channels/{name}.js", include_in_schema=False)
    async def channel_script(name: str) -> FileResponse:
        path = desk_scripts(app).get(name)
        if path is None:
            raise HTTPException(404, f"no desk script for channel {name!r}")
        return FileResponse(path, media_type="text/javascript; charset=utf-8", headers=SCRIPT_HEADERS)
