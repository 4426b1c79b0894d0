"""The composition root: builds every component from the config and wires them.

Start order matters: storage first (the IVR's lookups need it), then the
event bus consumers, routing, media, SIP (last, so no call arrives before the
rest is ready) and the HTTP app. Stop order is the reverse, and active calls
get a BYE before the loop ends.

``Center`` also implements the CTI backend the web app talks to
(:class:`callcenter.web.backend.CtiBackend`): agent actions go to the contact
core, whose domain errors the web layer turns into HTTP answers. Two bus
subscribers consume the core's events: the CRM (the interaction records) and
the desk feed (agent desktops and supervisors).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.board_today import TodayFigures, local_midnight
from callcenter.bus import EventBus
from callcenter.channels.voice import VoiceChannel
from callcenter.channels.voice_handoff import VoiceHandoff
from callcenter.cluster.cluster import Cluster
from callcenter.cluster.node import resolve_node_id
from callcenter.config import AppConfig
from callcenter.contacts.callback_keeper import CallbackKeeper
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import InvalidState, Unavailable
from callcenter.email.service import install_email
from callcenter.events import recorded_types
from callcenter.fax.wiring import install_fax
from callcenter.ivr.crm_lookups import CrmLookups
from callcenter.ivr.flows import load_flows
from callcenter.ivr.runner import IvrEngine
from callcenter.media.engine import MediaEngine
from callcenter.media.worker import MediaPool
from callcenter.moh import render_moh
from callcenter.privacy import Privacy, Reader
from callcenter.recording.wiring import install_call_audio
from callcenter.recovery import recover
from callcenter.reporting import ReportService
from callcenter.sip.binding_file import FileBindingStore
from callcenter.sip.bindings import RedisBindingStore, RegisterPolicy
from callcenter.sip.digest import Credentials
from callcenter.sip.limits import SourceLimits
from callcenter.sip.registrar import Registrar
from callcenter.sip.tls import sip_tls_options
from callcenter.sip.transport import SipTransportLayer
from callcenter.sip.ua import UserAgent
from callcenter.speech import CachedTts, SphinxRecognizer, SphinxSettings
from callcenter.throttle import AuthThrottle, policies_from_config
from callcenter.web.app import create_app
from callcenter.web.auth import Authenticator
from callcenter.web.customers_api import CustomerDesk, settled
from callcenter.web.desk_feed import DeskFeed
from callcenter.web.hub import Hub
from callcenter.web.interactions_api import InteractionReader
from callcenter.web.limits import HashingSlots
from callcenter.web.metrics import make_registry
from callcenter.web.presence import DeskPresence
from callcenter.web.tokens import Tokens
from callcenter.webchat.wiring import install_webchat
from callcenter.webrtc.wiring import install_webrtc
from crm_bridge.batching import EventBatcher
from crm_bridge.store import CrmStore
from routing.model import Presence
from routing.router import Router

if TYPE_CHECKING:
    import uvicorn

    from crm_bridge.outbox import OutboxDispatcher

log = logging.getLogger(__name__)

ECHO_PROMPT = "This is the echo test. Press any key and you will hear it back."


class Center:
    def __init__(self, cfg: AppConfig, *, flows_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.flows_dir = flows_dir or cfg.flows_dir
        self.data_dir = cfg.data_dir
        self.bus = EventBus()
        cl = cfg.server.cluster  # several nodes sharing Redis and PostgreSQL (docs/cluster.md)
        self.node_id = resolve_node_id(cl.node_id)
        self.cluster = Cluster(cl, self.node_id, self.bus) if cl.enabled else None
        self.hub = Hub()
        self.started_at = time.time()
        s = cfg.server
        self.router = Router(cfg.routing)
        db = s.database
        self.crm = CrmStore(db.url, files_dir=s.crm.files_dir, default_region=db.default_region)
        self.tts = CachedTts.create(Path(s.speech.tts_cache_dir), engine=s.speech.engine,
                                    default_rate=s.speech.rate)  # fmt: skip
        asr = SphinxSettings(cache_dir=self.data_dir / "speech-model",
                             confidence_threshold=s.speech.asr_confidence)  # fmt: skip
        self.recognizer = SphinxRecognizer(asr)
        rtp = s.rtp
        self.media: MediaEngine | MediaPool = (
            MediaPool(rtp.host, rtp.port_min, rtp.port_max, rtp.workers, codecs=tuple(rtp.codecs),
                      realtime_priority=rtp.realtime_priority, srtp=rtp.srtp, comedia=rtp.comedia)
            if rtp.workers > 1
            else MediaEngine(rtp.host, rtp.port_min, rtp.port_max, codecs=tuple(rtp.codecs), srtp=rtp.srtp,
                             comedia=rtp.comedia)
        )
        creds = {
            a.sip.username: Credentials(a.sip.ha1_md5, a.sip.ha1_sha256) for a in cfg.agent_secrets.values()
        }
        creds.update({u.sip.username: Credentials(u.sip.ha1_md5, u.sip.ha1_sha256)  # monitoring phones
                      for u in cfg.supervisors.values() if u.sip is not None})  # fmt: skip
        reg = s.sip.registration
        auth = s.sip.auth
        sip_lockout, sip_delay = policies_from_config(auth)
        self.registrar = Registrar(
            s.sip.realm,
            creds,
            policy=RegisterPolicy(reg.default_expires, reg.min_expires, reg.max_expires),
            lockout=sip_lockout,
            account_delay=sip_delay,
            nonce_ttl=auth.nonce_ttl_s,
            store=(RedisBindingStore(self.cluster.redis, self.cluster.key("sip", "reg") + ":")
                   if self.cluster is not None  # every node reaches every agent's phone
                   else FileBindingStore(self.data_dir / "sip-bindings.json") if reg.persist else None),
        )
        self.ua = UserAgent(
            self.media,
            registrar=self.registrar,
            media_timeout=s.sip.session.media_timeout_s,
            session_expires=s.sip.session.session_expires_s,
            source_limits=SourceLimits(**s.sip.limits.model_dump(exclude={"trusted"}),
                                       trusted=tuple(s.sip.limits.trusted)),
        )
        if isinstance(self.media, MediaPool):  # a dead worker's calls are ended, not left silent
            self.media.on_worker_died = self.ua.media_lost
        self.transport = SipTransportLayer(
            [(x.transport, x.host, x.port) for x in s.sip.listen],
            self.ua.on_message,
            advertised_host=s.sip.advertised_host,
            advertised_port=s.sip.advertised_port,
            max_tcp_connections=s.sip.tcp.max_connections,
            max_tcp_per_ip=s.sip.tcp.max_per_ip,
            tcp_message_timeout=s.sip.tcp.message_timeout_s,
            **sip_tls_options(s.sip.tls),
        )
        self.auth = Authenticator(
            {a.id: a.desktop.password_hash for a in cfg.agent_secrets.values()},
            {u.username: u.password_hash for u in cfg.supervisors.values()},
            throttle=AuthThrottle("http", *policies_from_config(s.http.login_throttle)),
            hashing=HashingSlots(s.http.limits.password_hashes, s.http.limits.password_hash_queue),
        )
        self.app = create_app(self, self.auth, body_limit=s.http.limits.body_bytes,
                              login_body_limit=s.http.limits.login_body_bytes)
        self._metrics = make_registry(self.supervisor_snapshot, {
            "sip": self.registrar.throttle.counts, "http": self.auth.throttle.counts},
            sip_counts={"ua": self.ua.stats, "transport": self.transport.stats},
            node=self.node_id if self.cluster is not None else None)  # fmt: skip
        # Events reach the CRM in batches; several writers only where the database has
        # row locks to let them work in parallel (PostgreSQL), one for SQLite.
        writers = 1 if db.url.startswith("sqlite") else 2
        self.crm_events = EventBatcher(self.crm, writers=writers)
        self.core = ContactCore(router=self.router, bus=self.bus, crm=self.crm,
                                kept_skills=set(cfg.services.language_skills.values()))  # fmt: skip
        self.privacy = Privacy(s.privacy, self.bus.publish)  # who reads which customer data
        self.callback_keeper = CallbackKeeper(self.core, self.crm)  # callback requests outlive a restart
        self.desk = DeskFeed(self.hub, self.core.find, pop_view=self.privacy.screen_pop,
                             dispositions=self.core.dispositions,
                             holders=self.core.agents_holding)  # fmt: skip
        if self.cluster is not None:  # supervisors see every node's queues (cluster/queue_view.py)
            self.core.node = self.node_id
            self.desk.queue_view = self.cluster.follow_queues(self.core.queue_figures, self._signed_in_views)
        self.presence = DeskPresence(s.desk.presence_grace_s, self._desk_gone)
        self.hub.on_desks = self.presence.desks_changed
        self.reports = ReportService(lambda: self.crm.engine, s.reports, cfg.routing, cfg.agents,
                                     self.supervisor_snapshot)  # fmt: skip
        self.app.state.reports = self.reports  # /api/reports/* (callcenter/web/reports_api.py)
        self.board_thresholds = s.board.thresholds.model_dump()
        self.app.state.interactions = InteractionReader(self.crm, self.privacy)  # /api/interactions
        self.webchat = install_webchat(self)  # chat widget, web forms (webchat.yaml); None without
        self.email = install_email(self)  # mailboxes, SMTP/IMAP intake, replies (server.yaml email:)
        self.fax = install_fax(self)  # fax services (flow fax) and CNG detection; None without
        self.call_audio = install_call_audio(self)  # recording (recording.yaml), listen/whisper/barge
        self.phones = install_webrtc(self)  # the desk's browser phone (docs/webrtc.md); None when off
        # /api/customers/*: the desk's customer panel (search, link, contact points)
        crm_written = settled(self.bus, self.crm_events)
        self.app.state.customers = CustomerDesk(self.crm, self.privacy, self.current_contact,
                                                self.core.contacts, crm_written)  # fmt: skip
        # The board's figures since local midnight, live from the bus (callcenter/board_today.py)
        service_queues = {name: svc.default_queue for name, svc in cfg.services.services.items()}
        self.today = TodayFigures(self.hub.to_supervisors, cfg.routing.queues,
                                  lambda q: cfg.routing.queues[q].service_level.seconds,
                                  service_queues.get, self.core.contacts)  # fmt: skip
        self.voice: VoiceChannel | None = None  # once started
        self._http: uvicorn.Server | None = None
        self.http_port = s.http.port  # the bound port once started (differs when configured as 0)
        self._http_task: asyncio.Task[None] | None = None
        self._prerender: asyncio.Task[Any] | None = None
        self.outbox: OutboxDispatcher | None = None
        self._outbox_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.cfg.server
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = Path(s.http.jwt_key_file) if s.http.jwt_key_file else self.data_dir / "jwt.key"
        self.auth.tokens = Tokens.from_key_file(key_file, ttl_s=s.http.token_ttl_s,
                                                session_max_s=s.http.session_max_s)  # fmt: skip
        await self.crm.start()
        if s.crm.seed_demo:
            from crm_bridge.demo import seed_demo

            await seed_demo(self.crm)
        self.crm_events.start()
        self.reports.start()  # rollup refresh and the live queue history
        remote = self.cluster.remote if self.cluster is not None else (lambda _e: False)
        # another node's events reach this bus for the live views; that node wrote them to the CRM
        self.bus.subscribe("crm", lambda e: None if remote(e) else self.crm_events.put(e.as_dict()),
                           recorded_types())  # fmt: skip
        if self.cluster is not None:
            await self.cluster.start(self.crm.engine)
            self.ua.healthy = self.cluster.healthy  # Kamailio's OPTIONS probe gets 503 when not
        self.desk.attach(self.bus)
        if self.webchat is not None:
            self.webchat.run()  # queue updates, resume grace and idle timeouts of web chats
        try:  # the day so far from the records; the CRM being slow must not stop the server
            await self.reports.seed_today(self.today)
        except Exception:
            log.exception("could not read today's figures from the records; the board counts from now")
        self.today.attach(self.bus)
        if s.crm.webhooks:
            from crm_bridge.outbox import OutboxDispatcher

            self.outbox = OutboxDispatcher(self.crm, s.crm.webhooks)
            self._outbox_task = asyncio.create_task(self.outbox.run(), name="crm-outbox")
        flows = load_flows(self.flows_dir, known_queues=self.router.queues)
        ivr = IvrEngine(
            flows,
            self.cfg.services,
            emit=self.bus.publish,
            lookups=CrmLookups(self.crm, queue_wait=self._queue_wait),
            voicemail_dir=self.data_dir / "voicemail",
        )
        moh = render_moh(self.data_dir / "moh.wav")
        echo_prompt = await self.tts.render(ECHO_PROMPT, language="en")
        self.voice = VoiceChannel(
            self.core,
            ua=self.ua,
            ivr=ivr,
            registrar=self.registrar,
            tts=self.tts,
            recognizer=self.recognizer,
            agent_sip_users={a.id: a.sip.username for a in self.cfg.agent_secrets.values()},
            default_region=s.database.default_region,
            moh=moh,
            echo_prompt=echo_prompt,
            voicemail_dir=self.data_dir / "voicemail",
            announce_every_s=s.queueing.announce_every_s,
            offer_options_after_s=s.queueing.offer_options_after_s,
            callbacks=s.callbacks,
        )
        self.ua.on_call = self.fax.wrap(self.voice.on_call) if self.fax else self.voice.on_call
        self.registrar.on_change(self.voice.softphone_changed)
        self.call_audio.attach(self.voice)
        monitoring = self.call_audio.monitoring  # the mixer's third seat: a conference or a supervisor
        self.voice.consults.monitored = lambda cid: any(
            m.contact_id == cid for m in monitoring.sessions.values())
        if self.cluster is not None:  # phones registered through the other nodes count here too
            self.cluster.follow_devices(self.core.set_reachable)
        # open email contacts go back in their queues instead of being closed as interrupted
        email_kept = await self.email.restore() if self.email is not None else []
        # before SIP listens
        cluster = self.cluster
        await recover(self.crm, self.callback_keeper, self.voice.restore_callback, keep=email_kept,
                      sweep=cluster is None,
                      take=cluster.leases.claim_callback if cluster else None)  # fmt: skip
        if cluster is not None:  # a dead node's callback requests come back in this node's queues
            voice = self.voice

            async def take_callbacks(ids: set[str]) -> list[str]:
                async def mine(cid: str) -> bool:
                    return cid in ids

                return await self.callback_keeper.restore(voice.restore_callback, mine)

            cluster.leases.on_callbacks = take_callbacks
        if self.email is not None:
            await self.email.start()  # SMTP listener, IMAP pollers, processing, relay
        self.callback_keeper.attach(self.bus)
        self._prerender = asyncio.create_task(ivr.prerender(self.tts), name="tts-prerender")
        await self.registrar.start()
        await self.media.start()
        await self.transport.start()
        self.ua.attach(self.transport)
        await self.ua.start()
        if cluster is not None and cluster.cfg.handoff:  # waiting callers move to a free agent's node
            transport, (host, port) = next(iter(self.ua.advertised.items()))
            param = "" if transport == "UDP" else f";transport={transport.lower()}"
            cluster.sip = f"sip:handoff@{host}:{port}{param}"
            self.voice.handoff = VoiceHandoff(self.voice, *cluster.handoff())
            self.voice.handoff.follow(self.bus)
            cluster.agents_changed = self.voice.handoff.look_soon
        if self.phones is not None:
            await self.phones.start()  # the browser phones' SIP gateway (callcenter/webrtc)
        await self._start_http()
        log.info("callcenter started", extra={
            "sip": [f"{x.transport}:{x.host}:{x.port}" for x in s.sip.listen],
            "http": f"{s.http.host}:{self.http_port}",
            "rtp": f"{s.rtp.host}:{s.rtp.port_min}-{s.rtp.port_max}",
            "media_workers": s.rtp.workers if s.rtp.workers > 1 else 0,  # 0: in this process
        })  # fmt: skip

    async def _start_http(self) -> None:
        import socket

        import uvicorn

        http = self.cfg.server.http
        # Bind here so a taken port fails start-up at once, before uvicorn's task runs.
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
        # protocol says TCP; with 0, Nagle held back screen-pops behind the desktop's
        # delayed ACK (~40 ms). Set it on the listener too: accepted sockets inherit it.
        family = socket.AF_INET6 if ":" in http.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((http.host, http.port))
        sock.listen(128)
        self.http_port = sock.getsockname()[1]
        tls = {"ssl_certfile": http.tls.cert_file, "ssl_keyfile": http.tls.key_file} if http.tls else {}
        # ws_max_size: desks send nothing that matters (frames are read and ignored), so a
        # client frame may not be the 16 MiB uvicorn allows by default.
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3, ws_max_size=65536,
                                ws_ping_interval=self.cfg.server.desk.heartbeat_s,
                                ws_ping_timeout=self.cfg.server.desk.heartbeat_s, **tls)  # fmt: skip
        self._http = uvicorn.Server(config)
        self._http.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]), name="http")

    async def stop(self) -> None:
        log.info("callcenter stopping: ending active calls")
        with contextlib.suppress(Exception):
            await self.ua.stop()
        if self.phones is not None:
            with contextlib.suppress(Exception):
                await self.phones.close()
        if self.webchat is not None:
            await self.webchat.close()
        if self.email is not None:
            await self.email.close()
        if self.fax is not None:
            await self.fax.close()
        self.core.close()
        with contextlib.suppress(Exception):
            await self.call_audio.close()  # recordings finish (transcode) before the process goes
        if self.voice is not None:
            await self.voice.close()
        with contextlib.suppress(Exception):
            await self.registrar.stop()
        if self._prerender is not None:
            self._prerender.cancel()
        self.hub.on_desks = None  # desks closing now is the server stopping, not agents leaving
        self.presence.close()
        self.today.close()
        self.hub.close_all()
        if self._http is not None:
            self._http.should_exit = True
            if self._http_task is not None:
                with contextlib.suppress(Exception):
                    await self._http_task
        with contextlib.suppress(Exception):
            await self.transport.stop()
        await self.media.stop()
        await self.tts.aclose()
        self.recognizer.close()
        await self.bus.close()
        if self.cluster is not None:
            await self.cluster.close()
        await self.reports.close()
        await self.crm_events.close()
        if self.outbox is not None and self._outbox_task is not None:
            self.outbox.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._outbox_task, 15)
        await self.crm.close()
        log.info("callcenter stopped")

    def _queue_wait(self, queue: str) -> float | None:
        try:
            return self.router.estimated_wait(queue=queue)
        except Exception:
            return None

    # ------------------------------------------------------------------ CTI backend

    @property
    def ready(self) -> ContactCore:
        """The core, once calls can flow; agent actions before that are refused."""
        if self.voice is None:
            raise Unavailable("starting")
        return self.core

    def agent_ids(self) -> list[str]:
        return list(self.router.agents)

    def agent_view(self, agent_id: str) -> dict[str, Any]:
        stats = dataclasses.asdict(self.router.agent_stats(agent_id))
        agent = self.router.agents[agent_id]
        stats["name"] = agent.name
        stats["in_state_s"] = self.core.in_state_s(agent_id)  # routing's counts from the last presence change
        stats["softphone"] = agent.softphone  # False: no registered phone, so not voice-available
        stats["skills"] = dict(agent.skills)
        stats["queues"] = self.router.queues_served(agent_id)
        stats["transfer_queues"] = list(self.router.queues)  # any queue takes a transfer
        stats["contact_id"] = self.core.agent_contact.get(agent_id)
        wrap_up = self.core.wrap_ups.get(agent_id)
        stats["wrap_up_contact_id"] = wrap_up.contact_id if wrap_up else None
        draft = self.core.drafts.get(agent_id)
        stats["wrap_up"] = draft.as_dict() if draft else None  # the form as saved, and time left
        stats["dispositions"] = self.core.dispositions(agent_id)  # the wrap-up form's choices
        # The customer panel offers search while idle only where the policy lets agents look anyone up.
        stats["customer_lookup"] = self.privacy.rules(Reader(agent_id, "agent")).lookup
        return stats

    async def agent_today(self, agent_id: str) -> dict[str, Any]:
        """The agent's own figures since the server's local midnight (the day the supervisor
        board counts too), from the records."""
        now = time.time()
        return await self.reports.agent_figures(agent_id, local_midnight(now), now)

    def transfer_targets(self, agent_id: str) -> dict[str, Any]:
        """What the desk's transfer picker offers: every queue, and the other agents with their
        state now (a transfer to an agent queues the caller with that agent preferred)."""
        agents = [
            {"agent_id": a, "name": agent.name, "state": str(self.router.agent_state(a)),
             "reason": agent.reason, "phone": agent.softphone}
            for a, agent in self.router.agents.items() if a != agent_id
        ]  # fmt: skip
        # numbers: typed by the agent; dialled through callbacks.dial_uri (a consultation, or a
        # blind transfer when the trunk is not set: then through the SIP address as typed)
        can_dial = self.voice is not None and self.voice.dialler.can_dial_out
        return {"queues": list(self.router.queues), "agents": agents, "numbers": {"consult": can_dial}}

    def current_contact(self, agent_id: str) -> dict[str, Any] | None:
        core = self.ready
        wrap_up = core.wrap_ups.get(agent_id)
        cid = core.agent_contact.get(agent_id) or (wrap_up.contact_id if wrap_up else None)
        contact = core.contacts.get(cid or "")
        if contact is None:  # the call is over: the desk shows the wrap-up form
            return {"contact_id": cid, "phase": "wrap_up"} if cid else None
        # The whole screen-pop (as this agent may see it), so a reload mid-call loses nothing.
        pop = self.privacy.screen_pop(agent_id, contact.screen_pop(contact.explanation))
        kept = ("customer", "tier", "recent", "ivr", "routing", "why_you")
        return {**pop["contact"], **{k: pop[k] for k in kept}}

    async def agent_login(self, agent_id: str) -> None:
        """Signing in leaves the agent not ready (reason ``login``), also when they were
        signed in already: a new sign-in is a new person at the desk until they say otherwise."""
        if str(self.router.agent_state(agent_id)) == "offline":
            self.ready.route(self.router.login, agent_id, agents=(agent_id,))
        elif self.router.agents[agent_id].presence is Presence.AVAILABLE:
            self.ready.route(self.router.set_agent_state, agent_id, "not_ready", "login", agents=(agent_id,))

    def _desk_gone(self, agent_id: str) -> None:
        """No desk of the agent's came back within ``desk.presence_grace_s``: an Available agent
        (idle or on a contact) takes no new contacts until they are back."""
        agent = self.router.agents.get(agent_id)
        if self.voice is not None and agent is not None and agent.presence is Presence.AVAILABLE:
            self.core.route(self.router.set_agent_state, agent_id, "not_ready", "disconnected",
                            agents=(agent_id,))  # fmt: skip

    async def agent_logout(self, agent_id: str) -> None:
        self.ready.route(self.router.logout, agent_id, agents=(agent_id,))

    async def set_agent_state(self, agent_id: str, state: str, reason: str, by: str) -> None:
        if state == "offline":
            ok = self.ready.route(self.router.logout, agent_id, agents=(agent_id,))
        else:
            if str(self.router.agent_state(agent_id)) == "offline":
                self.ready.route(self.router.login, agent_id, agents=(agent_id,))
            ok = self.ready.route(self.router.set_agent_state, agent_id, state, reason, agents=(agent_id,))
        if not ok:
            raise InvalidState(f"cannot change state to {state}")
        if by != agent_id:
            log.info("supervisor changed agent state", extra={"agent": agent_id, "by": by, "state": state})

    async def wrap_up(self, agent_id: str, disposition: str, notes: str, contact_id: str | None) -> None:
        self.ready.submit_wrap_up(agent_id, disposition, notes, contact_id)

    async def save_wrap_up_draft(self, agent_id: str, contact_id: str, disposition: str, notes: str) -> None:
        self.ready.save_draft(agent_id, contact_id, disposition, notes)

    async def transfer(self, agent_id: str, target: str) -> None:
        await self.ready.transfer(agent_id, target)

    async def hold(self, agent_id: str, on_hold: bool) -> None:
        await self.ready.set_hold(agent_id, on_hold)

    async def hangup(self, agent_id: str) -> None:
        self.ready.hangup(agent_id)

    async def send_dtmf(self, agent_id: str, digits: str) -> None:
        self.ready.send_digits(agent_id, digits)

    async def customer_lookup(self, reader: Reader, kind: str, value: str) -> dict[str, Any] | None:
        """A customer and their recent history as ``reader``'s role may see them (privacy.py);
        None when the customer is unknown to a reader who may look up anyone."""
        customer = await self.crm.customer_by_address(kind, value)
        reason = self.privacy.check_lookup(reader, customer["id"] if customer else None,
                                           self._serving_customers(reader.subject))  # fmt: skip
        if customer is None:
            return None
        owner = self.privacy.history_owner(reader)
        recent = await self.crm.recent_interactions(customer["id"], 10, handled_by=owner)
        shown = self.privacy.history(reader, [dict(r) for r in recent])
        self.privacy.read(reader, customer["id"], reason, shown)
        return {"customer": customer, "recent": shown}

    def _serving_customers(self, agent_id: str) -> list[str]:
        """Ids of the customers of the agent's offered or connected contacts."""
        customers = [c.customer for c in self.core.live_contacts(agent_id)]
        return [str(c["id"]) for c in customers if c and c.get("id")]

    def _agent_views(self) -> list[dict[str, Any]]:
        """Every agent as the board shows them; several nodes: an agent signed in on another
        node as that node sees them (callcenter/cluster/queue_view.py)."""
        views = [self.agent_view(a) for a in self.router.agents]
        queues = self.cluster.queues if self.cluster is not None else None
        return queues.agents(views) if queues is not None else views

    def _signed_in_views(self) -> list[dict[str, Any]]:
        router = self.router
        return [self.agent_view(a) for a in router.agents if str(router.agent_state(a)) != "offline"]

    def supervisor_snapshot(self) -> dict[str, Any]:
        started = self.voice is not None
        return {
            "ts": time.time(),
            "queues": (self.cluster.queues.figures() if self.cluster is not None and self.cluster.queues
                       else self.core.queue_figures()) if started else [],
            "agents": self._agent_views(),
            "contacts": [c.summary() for c in self.core.contacts.values()],
            "assignments": list(self.desk.recent_decisions),
            "active_calls": len(self.ua.calls),
            "thresholds": self.board_thresholds,  # server.yaml board.thresholds: the tiles' colours
            "today": self.today.view(),  # since local midnight (callcenter/board_today.py)
        }

    def health(self) -> dict[str, Any]:
        out = {
            "ok": self.voice is not None,
            "uptime_s": round(time.time() - self.started_at, 1),
            "active_calls": len(self.ua.calls),
            "crm_backlog": self.crm_events.backlog,
            **({"cluster": self.cluster.health(), "ok": self.voice is not None and self.cluster.healthy()}
               if self.cluster is not None else {}),
        }
        if self.voice is not None and self.voice.handoff is not None:  # callers moved out, in, failed
            out["cluster"]["handoffs"] = dict(self.voice.handoff.stats)
        return out

    def metrics(self) -> bytes:
        return self._metrics()

