"""The CTI HTTP app (FastAPI on uvicorn, same process and loop as the telephony).

FastAPI was picked over bare Starlette because it generates the OpenAPI
document (``/openapi.json``, browsable at ``/docs``) from the typed routes the
issue asks to document; it is Starlette underneath, so nothing else changes.

Access rules: an agent sees and acts on only their own state and contacts; a
supervisor sees everything and may change any agent's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from callcenter.contacts.callback_worklist import pending_callbacks, take_callback
from callcenter.contacts.errors import ContactError
from callcenter.privacy import Reader
from callcenter.web.api_docs import mount_api_docs
from callcenter.web.auth import Authenticator, LoginRefused, Principal
from callcenter.web.backend import CtiBackend, http_status
from callcenter.web.call_controls_api import make_router as call_controls_router
from callcenter.web.channel_api import mount_channel_scripts, principal
from callcenter.web.customer_models import CustomerLookupOut
from callcenter.web.customers_api import router as customers_router
from callcenter.web.hub import Connection
from callcenter.web.interactions_api import router as interactions_router
from callcenter.web.limits import BodyLimit
from callcenter.web.pages import mount_pages
from callcenter.web.reports_api import router as reports_router
from callcenter.web.tokens import WS_PROTOCOL, redact_server_logs
from callcenter.whatif import finite


class LoginIn(BaseModel):
    username: str
    password: str


class LoginOut(BaseModel):
    token: str
    role: Literal["agent", "supervisor"]
    subject: str
    expires_in: int  # seconds; renew before then with POST /api/refresh


class RefreshOut(BaseModel):
    token: str
    expires_in: int


class StateIn(BaseModel):
    state: Literal["available", "not_ready", "offline"]
    reason: str = Field("", max_length=64)


class WrapUpIn(BaseModel):
    disposition: str = Field(min_length=1, max_length=64)
    notes: str = Field("", max_length=10_000)
    contact_id: str | None = Field(None, max_length=64)  # the form's contact: refused if no longer in wrap-up


class WrapUpDraftIn(BaseModel):
    contact_id: str = Field(min_length=1, max_length=64)
    disposition: str = Field("", max_length=64)
    notes: str = Field("", max_length=10_000)


class TransferIn(BaseModel):
    target: str = Field(pattern=r"^(queue:[\w.-]+|agent:[\w.-]+|sip:.+|tel:\+?\d+)$")


class HoldIn(BaseModel):
    on_hold: bool


class DialIn(BaseModel):
    number: str | None = Field(None, pattern=r"^\+?[0-9 ()./-]{3,32}$")
    customer_id: str | None = Field(None, min_length=1, max_length=64)
    queue: str | None = Field(None, max_length=128)  # whose books it goes on; default: the agent's first


class ContactWrapUpIn(BaseModel):
    disposition: str = Field(min_length=1, max_length=64)
    notes: str = Field("", max_length=10_000)


class ContactDraftIn(BaseModel):
    disposition: str = Field("", max_length=64)
    notes: str = Field("", max_length=10_000)


ContactId = Annotated[str, Path(min_length=1, max_length=64)]


class DtmfIn(BaseModel):
    digits: str = Field(pattern=r"^[0-9*#]{1,32}$")  # a keypad's keys; 32 covers an account number + PIN


Who = Annotated[Principal, Depends(principal)]  # the token's user (channel_api.py: channels use it too)


def create_app(
    backend: CtiBackend, auth: Authenticator, *, body_limit: int = 65536, login_body_limit: int = 4096
) -> FastAPI:
    app = FastAPI(
        title="callcenter CTI API",
        version="1",
        docs_url=None,  # /docs is api_docs.py's, with Swagger UI served locally (no CDN)
        description="Agent desktop and supervisor monitor interface. Log in, then send the "
        "token as `Authorization: Bearer …` (REST) or as the WebSocket subprotocols "
        f"`{WS_PROTOCOL}, <token>` (`Sec-WebSocket-Protocol`); renew it with `POST /api/refresh` "
        "before `expires_in` runs out.",
    )
    app.state.auth = auth
    app.state.backend = backend  # channel routers reach the core through it (channel_api.py)
    redact_server_logs()  # no token in uvicorn's log lines, whatever a client sends
    live: dict[str, set[Connection]] = defaultdict(set)  # session id -> its open WebSockets
    # 413 before an oversized body is read (callcenter/web/limits.py); logins are tiny.
    app.add_middleware(BodyLimit, default=body_limit, routes={"/api/login": login_body_limit})

    @app.exception_handler(ContactError)
    async def _refused(_: Request, exc: ContactError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=http_status(exc))

    def agent_only(p: Principal) -> str:
        if p.role != "agent":
            raise HTTPException(403, "agent role required")
        return p.subject

    def supervisor_only(p: Principal) -> None:
        if p.role != "supervisor":
            raise HTTPException(403, "supervisor role required")

    # --- session -------------------------------------------------------------

    @app.exception_handler(LoginRefused)
    async def _throttled(_: Request, exc: LoginRefused) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after)})

    @app.post("/api/login", response_model=LoginOut, tags=["session"],
              responses={429: {"description": "Too many failed logins (see Retry-After)"}})
    async def login(body: LoginIn, request: Request) -> LoginOut:
        source = request.client.host if request.client else ""
        result = await auth.attempt(body.username, body.password, source)
        if result is None:
            raise HTTPException(401, "invalid username or password")
        token, expires_in = auth.tokens.issue(result.subject, result.role)
        if result.role == "agent":
            await backend.agent_login(result.subject)
        return LoginOut(token=token, role=result.role, subject=result.subject, expires_in=expires_in)

    @app.post("/api/refresh", response_model=RefreshOut, tags=["session"])
    async def refresh(p: Who) -> RefreshOut:
        renewed = auth.tokens.refresh(p)
        if renewed is None:
            raise HTTPException(401, "session ended; sign in again", {"WWW-Authenticate": "Bearer"})
        return RefreshOut(token=renewed[0], expires_in=renewed[1])

    @app.post("/api/logout", tags=["session"])
    async def logout(p: Who) -> dict[str, str]:
        auth.tokens.revoke(p)  # every token of this session is refused from now on
        for conn in live.pop(p.session, ()):
            conn.close()
        if p.role == "agent":
            await backend.agent_logout(p.subject)
        return {"status": "logged out"}

    # --- agent ---------------------------------------------------------------

    @app.get("/api/agent/me", tags=["agent"])
    async def me(p: Who) -> dict[str, Any]:
        return backend.agent_view(agent_only(p))

    @app.post("/api/agent/state", tags=["agent"])
    async def set_state(body: StateIn, p: Who) -> dict[str, Any]:
        agent_id = agent_only(p)
        await backend.set_agent_state(agent_id, body.state, body.reason, by=agent_id)
        return backend.agent_view(agent_id)

    @app.get("/api/agent/contact", tags=["agent"])
    async def contact(p: Who) -> dict[str, Any]:
        current = backend.current_contact(agent_only(p))
        if current is None:
            raise HTTPException(404, "no current contact")
        return current

    @app.post("/api/agent/wrapup", tags=["agent"])
    async def wrapup(body: WrapUpIn, p: Who) -> dict[str, str]:
        await backend.wrap_up(agent_only(p), body.disposition, body.notes, body.contact_id)
        return {"status": "wrap-up submitted"}

    @app.put("/api/agent/wrapup/draft", tags=["agent"])
    async def wrapup_draft(body: WrapUpDraftIn, p: Who) -> dict[str, str]:
        """Autosave of the wrap-up form; if wrap-up time runs out, the record gets this draft."""
        await backend.save_wrap_up_draft(agent_only(p), body.contact_id, body.disposition, body.notes)
        return {"status": "draft saved", "contact_id": body.contact_id}

    @app.get("/api/agent/today", tags=["agent"])
    async def agent_today(p: Who) -> dict[str, Any]:
        """The agent's own figures since midnight UTC, from the records (the desk's Today card)."""
        return await backend.agent_today(agent_only(p))

    @app.get("/api/agent/transfer-targets", tags=["agent"])
    async def transfer_targets(p: Who) -> dict[str, Any]:
        """The desk's transfer picker: all queues, the other agents with their state now."""
        return backend.transfer_targets(agent_only(p))

    @app.post("/api/agent/transfer", tags=["agent"])
    async def transfer(body: TransferIn, p: Who) -> dict[str, str]:
        await backend.transfer(agent_only(p), body.target)
        return {"status": "transferring", "target": body.target}

    @app.post("/api/agent/hold", tags=["agent"])
    async def hold(body: HoldIn, p: Who) -> dict[str, Any]:
        await backend.hold(agent_only(p), body.on_hold)
        return {"on_hold": body.on_hold}

    @app.post("/api/agent/hangup", tags=["agent"])
    async def hangup(p: Who) -> dict[str, str]:
        await backend.hangup(agent_only(p))
        return {"status": "hanging up"}

    @app.post("/api/agent/dtmf", tags=["agent"])
    async def dtmf(body: DtmfIn, p: Who) -> dict[str, str]:
        """Keypad digits to the customer's leg (RFC 4733), e.g. an IVR after an outbound call."""
        await backend.send_dtmf(agent_only(p), body.digits)
        return {"status": "sent", "digits": body.digits}

    # --- the agent's contacts, each by id (several at once: a call, emails, chats) ---

    @app.get("/api/agent/contacts", tags=["contacts"])
    async def agent_contacts(p: Who) -> dict[str, Any]:
        """The agent's work list: contacts offered, connected and in wrap-up, each with its
        channel, phase, queue, customer, why-you, offer and wrap-up deadlines, its wrap-up
        draft and dispositions, and ``view`` (the channel's payload: thread, transcript...)."""
        agent_id = agent_only(p)
        return {"agent_id": agent_id, "contacts": backend.ready.work_list(agent_id)}

    @app.post("/api/contacts/{contact_id}/accept", tags=["contacts"])
    async def contact_accept(contact_id: ContactId, p: Who) -> dict[str, str]:
        """Accept an offer from the desk (email, chat, fax; a call is answered on the phone)."""
        await backend.ready.accept_offer(agent_only(p), contact_id)
        return {"status": "accepted", "contact_id": contact_id}

    @app.post("/api/contacts/{contact_id}/decline", tags=["contacts"])
    async def contact_decline(contact_id: ContactId, p: Who) -> dict[str, str]:
        """Decline an offer: it goes to another agent."""
        backend.ready.decline_offer(agent_only(p), contact_id)
        return {"status": "declined", "contact_id": contact_id}

    @app.post("/api/contacts/{contact_id}/end", tags=["contacts"])
    async def contact_end(contact_id: ContactId, p: Who) -> dict[str, str]:
        """Close the conversation (a call: hang up); its wrap-up follows."""
        backend.ready.hangup(agent_only(p), contact_id)
        return {"status": "ending", "contact_id": contact_id}

    @app.post("/api/contacts/{contact_id}/hold", tags=["contacts"])
    async def contact_hold(contact_id: ContactId, body: HoldIn, p: Who) -> dict[str, Any]:
        await backend.ready.set_hold(agent_only(p), body.on_hold, contact_id)
        return {"on_hold": body.on_hold, "contact_id": contact_id}

    @app.post("/api/contacts/{contact_id}/transfer", tags=["contacts"])
    async def contact_transfer(contact_id: ContactId, body: TransferIn, p: Who) -> dict[str, str]:
        await backend.ready.transfer(agent_only(p), body.target, contact_id)
        return {"status": "transferring", "target": body.target, "contact_id": contact_id}

    @app.post("/api/contacts/{contact_id}/wrapup", tags=["contacts"])
    async def contact_wrapup(contact_id: ContactId, body: ContactWrapUpIn, p: Who) -> dict[str, str]:
        backend.ready.submit_wrap_up(agent_only(p), body.disposition, body.notes, contact_id)
        return {"status": "wrap-up submitted", "contact_id": contact_id}

    @app.put("/api/contacts/{contact_id}/wrapup/draft", tags=["contacts"])
    async def contact_wrapup_draft(contact_id: ContactId, body: ContactDraftIn, p: Who) -> dict[str, str]:
        """Autosave of this contact's wrap-up form; if its time runs out, the record gets it."""
        backend.ready.save_draft(agent_only(p), contact_id, body.disposition, body.notes)
        return {"status": "draft saved", "contact_id": contact_id}

    @app.post("/api/agent/dial", tags=["contacts"])
    async def dial(body: DialIn, p: Who) -> dict[str, str]:
        """Click-to-dial: the agent's phone rings first; once answered, the customer (``number``,
        or ``customer_id``'s first phone) is dialled through ``callbacks.dial_uri``."""
        if (body.number is None) == (body.customer_id is None):
            raise HTTPException(422, "give either number or customer_id")
        customers = getattr(app.state, "customers", None)
        if body.customer_id is not None and customers is not None:
            # dialling a customer shows their number: the same rule as reading them
            await customers.may_read(Reader(p.subject, p.role), body.customer_id)
        voice = backend.ready.channels.get("voice")
        outbound = getattr(voice, "outbound", None)
        if outbound is None:
            raise HTTPException(503, "no voice channel")
        contact = await outbound.dial(agent_only(p), number=body.number, customer_id=body.customer_id,
                                      queue=body.queue)  # fmt: skip
        return {"status": "ringing your phone", "contact_id": contact.contact_id,
                "number": contact.callback_number or ""}  # fmt: skip

    @app.get("/api/agent/callbacks", tags=["contacts"])
    async def agent_callbacks(p: Who) -> dict[str, Any]:
        """The callback worklist: requests waiting in the queues the agent serves, oldest first."""
        return {"callbacks": pending_callbacks(backend.ready, agent_only(p))}

    @app.post("/api/agent/callbacks/{contact_id}/take", tags=["contacts"])
    async def take_a_callback(contact_id: ContactId, p: Who) -> dict[str, str]:
        """Take one callback: it is offered to this agent now (their phone rings, then the
        customer is dialled); the agent goes Available."""
        take_callback(backend.ready, agent_only(p), contact_id)
        return {"status": "offered", "contact_id": contact_id}

    @app.get("/api/customers/lookup", tags=["agent"], response_model=CustomerLookupOut,
             responses={403: {"description": "an agent's lookup of a customer other than their current "
                                             "contact's (server.yaml privacy)"}})  # fmt: skip
    async def customer_lookup(
        p: Who, kind: Literal["phone", "email", "web"], value: str
    ) -> dict[str, Any]:
        found = await backend.customer_lookup(Reader(p.subject, p.role), kind, value)
        if found is None:
            raise HTTPException(404, "no such customer")
        return found

    # --- supervisor ----------------------------------------------------------

    @app.get("/api/supervisor/snapshot", tags=["supervisor"])
    async def snapshot(p: Who) -> dict[str, Any]:
        supervisor_only(p)
        return backend.supervisor_snapshot()

    @app.post("/api/supervisor/agents/{agent_id}/state", tags=["supervisor"])
    async def force_state(agent_id: str, body: StateIn, p: Who) -> dict[str, Any]:
        supervisor_only(p)
        if agent_id not in backend.agent_ids():
            raise HTTPException(404, "no such agent")
        await backend.set_agent_state(agent_id, body.state, body.reason, by=p.subject)
        return backend.agent_view(agent_id)

    # --- live streams --------------------------------------------------------

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        ours = len(offered) == 2 and offered[0] == WS_PROTOCOL
        p = auth.verify(offered[1]) if ours else None
        # Accept first, then close with 4401, so the page learns why (a refused handshake
        # reaches a browser only as 1006) and signs in again instead of retrying.
        await websocket.accept(subprotocol=WS_PROTOCOL if ours else None)
        if p is None:
            await websocket.close(code=4401)
            return
        conn = Connection(p.subject, p.role)
        live[p.session].add(conn)
        # The first message is a snapshot, so a (re)connecting client needs no REST call.
        if p.role == "supervisor":
            conn.put({"type": "snapshot", **backend.supervisor_snapshot()})
        else:
            conn.put({"type": "snapshot", "agent": backend.agent_view(p.subject),
                      "contact": backend.current_contact(p.subject)})
        backend.hub.add(conn)
        reader = asyncio.create_task(_drain_client(websocket))
        reader.add_done_callback(lambda _t: conn.close())  # client gone: stop the sender too
        try:
            while True:
                item = await conn.queue.get()
                if item is None:
                    break
                message, sent = item
                await websocket.send_text(_json_text(message))
                if sent is not None and not sent.done():
                    sent.set_result(None)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            backend.hub.remove(conn)
            conn.close()
            live[p.session].discard(conn)
            if not live[p.session]:
                del live[p.session]
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            with contextlib.suppress(Exception):
                await websocket.close()

    # --- operations ----------------------------------------------------------

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        h = backend.health()
        return JSONResponse(h, status_code=200 if h.get("ok") else 503)

    app.include_router(reports_router)  # /api/reports/*: supervisor reports and what-if
    app.include_router(interactions_router)  # /api/interactions: search and record view
    app.include_router(call_controls_router())  # mute, consultation and conference (desk call controls)
    app.include_router(customers_router)  # /api/customers/*: the desk's customer panel
    mount_pages(app)  # /desk and /supervisor: the browser front ends of this API
    mount_channel_scripts(app)  # /desk/channels.json: the channels' desk panels (channel_api.py)
    mount_api_docs(app)  # /docs: Swagger UI from /vendor/swagger-ui/, not a CDN

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        return Response(backend.metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _json_text(message: dict[str, Any]) -> str:
    return json.dumps(finite(message), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) client frames so disconnects are noticed promptly."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
