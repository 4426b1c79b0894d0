"""The browser phone's signalling: ``/api/phone/ws`` and ``GET /api/phone/config``.

Why not SIP over WebSocket (RFC 7118) with JsSIP in the page: see docs/webrtc.md. In
short, the desk already holds an authenticated session and every call control lives in
the CTI API (hold, transfer, keypad, hang-up on the caller's leg), so the browser needs
only an SDP exchange and Answer/Decline/Hang-up; the SIP side stays inside the server.

The socket authenticates like the desk's ``/ws``: subprotocols ``[callcenter.v1, token]``
(an agent's token, or a supervisor's whose ``supervisors`` entry has a ``sip`` account, so
monitoring can ring the supervisor page; anything else is closed with 4401 after the
handshake, so the page learns why). Over TLS (``http.tls``) it is WSS on the same port.

Messages (JSON text frames):

    browser → server  {"type": "offer", "sdp"}          once; the answer follows
                      {"type": "answer_call"} | {"type": "decline"} | {"type": "hangup"}
                      {"type": "stats"}
    server → browser  {"type": "answer", "sdp"}
                      {"type": "registered", "codec"} | {"type": "unregistered", "reason"}
                      {"type": "incoming", call_id, from, display, contact_id, queue}
                      {"type": "call", "state": "connected"|"ended", ...}
                      {"type": "stats", line, leg} | {"type": "error", "reason"} | {"type": "replaced"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from callcenter.web.app import Who
from callcenter.web.tokens import WS_PROTOCOL
from callcenter.webrtc.gateway import BrowserPhones, PhoneSession, owner

log = logging.getLogger(__name__)
MAX_MESSAGE = 64 * 1024  # an SDP offer is a few kB


def phone_router(phones: BrowserPhones, client_config: dict[str, Any]) -> APIRouter:
    router = APIRouter(tags=["phone"])

    @router.get("/api/phone/config")
    async def config(p: Who) -> dict[str, Any]:
        """What the page's RTCPeerConnection needs (TURN server, if configured)."""
        return client_config

    @router.websocket("/api/phone/ws")
    async def phone_ws(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        ours = len(offered) == 2 and offered[0] == WS_PROTOCOL
        p = websocket.app.state.auth.verify(offered[1]) if ours else None
        await websocket.accept(subprotocol=WS_PROTOCOL if ours else None)
        key = owner(p.role, p.subject) if p is not None else ""
        if p is None or (p.role != "agent" and key not in phones.sip_users):
            await websocket.close(code=4401)  # a supervisor without a SIP account has no line
            return
        lock = asyncio.Lock()

        async def send(message: dict[str, Any]) -> None:
            async with lock:
                await websocket.send_text(json.dumps(message))

        session: PhoneSession | None = None
        waiter: asyncio.Task[Any] | None = None
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    msg = json.loads(text) if len(text) <= MAX_MESSAGE else None
                    kind = msg.get("type") if isinstance(msg, dict) else None
                except ValueError:
                    kind = None
                if kind is None:
                    await send({"type": "error", "reason": "not a JSON object with a type"})
                elif kind == "offer":
                    if session is not None:
                        await send({"type": "error", "reason": "already connected"})
                        continue
                    sdp = msg.get("sdp")
                    if not isinstance(sdp, str):
                        await send({"type": "error", "reason": "offer without sdp"})
                        continue
                    try:
                        session, answer = await phones.connect(key, sdp, send)
                    except Exception as exc:  # an unusable offer: say why, keep the socket
                        log.info("browser phone offer refused: %s", exc, extra={"agent_id": p.subject})
                        await send({"type": "error", "reason": f"offer refused: {exc}"})
                        continue
                    await send({"type": "answer", "sdp": answer})
                    waiter = asyncio.ensure_future(_registered(phones, session))
                elif session is None:
                    await send({"type": "error", "reason": "no phone yet: send an offer first"})
                elif kind == "answer_call":
                    phones.answer(session)
                elif kind == "decline":
                    phones.decline(session)
                elif kind == "hangup":
                    phones.hangup(session)
                elif kind == "stats":
                    await send(await phones.stats(session))
                else:
                    await send({"type": "error", "reason": f"unknown type {kind!r}"})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if waiter is not None:
                waiter.cancel()
            if session is not None:
                await phones.disconnect(session)
            with contextlib.suppress(Exception):
                await websocket.close()

    return router


async def _registered(phones: BrowserPhones, session: PhoneSession) -> None:
    if await phones.wait_connected(session):
        await session.tell({"type": "registered", "codec": session.line.codec})
    else:
        await session.tell({"type": "unregistered", "reason": "media connection failed (ICE/DTLS)"})
