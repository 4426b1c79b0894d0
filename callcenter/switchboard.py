"""The call path: IVR → queue → agent softphone with screen-pop → talk → wrap-up.

The switchboard owns every live voice contact. It answers the SIP call, runs
the service's IVR flow, turns a ``queue`` outcome into a routing Task, plays
music and position announcements while the caller waits, and acts on the
router's decisions: an OFFER pushes the screen-pop to the agent's desktop and
*then* places a B2BUA leg to the agent's registered softphone; an answer
bridges the media; RONA cancels the leg; a caller who hangs up while waiting
or ringing is an abandon. Every step is published as an event on the bus
(crm_bridge builds the interaction record from them); it never calls the CRM
writer directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from callcenter import events as ev
from callcenter.apps.echo import EchoTest
from callcenter.bus import EventBus
from callcenter.config import CallbacksCfg
from callcenter.ivr.media_port import MediaCallPort, beep_pcm
from callcenter.ivr.runner import IvrEngine
from callcenter.routing_driver import RoutingDriver
from callcenter.sip.calls import Call, CallError, CallFailed
from callcenter.sip.ua import UserAgent
from callcenter.voice_contact import Phase, VoiceContact
from callcenter.web.backend import CtiError
from callcenter.web.hub import Hub
from crm_bridge.addresses import normalize_phone
from routing.model import Decision, DecisionKind
from routing.router import Router

log = logging.getLogger(__name__)

REMOTE_END_REASONS = ("remote_bye", "cancelled")
RING_SLACK_S = 5.0  # the router's RONA timer decides; the SIP ring timeout is only a backstop
SCREEN_POP_WAIT_S = 0.25  # a stuck desktop must not delay the call by more than this
MAX_MESSAGE_S = 120.0
QUEUE_PUSH_S = 0.25


def _dial_result(exc: BaseException | None) -> str:
    status = exc.status if isinstance(exc, CallFailed) else 0
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):  # 487: our own CANCEL when ring_s ran out
        return "no_answer"
    return "failed"


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}


class Switchboard:
    def __init__(
        self,
        *,
        ua: UserAgent,
        router: Router,
        ivr: IvrEngine,
        bus: EventBus,
        hub: Hub,
        registrar: Any,
        tts: Any,
        recognizer: Any,
        crm: Any,
        agent_sip_users: dict[str, str],
        default_region: str,
        moh: Path,
        echo_prompt: Path | None,
        voicemail_dir: Path,
        announce_every_s: float = 30.0,
        offer_options_after_s: float = 60.0,
        callbacks: CallbacksCfg | None = None,
    ) -> None:
        self.ua = ua
        self.router = router
        self.ivr = ivr
        self.bus = bus
        self.hub = hub
        self.registrar = registrar
        self.tts = tts
        self.recognizer = recognizer
        self.crm = crm
        self.agent_sip_users = agent_sip_users
        self.sip_user_agents = {user: agent for agent, user in agent_sip_users.items()}
        self.default_region = default_region
        self.moh = moh
        self.echo_prompt = echo_prompt
        self.voicemail_dir = voicemail_dir
        self.announce_every_s = announce_every_s
        self.offer_options_after_s = offer_options_after_s
        self.callbacks = callbacks or CallbacksCfg()
        self.routing = RoutingDriver(router, self._on_decision)
        self.contacts: dict[str, VoiceContact] = {}
        self.agent_contact: dict[str, str] = {}  # agent → contact ringing/connected
        self.wrap_ups: dict[str, str] = {}  # agent → contact in wrap-up
        self.recent_decisions: deque[dict[str, Any]] = deque(maxlen=50)
        self._agent_states = {a: str(router.agent_state(a)) for a in router.agents}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue_push: asyncio.TimerHandle | None = None
        self._retries: dict[str, asyncio.TimerHandle] = {}  # callbacks waiting to re-enter a queue

    # ------------------------------------------------------------------ helpers

    def publish(self, event: ev.Event) -> None:
        self.bus.publish(event)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    def route(self, method: Any, *args: Any, agents: tuple[str, ...] = (), **kwargs: Any) -> bool:
        """Call the router and afterwards publish the state change of every agent touched."""
        ok = self.routing.call(method, *args, **kwargs)
        self.sync_agents(agents)
        self._queues_changed()
        return ok

    def _queues_changed(self) -> None:
        """Stream queue figures to supervisors, at most every QUEUE_PUSH_S: a burst of
        routing calls costs one snapshot, and nothing is computed with nobody watching."""
        if self._queue_push is None and self.hub.supervisors_connected():
            loop = asyncio.get_running_loop()
            self._queue_push = loop.call_later(QUEUE_PUSH_S, self._push_queues)

    def queue_figures(self) -> list[dict[str, Any]]:
        """Every queue's statistics as plain dicts (supervisor stream, snapshot, metrics)."""
        return [dataclasses.asdict(self.router.queue_stats(q)) for q in self.router.queues]

    def _push_queues(self) -> None:
        self._queue_push = None
        self.hub.to_supervisors({"type": "queues", "queues": self.queue_figures(), "ts": time.time()})

    def sync_agents(self, agent_ids: tuple[str, ...] | list[str] = ()) -> None:
        for agent_id in agent_ids:
            if agent_id not in self.router.agents:
                continue
            new = str(self.router.agent_state(agent_id))
            old = self._agent_states.get(agent_id, "offline")
            if new == old:
                continue
            self._agent_states[agent_id] = new
            reason = self.router.agents[agent_id].reason
            self.publish(ev.AgentStateChanged(agent_id=agent_id, old=old, new=new, reason=reason))
            message = {"type": "agent_state", "agent_id": agent_id, "old": old, "state": new,
                       "reason": reason, "ts": time.time()}  # fmt: skip
            self.hub.to_agent(agent_id, message)
            self.hub.to_supervisors(message)

    # ------------------------------------------------------------------ inbound calls

    async def on_call(self, call: Call) -> None:
        """Entry point for every inbound INVITE (the UA's call handler)."""
        contact_id = ev.new_id()
        service = self.ivr.services.resolve(call.dnis)
        ani = normalize_phone(call.ani, self.default_region) or ""
        contact = VoiceContact(contact_id, call, ani, call.dnis, service.name)
        call.data["contact_id"] = contact_id
        self.contacts[contact_id] = contact
        self.publish(ev.ContactArrived(
            contact_id=contact_id, channel="voice", ani=ani, dnis=call.dnis, service=service.name,
            from_addr=call.from_uri, to_addr=call.to_uri,
            attributes={"sip_call_id": call.call_id, "display": call.from_display},
        ))  # fmt: skip
        call.add_end_callback(self._caller_gone)
        try:
            if service.flow == "echo":
                await EchoTest(self.echo_prompt)(call)  # answers by itself
                return
            try:
                await call.answer()
            except CallError:
                return  # the caller left before we answered; _caller_gone recorded it
            await self._run_ivr(contact)
            await call.ended.wait()
        finally:
            if contact.callback_number is None or contact.end_published:
                self.contacts.pop(contact_id, None)  # else it waits for its call back

    async def _run_ivr(self, contact: VoiceContact) -> None:
        call = contact.call
        port = MediaCallPort(
            call.media, ani=contact.ani, dnis=contact.dnis, tts=self.tts, recognizer=self.recognizer,
            transfer=lambda uri: self._ivr_transfer(contact, uri), hangup=lambda: call.hangup("ivr_hangup"),
        )  # fmt: skip
        call.add_end_callback(lambda _c: port.caller_hung_up())
        contact.in_ivr = True
        try:
            result = await self.ivr.run(port, contact_id=contact.contact_id)
        finally:
            port.close()
            contact.in_ivr = False
        contact.ivr_path = tuple(result.path)
        contact.ivr_data = _jsonable(result.variables)
        number = normalize_phone(result.callback_number or "", self.default_region)
        if result.outcome == "callback" and number and self.callbacks.dial_uri:
            # The flow took a number and hung up; the request waits in the queue for an agent.
            contact.callback_number = number
            await self._enqueue(contact, result.queue, result.priority, result.skills)
            return
        if not call.is_active:
            self._caller_gone(call)  # hung up during the flow: the contact ends here
            return
        if result.outcome == "queued":
            await self._enqueue(contact, result.queue, result.priority, result.skills)
        elif result.outcome != "transferred":
            await call.hangup("ivr_done")

    async def _ivr_transfer(self, contact: VoiceContact, uri: str) -> bool:
        try:
            leg = await self.ua.place_call(uri, from_uri=None, timeout=30.0, media_near=contact.call.media)
        except CallFailed:
            return False
        self._bridge_external(contact, leg)
        return True

    # ------------------------------------------------------------------ queueing

    async def _customer_context(self, contact: VoiceContact) -> None:
        """Customer record and recent history for the screen-pop, fetched once at queue entry
        so that the offer itself needs no I/O."""
        if self.crm is None or not contact.ani:
            return
        try:
            customer = await self.crm.customer_by_address("phone", contact.ani)
            if customer is not None:
                contact.customer = _jsonable(customer) | {"id": customer.get("id")}
                recent = await self.crm.recent_interactions(customer["id"], 6)
                contact.recent = [_jsonable(r) for r in recent if r.get("id") != contact.contact_id]
        except Exception:  # the CRM being down must not stop the call reaching an agent
            log.exception("customer lookup failed for %s", contact.contact_id)

    async def _enqueue(
        self, contact: VoiceContact, queue: str | None, priority: int, skills: dict[str, int]
    ) -> None:
        service = self.ivr.services.resolve(contact.dnis)
        queue = queue or service.default_queue
        await self._customer_context(contact)
        if not contact.reachable:
            return
        contact.queue = queue
        contact.priority = priority
        contact.skills = dict(skills)
        contact.phase = Phase.QUEUED
        contact.queued_at = time.time()
        self.publish(ev.ContactQueued(contact_id=contact.contact_id, queue=queue, priority=priority,
                                      skills=dict(skills)))  # fmt: skip
        last_agent = next((r.get("agent_id") for r in contact.recent if r.get("agent_id")), None)
        if contact.call.is_active:
            contact.treatment = self._spawn(self._waiting_treatment(contact), f"treat:{contact.contact_id}")
        ok = self._submit(contact, preferred_agent=last_agent if last_agent in self.router.agents else None)
        if not ok:
            self._spawn(self._no_agent(contact, "this line cannot take calls right now"), "no-agent")

    def _submit(
        self, contact: VoiceContact, *, preferred_agent: str | None = None, created: float | None = None
    ) -> bool:
        """Hand the contact to routing in its queue, with its skills, priority and tier."""
        customer = contact.customer or {}
        return self.route(
            self.router.submit, contact.contact_id, contact.queue or "", "voice", required=contact.skills,
            priority=contact.priority, preferred_agent=preferred_agent, created=created,
            attributes={"tier": customer.get("tier") or "standard", "service": contact.service},
        )  # fmt: skip

    async def _waiting_treatment(self, contact: VoiceContact) -> None:
        """Position and estimated wait, then music, until the contact leaves the queue.
        Past ``offer_options_after_s`` the caller may press 1 to leave a message instead
        of waiting, or 2 to ask for a call back."""
        media = contact.call.media
        media.on_dtmf = lambda digit, _source: self._queue_key(contact, digit)
        try:
            while contact.phase in (Phase.QUEUED, Phase.RINGING) and contact.call.is_active:
                if contact.phase is Phase.QUEUED:
                    text = self._position_text(contact.contact_id)
                    if contact.waited_s() >= self.offer_options_after_s:
                        text += " To leave a message instead, press 1."
                        if self._can_call_back(contact):
                            text += " To be called back, press 2."
                    if text:
                        path = await self.tts.render(text.strip(), language="en")
                        await media.play(str(path))
                deadline = time.monotonic() + self.announce_every_s
                while contact.phase in (Phase.QUEUED, Phase.RINGING) and time.monotonic() < deadline:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(media.play(str(self.moh)), deadline - time.monotonic())
        finally:
            with contextlib.suppress(Exception):
                media.stop_playing()

    def _queue_key(self, contact: VoiceContact, digit: str) -> None:
        # The keys work from the moment the options are due, even mid-announcement.
        if contact.phase is not Phase.QUEUED or digit not in "12":
            return
        if contact.waited_s() < self.offer_options_after_s:
            return
        if digit == "2" and self._can_call_back(contact):
            # The task stays where it is in the queue; only the caller's line goes.
            contact.callback_number = contact.ani
            self._stop_treatment(contact)
            self.publish(ev.CallbackRequested(contact_id=contact.contact_id, number=contact.ani))
            self._spawn(self._goodbye(contact, "Thank you. You keep your place in the queue, and we "
                                               "will call you back when it is your turn. Goodbye."),
                        "callback")  # fmt: skip
            return
        self.route(self.router.cancel, contact.contact_id, "caller chose " +
                   ("voicemail" if digit == "1" else "callback"))  # fmt: skip
        self._leave_routing(contact)
        if digit == "1":
            self._spawn(self._take_message(contact, "Please leave your message after the tone."), "vm")
        else:
            # No way to dial out (callbacks.dial_uri unset, or the number was withheld):
            # the request is recorded for people to work from the CRM.
            self.publish(ev.CallbackRequested(contact_id=contact.contact_id, number=contact.ani))
            self._spawn(self._goodbye(contact, "Thank you. We will call you back as soon as an agent "
                                               "is free. Goodbye."), "callback")  # fmt: skip

    def _can_call_back(self, contact: VoiceContact) -> bool:
        return self.callbacks.dial_uri is not None and bool(contact.ani)

    @staticmethod
    def _stop_treatment(contact: VoiceContact) -> None:
        """End what the caller hears while waiting or held (announcements, music)."""
        if contact.treatment is not None:
            contact.treatment.cancel()
            contact.treatment = None

    def _leave_routing(self, contact: VoiceContact) -> None:
        contact.phase = Phase.ENDED
        contact.routed.set()
        self._stop_treatment(contact)

    async def _goodbye(self, contact: VoiceContact, text: str) -> None:
        media = contact.call.media
        media.stop_playing()
        await media.play(str(await self.tts.render(text, language="en")))
        if contact.phase is not Phase.CONNECTED:  # an agent may have come while we spoke
            await contact.call.hangup("callback_requested")

    def _position_text(self, contact_id: str) -> str:
        try:
            position = self.router.position(contact_id)
            wait = self.router.estimated_wait(contact_id)
        except Exception:
            return ""
        if position is None:
            return ""
        text = f"You are number {position} in the queue."
        if math.isfinite(wait) and wait > 0:
            minutes = max(1, round(wait / 60))
            text += f" Your expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
        return text

    async def _no_agent(self, contact: VoiceContact, why: str) -> None:
        """No agent will come (queue full with no overflow, or maximum wait): take a message."""
        self._leave_routing(contact)
        if contact.call.is_active:
            await self._take_message(contact, f"Sorry, {why}. Please leave a message after the tone.")

    async def _take_message(self, contact: VoiceContact, prompt: str) -> None:
        """Record a voicemail until the caller hangs up (or MAX_MESSAGE_S); it becomes an
        attachment of the interaction record through the VoicemailRecorded event."""
        call = contact.call
        media = call.media
        media.stop_playing()
        await media.play(str(await self.tts.render(prompt, language="en")))
        await media.play(beep_pcm())
        if not call.is_active:
            return
        self.voicemail_dir.mkdir(parents=True, exist_ok=True)
        media.start_recording(str(self.voicemail_dir / f"{contact.contact_id}.wav"))
        # Stop the recording in the end callback: it runs before the call closes its media.
        call.add_end_callback(lambda _c: self._spawn(
            self._message_saved(contact.contact_id, media.finish_recording()), "voicemail-saved"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.ended.wait(), MAX_MESSAGE_S)
        await call.hangup("voicemail_done")

    async def _message_saved(self, contact_id: str,
                             recording: Awaitable[tuple[str, int, str, float] | None]) -> None:
        result = await recording  # at once in process; a media worker answers over its pipe
        if result is not None:
            path, size, sha, seconds = result
            self.publish(ev.VoicemailRecorded(contact_id=contact_id, path=path, size=size, sha256=sha,
                                              duration_s=seconds))  # fmt: skip

    # ------------------------------------------------------------------ routing decisions

    def _on_decision(self, d: Decision) -> None:
        info = d.as_dict()
        info["ts"] = time.time()
        self.recent_decisions.append(info)
        self.hub.to_supervisors({"type": "decision", **info})
        contact = self.contacts.get(d.task_id)
        kind = d.kind
        if kind is DecisionKind.OFFER and d.agent_id and d.reservation is not None:
            if contact is None or not contact.reachable:
                self.route(self.router.cancel, d.task_id, "gone", agents=(d.agent_id,))
                return
            contact.phase = Phase.RINGING
            contact.agent_id = d.agent_id
            contact.reservation_id = d.reservation.id
            self.agent_contact[d.agent_id] = contact.contact_id
            contact.ringing = self._spawn(self._ring(contact, d), f"ring:{d.agent_id}")
        elif kind is DecisionKind.RONA and contact is not None:
            self._withdraw_offer(contact, "rona")
        elif kind is DecisionKind.OVERFLOW and contact is not None and d.target_queue:
            contact.queue = d.target_queue
            self.publish(ev.ContactQueued(contact_id=contact.contact_id, queue=d.target_queue,
                                          priority=contact.priority, skills=contact.skills))  # fmt: skip
        elif kind in (DecisionKind.EXITED, DecisionKind.REFUSED) and contact is not None:
            why = "the queue is full" if kind is DecisionKind.REFUSED else "all our agents are busy"
            self._spawn(self._no_agent(contact, why), "no-agent")
        elif kind is DecisionKind.WRAP_UP_ENDED and d.agent_id:
            cid = self.wrap_ups.pop(d.agent_id, None)
            if cid is not None:
                self.publish(ev.WrapUpCompleted(contact_id=cid, agent_id=d.agent_id,
                                                disposition="", notes="wrap-up time ended"))  # fmt: skip
        if d.agent_id:
            self.sync_agents((d.agent_id,))

    def _withdraw_offer(self, contact: VoiceContact, reason: str) -> None:
        """The offer to the ringing agent is over (RONA, reject, abandon): stop their phone."""
        agent_id, res = contact.agent_id, contact.reservation_id
        if agent_id is None or res is None:
            return
        self.publish(ev.OfferRejected(contact_id=contact.contact_id, agent_id=agent_id,
                                      reservation_id=res, reason=reason))  # fmt: skip
        self.hub.to_agent(agent_id, {"type": "offer_withdrawn", "contact_id": contact.contact_id,
                                     "reason": reason, "ts": time.time()})  # fmt: skip
        if contact.ringing is not None:
            contact.ringing.cancel()  # place_call CANCELs the INVITE
            contact.ringing = None
        if self.agent_contact.get(agent_id) == contact.contact_id:
            del self.agent_contact[agent_id]
        contact.agent_id = contact.reservation_id = None
        if contact.phase is Phase.RINGING:
            contact.phase = Phase.QUEUED

    async def _ring(self, contact: VoiceContact, d: Decision) -> None:
        agent_id = d.agent_id or ""
        res = d.reservation
        assert res is not None
        user = self.agent_sip_users.get(agent_id, agent_id)
        bindings = await self.registrar.contacts(user)
        if not bindings:
            # Routing thought the phone was registered; correct it and offer someone else.
            contact.ringing = None
            self._withdraw_offer(contact, "no_softphone")
            self.route(self.router.reject, res.id, "no softphone", agents=(agent_id,))
            self.route(self.router.set_softphone, agent_id, False, agents=(agent_id,))
            return
        binding = bindings[0]
        # The screen-pop goes out first, so the desktop shows the customer before the phone
        # rings: wait (briefly) until it is written to the desktop's socket, then INVITE.
        sent = self.hub.deliver_to_agent(agent_id, contact.screen_pop(d.explanation.text))
        if sent:
            await asyncio.wait(sent, timeout=SCREEN_POP_WAIT_S)
        if contact.reservation_id != res.id or not contact.reachable:
            return  # withdrawn meanwhile (abandon, RONA)
        self.publish(ev.AgentOffered(contact_id=contact.contact_id, agent_id=agent_id, queue=d.queue,
                                     reservation_id=res.id, explanation=d.explanation.text))  # fmt: skip
        customer = contact.customer or {}
        host = next(iter(self.ua.advertised.values()))[0]
        try:
            leg = await self.ua.place_call(
                binding.uri,
                dest=tuple(binding.source),
                transport=binding.transport,
                from_uri=f"sip:{contact.ani or 'anonymous'}@{host}",
                from_display=customer.get("name") or contact.ani or "Anonymous",
                headers=[("X-Interaction-Id", contact.contact_id), ("X-Queue", d.queue)],
                timeout=max(1.0, res.deadline - time.monotonic()) + RING_SLACK_S,
                media_near=contact.call.media,  # one media worker carries both legs
            )
        except CallFailed as exc:
            if contact.reservation_id == res.id and contact.reachable:
                contact.ringing = None
                self._withdraw_offer(contact, f"sip_{exc.status}")
                self.route(self.router.reject, res.id, f"phone answered {exc.status}", agents=(agent_id,))
            return
        if contact.reservation_id != res.id or not contact.reachable:
            leg.terminate("offer_withdrawn")
            return
        contact.ringing = None
        if contact.call.is_active:
            self._connect(contact, leg, agent_id, res.id)
        else:  # the customer asked to be called back and is no longer on the line
            self._spawn(self._call_back(contact, leg, agent_id, res.id), f"callback:{contact.contact_id}")

    def _connect(self, contact: VoiceContact, leg: Call, agent_id: str, reservation_id: str) -> None:
        self.route(self.router.accept, reservation_id, agents=(agent_id,))
        self._talk(contact, leg, agent_id)

    def _talk(self, contact: VoiceContact, leg: Call, agent_id: str) -> None:
        """Bridge the customer's leg and the agent's leg: the conversation starts."""
        contact.agent_call = leg
        contact.phase = Phase.CONNECTED
        contact.connected_at = time.time()
        contact.routed.set()
        self._stop_treatment(contact)
        contact.call.media.stop_playing()
        contact.call.media.bridge(leg.media)
        leg.data["contact_id"] = contact.contact_id
        leg.add_end_callback(lambda _leg: self._agent_leg_gone(contact, _leg))
        leg.on_transfer = lambda _leg, target: self._refer_from_phone(contact, target)
        self.publish(ev.ContactConnected(contact_id=contact.contact_id, agent_id=agent_id))
        self.hub.to_agent(agent_id, {"type": "connected", "contact": contact.summary(), "ts": time.time()})

    # ------------------------------------------------------------------ callbacks

    async def _call_back(self, contact: VoiceContact, agent_leg: Call, agent_id: str, res_id: str) -> None:
        """The agent answered a callback: dial the customer through ``callbacks.dial_uri``
        while the agent listens; bridge when they answer. If they do not, the request
        goes back to its place in the queue after ``retry_after_s``, up to
        ``max_attempts`` dials in all."""
        cfg = self.callbacks
        number = contact.callback_number or ""
        created = self.router.tasks[contact.contact_id].created  # its place in the queue
        self.route(self.router.accept, res_id, agents=(agent_id,))
        contact.phase = Phase.DIALLING
        contact.agent_call = agent_leg
        contact.callback_attempts += 1
        self.hub.to_agent(agent_id, {"type": "dialling", "contact": contact.summary(), "number": number,
                                     "attempt": contact.callback_attempts, "ts": time.time()})  # fmt: skip
        spoken = " ".join(number.lstrip("+"))
        self._spawn(self._tell(agent_leg, f"Calling the customer back on {spoken}."), "callback-tell")
        host = next(iter(self.ua.advertised.values()))[0]
        dial = self._spawn(self.ua.place_call(
            cfg.uri_for(number), from_uri=f"sip:{contact.dnis or 'callcenter'}@{host}",
            headers=[("X-Interaction-Id", contact.contact_id)], timeout=cfg.ring_s,
            media_near=agent_leg.media,
        ), f"dial:{contact.contact_id}")  # fmt: skip
        agent_gone = asyncio.ensure_future(agent_leg.ended.wait())
        await asyncio.wait({dial, agent_gone}, return_when=asyncio.FIRST_COMPLETED)
        agent_gone.cancel()
        leg: Call | None = None
        if not dial.done():  # the agent hung up first: place_call CANCELs the INVITE
            dial.cancel()
            result = "agent_hung_up"
        elif dial.exception() is not None:
            result = _dial_result(dial.exception())
        else:
            leg = dial.result()
            result = "answered" if agent_leg.is_active else "agent_hung_up"
        self.publish(ev.CallbackAttempted(contact_id=contact.contact_id, agent_id=agent_id, number=number,
                                          attempt=contact.callback_attempts, result=result))  # fmt: skip
        retry = result != "answered" and contact.callback_attempts < cfg.max_attempts
        self.hub.to_agent(agent_id, {"type": "callback_result", "contact_id": contact.contact_id,
                                     "result": result, "retry": retry, "ts": time.time()})  # fmt: skip
        if result == "answered" and leg is not None:
            contact.call = leg
            leg.data["contact_id"] = contact.contact_id
            leg.add_end_callback(self._caller_gone)
            self._talk(contact, agent_leg, agent_id)
            return
        if leg is not None:
            leg.terminate("agent_gone")
        agent_leg.terminate("callback_not_answered")
        contact.agent_call = None
        contact.agent_id = contact.reservation_id = None
        self.agent_contact.pop(agent_id, None)
        self.route(self.router.cancel, contact.contact_id, f"callback {result}", agents=(agent_id,))
        if not retry:
            contact.phase = Phase.ENDED
            self._publish_end(contact, "callback_failed", "system")
            return
        contact.phase = Phase.QUEUED
        self._retries[contact.contact_id] = asyncio.get_running_loop().call_later(
            cfg.retry_after_s, self._retry_callback, contact, created)  # fmt: skip

    def _retry_callback(self, contact: VoiceContact, created: float) -> None:
        """Back into the queue with the original creation time, so it keeps its place."""
        self._retries.pop(contact.contact_id, None)
        if contact.phase is not Phase.QUEUED or contact.contact_id not in self.contacts:
            return
        if not self._submit(contact, created=created):
            contact.phase = Phase.ENDED
            self._publish_end(contact, "callback_failed", "system")

    async def _tell(self, leg: Call, text: str) -> None:
        with contextlib.suppress(Exception):  # a courtesy prompt; its failure must not stop the dial
            await leg.media.play(str(await self.tts.render(text, language="en")))

    # ------------------------------------------------------------------ ends

    def _caller_gone(self, call: Call) -> None:
        contact = self.contacts.get(call.data.get("contact_id", ""))
        if contact is None or call is not contact.call or contact.in_ivr:
            return  # an old leg, or the flow is still deciding (it may be a callback request)
        self._stop_treatment(contact)
        if contact.callback_number is not None and contact.phase in (Phase.QUEUED, Phase.RINGING):
            return  # the customer hung up after asking for a call back: not an abandon
        ended_by = "caller" if call.end_reason in REMOTE_END_REASONS else "system"
        if contact.phase is Phase.CONNECTED:
            self._end_connected(contact, ended_by, call.end_reason)
            return
        if contact.phase in (Phase.QUEUED, Phase.RINGING):
            where = "ringing" if contact.phase is Phase.RINGING else "queue"
            agent = contact.agent_id
            self.publish(ev.ContactAbandoned(contact_id=contact.contact_id, waited_s=contact.waited_s(),
                                             where=where))  # fmt: skip
            self._withdraw_offer(contact, "abandoned")
            self.route(self.router.cancel, contact.contact_id, "abandoned", agents=(agent,) if agent else ())
        elif contact.phase is Phase.TRANSFERRING and contact.agent_call is not None:
            contact.agent_call.terminate("caller_gone")
        contact.phase = Phase.ENDED
        contact.routed.set()
        self._publish_end(contact, call.end_reason, ended_by)

    def _publish_end(self, contact: VoiceContact, reason: str, ended_by: str) -> None:
        """ContactEnded, exactly once: ending one leg ends the other, and both report it."""
        if not contact.end_published:
            contact.end_published = True
            self.publish(ev.ContactEnded(contact_id=contact.contact_id, reason=reason or "ended",
                                         ended_by=ended_by))  # fmt: skip
            if contact.callback_number is not None:
                self.contacts.pop(contact.contact_id, None)  # on_call may have let go of it long ago

    def _agent_leg_gone(self, contact: VoiceContact, leg: Call) -> None:
        if contact.agent_call is not leg or contact.phase is not Phase.CONNECTED:
            return  # a transfer released this leg on purpose
        ended_by = "agent" if leg.end_reason in REMOTE_END_REASONS else "system"
        self._end_connected(contact, ended_by, leg.end_reason)

    def _end_connected(self, contact: VoiceContact, ended_by: str, reason: str) -> None:
        contact.phase = Phase.ENDED
        agent_id = contact.agent_id or ""
        self.agent_contact.pop(agent_id, None)
        self.wrap_ups[agent_id] = contact.contact_id
        self.route(self.router.complete, contact.contact_id, agents=(agent_id,))
        self._publish_end(contact, reason, ended_by)
        for leg in (contact.call, contact.agent_call):
            if leg is not None:
                leg.terminate("bridged_leg_ended")
        self.hub.to_agent(agent_id, {"type": "wrapup", "contact_id": contact.contact_id,
                                     "ended_by": ended_by, "ts": time.time()})  # fmt: skip

    # ------------------------------------------------------------------ agent actions

    def connected_contact(self, agent_id: str) -> VoiceContact:
        cid = self.agent_contact.get(agent_id)
        contact = self.contacts.get(cid or "")
        if contact is None or contact.phase is not Phase.CONNECTED:
            raise CtiError(409, "no connected call")
        return contact

    def submit_wrap_up(self, agent_id: str, disposition: str, notes: str) -> None:
        cid = self.wrap_ups.pop(agent_id, None)
        if cid is None:
            raise CtiError(409, "no contact in wrap-up")
        self.route(self.router.end_wrap_up, cid, agents=(agent_id,))
        self.publish(ev.WrapUpCompleted(contact_id=cid, agent_id=agent_id, disposition=disposition,
                                        notes=notes))  # fmt: skip

    async def set_hold(self, agent_id: str, on_hold: bool) -> None:
        """Hold: a re-INVITE tells the caller's phone (a=sendonly), the caller hears music,
        the agent hears silence; unhold re-INVITEs (a=sendrecv) and re-bridges. A phone
        that refuses the re-INVITE is still held locally (music, no bridge)."""
        contact = self.connected_contact(agent_id)
        if contact.on_hold == on_hold or contact.agent_call is None:
            return
        caller, agent_media = contact.call.media, contact.agent_call.media
        contact.on_hold = on_hold
        if not await contact.call.hold(on_hold):
            log.info("caller's phone refused the %s re-INVITE; holding locally",
                     "hold" if on_hold else "resume", extra={"contact": contact.contact_id})  # fmt: skip
        if contact.phase is not Phase.CONNECTED or contact.agent_call is None:
            return  # the call ended while the re-INVITE was out
        if on_hold:
            caller.unbridge()
            contact.treatment = self._spawn(self._music(contact), "hold-music")
        else:
            self._stop_treatment(contact)
            caller.stop_playing()
            caller.bridge(agent_media)
        self.publish(ev.ContactHeld(contact_id=contact.contact_id, agent_id=agent_id, on_hold=on_hold))
        self.hub.to_agent(agent_id, {"type": "hold", "on_hold": on_hold, "contact_id": contact.contact_id})

    async def _music(self, contact: VoiceContact) -> None:
        """Music on hold to the caller until this task is cancelled (unhold, transfer
        answered, caller gone) or the call's media closes."""
        media = contact.call.media
        try:
            await media.play(str(self.moh), loop=True)
        finally:
            with contextlib.suppress(Exception):
                media.stop_playing()

    async def hangup(self, agent_id: str) -> None:
        contact = self.connected_contact(agent_id)
        if contact.agent_call is not None:
            contact.agent_call.terminate("agent_hangup")

    async def transfer(self, agent_id: str, target: str) -> None:
        """Blind transfer: ``queue:NAME``, ``agent:ID`` or a ``sip:``/``tel:`` address."""
        contact = self.connected_contact(agent_id)
        kind, _, value = target.partition(":")
        if kind == "queue":
            if value not in self.router.queues:
                raise CtiError(404, f"no queue {value!r}")
            self._requeue(contact, agent_id, value, target)
        elif kind == "agent":
            if value not in self.router.agents:
                raise CtiError(404, f"no agent {value!r}")
            if value == agent_id:
                raise CtiError(409, "cannot transfer to yourself")
            # Same queue, with the target agent preferred (routing offers them first).
            self._requeue(contact, agent_id, contact.queue or "", target, preferred_agent=value)
        else:
            uri = target if kind == "sip" else f"sip:{value}@{next(iter(self.ua.advertised.values()))[0]}"
            await self._transfer_out(contact, agent_id, uri)

    def _release_agent_leg(self, contact: VoiceContact, agent_id: str, target: str) -> None:
        contact.phase = Phase.TRANSFERRING
        leg = contact.agent_call
        contact.call.media.unbridge()
        contact.agent_call = None
        self.agent_contact.pop(agent_id, None)
        contact.agent_id = None
        if leg is not None:
            leg.terminate("transferred")
        self.publish(ev.ContactTransferred(contact_id=contact.contact_id, from_agent=agent_id, target=target))
        self.hub.to_agent(agent_id, {"type": "transferred", "contact_id": contact.contact_id,
                                     "target": target, "ts": time.time()})  # fmt: skip

    def _requeue(
        self,
        contact: VoiceContact,
        agent_id: str,
        queue: str,
        target: str,
        *,
        preferred_agent: str | None = None,
    ) -> None:
        self._release_agent_leg(contact, agent_id, target)
        contact.phase = Phase.QUEUED
        contact.queue = queue
        contact.connected_at = None
        contact.routed.clear()
        # The caller's language still matters in the new queue; the old department's skills do not.
        languages = set(self.ivr.services.language_skills.values())
        contact.skills = {k: v for k, v in contact.skills.items() if k in languages}
        self.publish(ev.ContactQueued(contact_id=contact.contact_id, queue=queue, priority=contact.priority,
                                      skills=contact.skills))  # fmt: skip
        contact.treatment = self._spawn(self._waiting_treatment(contact), f"treat:{contact.contact_id}")
        self.route(self.router.transfer, contact.contact_id, queue, required=contact.skills,
                   preferred_agent=preferred_agent, agents=(agent_id,))  # fmt: skip

    async def _transfer_out(self, contact: VoiceContact, agent_id: str, uri: str) -> None:
        self._release_agent_leg(contact, agent_id, uri)
        self.wrap_ups[agent_id] = contact.contact_id
        self.route(self.router.complete, contact.contact_id, agents=(agent_id,))
        self.hub.to_agent(agent_id, {"type": "wrapup", "contact_id": contact.contact_id,
                                     "ended_by": "transfer", "ts": time.time()})  # fmt: skip
        contact.treatment = self._spawn(self._music(contact), "transfer-music")
        try:
            leg = await self.ua.place_call(uri, timeout=30.0, media_near=contact.call.media)
        except CallFailed:
            await contact.call.hangup("transfer_failed")
            return
        self._bridge_external(contact, leg)

    def _bridge_external(self, contact: VoiceContact, leg: Call) -> None:
        self._stop_treatment(contact)
        contact.phase = Phase.ENDED  # leaves the contact center; the record ends with the call
        contact.call.media.stop_playing()
        contact.call.media.bridge(leg.media)
        leg.add_end_callback(lambda _l: contact.call.terminate("bridged_leg_ended"))
        contact.call.add_end_callback(lambda _c: leg.terminate("bridged_leg_ended"))
        contact.routed.set()

    async def _refer_from_phone(self, contact: VoiceContact, target_uri: str) -> int:
        """REFER from the agent's phone: a queue or agent name dials internally, else out."""
        agent_id = contact.agent_id
        if agent_id is None or contact.phase is not Phase.CONNECTED:
            return 481
        user = target_uri.split(":", 1)[-1].split("@", 1)[0]
        if user in self.router.queues:
            target = f"queue:{user}"
        elif user in self.sip_user_agents:
            target = f"agent:{self.sip_user_agents[user]}"
        else:
            target = target_uri
        try:
            await self.transfer(agent_id, target)
        except CtiError as exc:
            return 404 if exc.status == 404 else 503
        return 200

    # ------------------------------------------------------------------ agents and phones

    def softphone_changed(self, user: str, registered: bool) -> None:
        agent_id = self.sip_user_agents.get(user)
        if agent_id is not None:
            self.route(self.router.set_softphone, agent_id, registered, agents=(agent_id,))

    async def close(self) -> None:
        self.routing.close()
        if self._queue_push is not None:
            self._queue_push.cancel()
        for handle in self._retries.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
