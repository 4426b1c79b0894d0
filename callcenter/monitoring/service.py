"""Supervisor listen / whisper / barge on a connected call.

The server calls the supervisor's registered phone (their ``sip`` account in agents.yaml
``supervisors``: a SIP phone, or the supervisor page's browser phone, whose gateway binds
that SIP user like an agent's, callcenter/webrtc/gateway.py) with auto-answer headers (the
supervisor has just asked for the call) and its media on the call's worker (``media_near`` the
customer's leg), and once it answers mixes it into the call through the call's
``CallMixer`` (callcenter/media/mixer.py): listen — the supervisor hears both sides and
nobody hears them; whisper — the agent hears the supervisor, the customer does not;
barge — three-way. The mode can change during the session. It ends when the supervisor
hangs up, asks to stop, or the call ends.

Every attempt is logged (who, which call, the outcome, a refusal's reason). Each
session becomes one ``MonitorSession`` event in the interaction record (who, every mode
with from/to, result). The agent's desk gets ``{"type": "monitor", ...}`` messages for
whisper and barge (and listen when ``monitor_show_listen``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callcenter import events as ev
from callcenter.channels.voice import AUTO_ANSWER_HEADERS
from callcenter.contacts.contact import Phase
from callcenter.media.mixer import MODES, MixControl
from callcenter.sip.calls import Call, CallFailed
from callcenter.tasks import BackgroundTasks

if TYPE_CHECKING:
    from callcenter.bus import EventBus
    from callcenter.channels.voice import VoiceChannel
    from callcenter.web.hub import Hub

log = logging.getLogger(__name__)
RING_S = 30.0


class MonitorRefused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass(eq=False)
class Session:
    id: str
    supervisor: str
    contact_id: str
    agent_id: str
    mode: str
    ctl: MixControl
    started: float = field(default_factory=time.time)
    leg: Call | None = None
    modes: list[dict[str, Any]] = field(default_factory=list)
    state: str = "calling"  # calling | active | ended

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "supervisor": self.supervisor, "contact_id": self.contact_id,
                "agent_id": self.agent_id, "mode": self.mode, "state": self.state}  # fmt: skip


class MonitorService:
    def __init__(self, bus: EventBus, hub: Hub, supervisor_phones: dict[str, str], *,
                 show_listen: bool = False) -> None:  # fmt: skip
        self.bus = bus
        self.hub = hub
        self.phones = supervisor_phones  # supervisor username -> SIP user their phone registers as
        self.show_listen = show_listen
        self.voice: VoiceChannel | None = None
        self.sessions: dict[str, Session] = {}
        self._ids = itertools.count(1)
        self.tasks = BackgroundTasks(log)

    def attach(self, voice: VoiceChannel) -> None:
        self.voice = voice
        self.bus.subscribe_inline("monitoring", self._on_event, [ev.ContactEnded, ev.ContactTransferred])

    def _on_event(self, e: ev.Event) -> None:
        for s in [s for s in self.sessions.values() if s.contact_id == e.contact_id]:
            self.stop(s.id, "call ended" if isinstance(e, ev.ContactEnded) else "call transferred")

    # ------------------------------------------------------------------ start
    async def start(self, supervisor: str, role: str, contact_id: str, mode: str) -> Session:
        """Call the supervisor's phone and, once answered, mix it into the call."""
        try:
            session = self._check(supervisor, role, contact_id, mode)
        except MonitorRefused as exc:
            log.warning("monitor attempt by %s %s on contact %s (%s) refused: %s",
                        role, supervisor, contact_id, mode, exc)  # fmt: skip
            raise
        log.info("monitor attempt by supervisor %s on contact %s (agent %s), mode %s: calling their phone",
                 supervisor, contact_id, session.agent_id, mode)  # fmt: skip
        self.sessions[session.id] = session
        self.tasks.spawn(self._connect(session), f"monitor-{session.id}")
        return session

    def _check(self, supervisor: str, role: str, contact_id: str, mode: str) -> Session:
        if role != "supervisor":
            raise MonitorRefused(403, "only supervisors may monitor calls")
        if mode not in MODES:
            raise MonitorRefused(422, f"mode must be one of {', '.join(MODES)}")
        user = self.phones.get(supervisor)
        if user is None:
            raise MonitorRefused(409, "you have no SIP phone configured (agents.yaml supervisors: sip)")
        voice = self.voice
        contact = voice.core.contacts.get(contact_id) if voice is not None else None
        legs = voice.legs.get(contact_id) if voice is not None else None
        if contact is None or legs is None or contact.phase is not Phase.CONNECTED or legs.agent_call is None:
            raise MonitorRefused(409, "not a connected call")
        if any(s.contact_id == contact_id for s in self.sessions.values()):
            raise MonitorRefused(409, "the call is already monitored")
        sid = f"mon-{next(self._ids)}"
        return Session(sid, supervisor, contact_id, contact.agent_id or "", mode, MixControl(legs.call.media))

    async def _connect(self, s: Session) -> None:
        voice = self.voice
        assert voice is not None
        user = self.phones[s.supervisor]
        bindings = await voice.registrar.contacts(user)
        legs = voice.legs.get(s.contact_id)
        if not bindings or legs is None:
            self._failed(s, "supervisor's phone not registered" if not bindings else "call ended")
            return
        b = bindings[0]
        try:
            leg = await voice.ua.place_call(
                b.uri, dest=tuple(b.source), transport=b.transport,
                from_uri=f"sip:monitor@{voice.host}", from_display=f"Monitor {s.contact_id[:8]}",
                headers=[("X-Interaction-Id", s.contact_id), ("X-Monitor-Mode", s.mode),
                         ("Call-Info", f"<sip:{voice.host}>;answer-after=0"), *AUTO_ANSWER_HEADERS],
                timeout=RING_S, media_near=legs.call.media,
            )
        except CallFailed as exc:
            self._failed(s, f"supervisor's phone answered {exc.status}")
            return
        if s.state == "ended" or not legs.call.is_active:
            leg.terminate("monitor_over")
            self._failed(s, "stopped before the phone answered")
            return
        s.leg = leg
        s.state = "active"
        leg.add_end_callback(lambda _leg: self.stop(s.id, "supervisor hung up"))
        s.ctl.monitor(leg.media, s.mode)
        s.modes.append({"mode": s.mode, "from": time.time(), "to": None})
        log.info("monitor %s: supervisor %s is on contact %s (%s)", s.id, s.supervisor, s.contact_id, s.mode)
        self._tell(s)

    def _failed(self, s: Session, why: str) -> None:
        log.warning("monitor %s by %s on contact %s failed: %s", s.id, s.supervisor, s.contact_id, why)
        s.state = "ended"
        self.sessions.pop(s.id, None)
        self._publish(s, f"failed: {why}")
        self.hub.to_supervisors({"type": "monitor", **s.view(), "error": why})

    # ------------------------------------------------------------------ during
    def set_mode(self, session_id: str, supervisor: str, mode: str) -> Session:
        s = self.owned(session_id, supervisor)
        if mode not in MODES:
            raise MonitorRefused(422, f"mode must be one of {', '.join(MODES)}")
        if mode == s.mode:
            return s
        now = time.time()
        if s.state == "active":
            s.ctl.set_mode(mode)
            if s.modes:
                s.modes[-1]["to"] = now
            s.modes.append({"mode": mode, "from": now, "to": None})
        s.mode = mode
        log.info("monitor %s: supervisor %s switched to %s", s.id, supervisor, mode)
        self._tell(s)
        return s

    def owned(self, session_id: str, supervisor: str) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            raise MonitorRefused(404, "no such monitor session")
        if s.supervisor != supervisor:
            raise MonitorRefused(403, "another supervisor's session")
        return s

    def stop(self, session_id: str, why: str = "stopped") -> None:
        s = self.sessions.pop(session_id, None)
        if s is None or s.state == "ended":
            return
        was_active = s.state == "active"
        s.state = "ended"
        if was_active:
            s.ctl.unmonitor()
            if s.modes:
                s.modes[-1]["to"] = time.time()
        if s.leg is not None:
            s.leg.terminate("monitor_over")
        log.info("monitor %s by %s on contact %s ended: %s", s.id, s.supervisor, s.contact_id, why)
        if was_active:
            self._publish(s, "ended")
        self._tell(s)

    def _publish(self, s: Session, result: str) -> None:
        self.bus.publish(ev.MonitorSession(
            contact_id=s.contact_id, supervisor=s.supervisor, agent_id=s.agent_id, started=s.started,
            ended=time.time(), modes=s.modes, result=result))  # fmt: skip

    def _tell(self, s: Session) -> None:
        """The agent's desk (whisper/barge, listen if configured) and the supervisors' pages."""
        msg = {"type": "monitor", **s.view()}
        self.hub.to_supervisors(msg)
        shown = s.state == "active" and (s.mode != "listen" or self.show_listen)
        self.hub.to_agent(s.agent_id, {"type": "monitor", "contact_id": s.contact_id,
                                       "mode": s.mode if shown else None,
                                       "supervisor": s.supervisor if shown else None})  # fmt: skip

    def list(self) -> list[dict[str, Any]]:
        return [s.view() for s in self.sessions.values()]

    def calls(self) -> list[dict[str, Any]]:
        """The calls a supervisor could monitor now (connected, with an agent's leg), each
        with its monitor session if it has one: the supervisor page's Calls in progress."""
        voice = self.voice
        if voice is None:
            return []
        by_contact = {s.contact_id: s.view() for s in self.sessions.values()}
        out = []
        for contact in voice.core.contacts.values():
            legs = voice.legs.get(contact.contact_id)
            if contact.phase is not Phase.CONNECTED or legs is None or legs.agent_call is None:
                continue
            out.append({"contact_id": contact.contact_id, "ani": contact.ani, "queue": contact.queue,
                        "agent_id": contact.agent_id, "connected_at": contact.connected_at,
                        "monitor": by_contact.get(contact.contact_id)})  # fmt: skip
        return out

    async def close(self) -> None:
        for sid in list(self.sessions):
            self.stop(sid, "server stopping")
        await self.tasks.close()
        await asyncio.sleep(0)
