"""``BrowserPhones``: the in-process SIP gateway between the voice channel and the browsers.

Each agent whose desk switched the browser phone on has a ``PhoneSession``: its
``PhoneLine`` (the peer connection) and the signalling socket's send function. Once the
line's ICE/DTLS is connected, the gateway adds a registrar binding for the agent's SIP
user pointing at the gateway's own UDP listener — the agent is then reachable exactly as
with a registered desk phone (``Registrar.on_change`` → ``ContactCore.set_reachable``).
The voice channel's agent leg arrives here as an INVITE (same RONA timeout, same CANCEL
when the offer is withdrawn, same BYE on either side's hang-up); the browser rings, and
Answer makes the gateway answer the INVITE with the leg's audio routed to the line.

An INVITE carrying ``Call-Info: ...;answer-after=0`` (the desk's own Answer button
re-offers the call that way, as to a desk phone; a supervisor's monitor call comes that way
too) is answered at once.

Supervisors with a SIP account (agents.yaml ``supervisors: sip``) get a line the same way,
from the supervisor page: their session is keyed ``supervisor:<username>`` (``owner``), so it
never collides with an agent id, and their SIP user's binding is what monitoring calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCIceServer

from callcenter.sip.bindings import Binding
from callcenter.sip.calls import Call, CallError
from callcenter.sip.message import SipMessage
from callcenter.sip.registrar import Registrar
from callcenter.sip.transport import SipTransportLayer
from callcenter.sip.ua import UserAgent
from callcenter.webrtc.leg_media import BrowserLegAllocator, BrowserLegMedia
from callcenter.webrtc.line import PhoneLine

log = logging.getLogger(__name__)
Send = Callable[[dict[str, Any]], Awaitable[None]]
CONNECT_TIMEOUT_S = 20.0  # ICE + DTLS must be up within this after the offer


def owner(role: str, subject: str) -> str:
    """The key of a login's line: the agent id, or ``supervisor:<username>``."""
    return subject if role == "agent" else f"supervisor:{subject}"


