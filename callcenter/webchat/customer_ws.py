"""``/chat/ws``: the customer's WebSocket (the widget's only connection to the server).

The Origin check comes first: a browser always sends the page's origin with a WebSocket
handshake, and only the server's own pages and ``allowed_origins`` from webchat.yaml may open
one (others get 403 before anything is read). A client that sends no Origin is not a browser
and could claim any origin anyway, so it is let through and limited like everyone else.

Frames are JSON objects with a ``type``; the first must be ``hello`` (a new chat, or a
``token`` and ``last_seq`` to resume). A frame that is not JSON, or whose type is unknown,
gets an ``error`` answer and the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from callcenter.webchat.service import Refused, WebChat
from callcenter.webchat.sessions import ChatSession, CustomerSocket

log = logging.getLogger(__name__)

MAX_FRAME = 65_536  # characters of one frame; a chat line is far smaller (limits.message_chars)


def own_origin(websocket: WebSocket) -> str:
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    host = websocket.headers.get("host", "")
    return f"{scheme}://{host}".lower()


def origin_allowed(webchat: WebChat, websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin", "").lower()
    return not origin or origin == own_origin(websocket) or origin in webchat.cfg.allowed_origins


def router(webchat: WebChat) -> APIRouter:
    r = APIRouter()

    @r.websocket("/chat/ws")
    async def customer(websocket: WebSocket) -> None:
        if not origin_allowed(webchat, websocket):
            log.info("web chat refused: origin %r not allowed", websocket.headers.get("origin"))
            await websocket.close(code=1008)  # before accept: the handshake is answered 403
            return
        await websocket.accept()
        socket = CustomerSocket()
        writer = asyncio.create_task(_write(websocket, socket))
        ip = websocket.client.host if websocket.client else ""
        session: ChatSession | None = None
        try:
            while True:
                raw = await websocket.receive_text()
                message = _parse(raw)
                if message is None:
                    socket.send({"type": "error", "code": "bad_message",
                                 "detail": "Each message must be a JSON object with a type."})  # fmt: skip
                    continue
                kind = message["type"]
                try:
                    if session is None:
                        if kind != "hello":
                            raise Refused("hello_first", "Say hello first.")
                        token = str(message.get("token") or "")
                        origin = websocket.headers.get("origin", "")
                        session = webchat.hello(socket, ip, origin, token, _int(message.get("last_seq")))
                        continue
                    await _dispatch(webchat, session, kind, message, ip)
                except Refused as exc:
                    socket.send({"type": "error", "code": exc.code, "detail": exc.detail,
                                 "retry_after": exc.retry_after, "client_id": message.get("client_id"),
                                 "for": kind})  # fmt: skip
                    if exc.code == "busy" or (session is None and exc.code == "rate_limited"):
                        break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if session is not None:
                webchat.gone(session, socket)
            socket.close()
            with contextlib.suppress(Exception):
                await writer
            with contextlib.suppress(Exception):
                await websocket.close()

    return r


async def _dispatch(webchat: WebChat, session: ChatSession, kind: str, m: dict[str, Any], ip: str) -> None:
    if kind == "start":
        await webchat.start(session, m)
    elif kind == "say":
        await webchat.say(session, m.get("text", ""), str(m.get("client_id") or "")[:64])
    elif kind == "ask":
        await webchat.ask(session, m.get("text", ""))
    elif kind == "agent":
        await webchat.to_agent(session)
    elif kind == "typing":
        webchat.typing(session, bool(m.get("on")))
    elif kind == "end":
        webchat.end(session)
    elif kind == "transcript":
        webchat.transcript(session, str(m.get("email") or ""))
    elif kind == "offline":
        cid = await webchat.offline_message(ip, m, session)
        session.send({"type": "offline_sent", "interaction_id": cid})
    elif kind == "ping":
        session.send({"type": "pong"})
    else:
        raise Refused("bad_message", f"Unknown message type {kind[:40]!r}.")


def _parse(raw: str) -> dict[str, Any] | None:
    if len(raw) > MAX_FRAME:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return None
    return data


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


async def _write(websocket: WebSocket, socket: CustomerSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            message = await socket.queue.get()
            if message is None:
                break
            await websocket.send_text(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
    with contextlib.suppress(Exception):
        await websocket.close()