@dataclass(eq=False)
class PhoneSession:
    agent_id: str  # the owner (``owner()``): an agent id, or supervisor:<username>
    sip_user: str
    line: PhoneLine
    send: Send
    binding_id: str = field(default_factory=lambda: "browser-" + secrets.token_hex(8))
    call: Call | None = None
    answer_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    decline_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    registered: bool = False
    refresher: asyncio.Task[None] | None = None

    async def tell(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the socket closed: disconnect() cleans up
            await self.send(message)


class BrowserPhones:
    def __init__(
        self,
        registrar: Registrar,
        sip_users: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        ice_hosts: Sequence[str] = (),
        ice_servers: list[RTCIceServer] | None = None,
        binding_ttl_s: float = 120.0,
        media_timeout_s: float = 60.0,
        media: Any = None,
    ) -> None:
        self.registrar = registrar
        self.sip_users = sip_users  # owner() -> SIP user (the AOR the voice channel/monitoring looks up)
        self.host = host
        self.ice_hosts = tuple(ice_hosts)
        self.ice_servers = ice_servers or []
        self.binding_ttl_s = binding_ttl_s
        # the server's MediaEngine/MediaPool: a G.711 line's media is handed to it (lean.py)
        # and each call's gateway leg is a session there, bridged to the line's
        self.media = media
        self.ua = UserAgent(BrowserLegAllocator(host, media), on_call=self._on_call, source_limits=None,
                            user_agent="callcenter-browser-phone", contact_user="browser",
                            media_timeout=media_timeout_s, media_near=self._lean_line_of)
        self.transport = SipTransportLayer([("udp", host, 0)], self.ua.on_message)
        self.sessions: dict[str, PhoneSession] = {}  # by owner()

    @property
    def sip_address(self) -> tuple[str, int]:
        return self.ua.advertised["UDP"]

    async def start(self) -> None:
        await self.transport.start()
        self.ua.attach(self.transport)
        await self.ua.start()

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            await self.disconnect(session)
        await self.ua.stop()
        await self.transport.stop()

    # the browser's signalling --------------------------------------------------------------
    async def connect(self, agent_id: str, offer_sdp: str, send: Send) -> tuple[PhoneSession, str]:
        """A browser offered: answer it (one line per agent; a second tab replaces the first)."""
        old = self.sessions.get(agent_id)
        if old is not None:
            await old.tell({"type": "replaced"})
            await self.disconnect(old)
        line = PhoneLine(agent_id, ice_hosts=self.ice_hosts, servers=self.ice_servers, media=self.media)
        session = PhoneSession(agent_id, self.sip_users.get(agent_id, agent_id), line, send)
        try:
            answer = await line.answer(offer_sdp)
        except Exception:
            await line.close()
            raise
        self.sessions[agent_id] = session
        return session, answer

    async def wait_connected(self, session: PhoneSession) -> bool:
        """Register the agent's line once its media is up; False when ICE/DTLS failed."""
        line = session.line
        up = asyncio.ensure_future(line.connected.wait())
        down = asyncio.ensure_future(line.failed.wait())
        try:
            await asyncio.wait({up, down}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
            down.cancel()
        if not line.connected.is_set() or self.sessions.get(session.agent_id) is not session:
            return False
        await self._bind(session)
        session.registered = True
        session.refresher = asyncio.ensure_future(self._refresh(session))
        log.info("browser phone registered", extra={"agent_id": session.agent_id, "codec": line.codec})
        return True

    async def _bind(self, session: PhoneSession) -> None:
        host, port = self.sip_address
        now = time.time()
        await self.registrar.add_binding(Binding(
            aor=session.sip_user, uri=f"sip:{session.sip_user}@{host}:{port}",
            expires_at=now + self.binding_ttl_s, call_id=session.binding_id, cseq=1,
            source=(host, port), transport="udp", q=1.0, user_agent="callcenter browser phone",
            # ranked first among the agent's bindings: the agent chose the browser for this login
            registered_at=now + self.binding_ttl_s,
        ))  # fmt: skip

    async def _refresh(self, session: PhoneSession) -> None:
        while True:
            await asyncio.sleep(self.binding_ttl_s / 3)  # periodic renewal, like a phone's REGISTER
            if session.line.failed.is_set() or session.line.lean_silent():
                await session.tell({"type": "unregistered", "reason": "media connection lost"})
                await self.disconnect(session)
                return
            await self._bind(session)

    async def disconnect(self, session: PhoneSession) -> None:
        if self.sessions.get(session.agent_id) is session:
            del self.sessions[session.agent_id]
        if session.refresher is not None and session.refresher is not asyncio.current_task():
            session.refresher.cancel()
        if session.registered:
            session.registered = False
            with contextlib.suppress(Exception):
                await self.registrar.remove_binding(session.sip_user, session.binding_id)
        if session.call is not None:
            session.call.terminate("browser_phone_gone")
        await session.line.close()

    def answer(self, session: PhoneSession) -> None:
        session.answer_wanted.set()

    def decline(self, session: PhoneSession) -> None:
        session.decline_wanted.set()

    def hangup(self, session: PhoneSession) -> None:
        if session.call is not None:
            session.call.terminate("agent_hangup")

    async def stats(self, session: PhoneSession) -> dict[str, Any]:
        leg = await session.call.media.fetch_stats() if session.call is not None else None
        return {"type": "stats", "line": await session.line.stats(), "leg": leg}

    # the voice channel's agent leg -------------------------------------------------------
    def _lean_line_of(self, request: SipMessage) -> Any:
        """The engine session of the line an INVITE is for: the gateway leg goes next to it."""
        session = self._session_for_user(Call._dialled(request))
        return session.line.lean if session is not None else None

    def _session_for(self, call: Call) -> PhoneSession | None:
        return self._session_for_user(call.dnis)

    def _session_for_user(self, user: str) -> PhoneSession | None:
        for session in self.sessions.values():
            if session.sip_user == user and session.registered:
                return session
        return None

    async def _on_call(self, call: Call) -> None:
        session = self._session_for(call)
        if session is None or session.call is not None:
            await call.reject(486 if session is not None else 480)
            return
        session.call = call
        session.answer_wanted.clear()
        session.decline_wanted.clear()
        headers = call.request.headers
        info = {"type": "incoming", "call_id": call.call_id, "from": call.ani, "display": call.from_display,
                "contact_id": _header(headers, "X-Interaction-Id"), "queue": _header(headers, "X-Queue")}
        try:
            if "answer-after=0" in _header(headers, "Call-Info"):
                session.answer_wanted.set()
            else:
                await session.tell(info)
                await call.ringing(180)
            if not await self._await_choice(session, call):
                return
            media = call.media
            if isinstance(media, BrowserLegMedia):
                media.connect(session.line)
            elif session.line.lean is not None and not session.line.lean.closed:
                media.bridge(session.line.lean)  # both in the engine: no packet passes here
            else:
                await call.reject(480)
                return
            await call.answer()
            await session.tell({**info, "type": "call", "state": "connected"})
            await call.ended.wait()
        except CallError:
            log.info("browser phone leg %s ended early", call.call_id)
        finally:
            session.call = None
            await session.tell({"type": "call", "state": "ended", "call_id": call.call_id,
                                "reason": call.end_reason})

    async def _await_choice(self, session: PhoneSession, call: Call) -> bool:
        events = (session.answer_wanted, session.decline_wanted, call.ended)
        waits = {asyncio.ensure_future(e.wait()) for e in events}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if call.ended.is_set():
            return False
        if session.decline_wanted.is_set() and not session.answer_wanted.is_set():
            await call.reject(603, "Decline")
            return False
        return True


def _header(headers: Any, name: str) -> str:
    """A header's value from the INVITE ('' when absent)."""
    return str(headers.get(name) or "")
