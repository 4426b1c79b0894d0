"""The voice channel: SIP calls on the channel-neutral contact core.

``VoiceChannel`` answers every inbound call, runs the service's IVR flow,
hands a ``queued`` outcome to the core, and does for a call what only voice
does: the waiting treatment (voice_waiting.py), ringing the offered
agent's registered softphone (after the core has shown the screen-pop), the
B2BUA leg to it, bridging the media when it answers — which is how a voice
offer is accepted — hold with music, hang-up, transfer to an outside number
or from the phone's REFER, and dialling a customer back for an agent
(voice_callback.py). What the channel keeps per contact (the SIP legs and the
tasks that play to the caller) is a :class:`VoiceLegs`, keyed by contact id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from callcenter import events as ev
from callcenter.apps.echo import EchoTest
from callcenter.channels.voice_callback import GONE_LEG, CallbackDialler
from callcenter.channels.voice_consult import Consults
from callcenter.channels.voice_handoff import VoiceHandoff
from callcenter.channels.voice_outbound import OutboundDialler
from callcenter.channels.voice_waiting import WaitingTreatment
from callcenter.cluster.handoff import HANDOFF_HEADER
from callcenter.config import CallbacksCfg
from callcenter.contacts.contact import WAITING, Contact, Offer, Phase
from callcenter.contacts.core import ContactCore, jsonable
from callcenter.contacts.errors import ContactError, InvalidState, NotFound
from callcenter.ivr.media_port import MediaCallPort
from callcenter.ivr.runner import IvrEngine, IvrOutcome
from callcenter.sip.b2bua import bridge_legs
from callcenter.sip.calls import Call, CallError, CallFailed
from callcenter.sip.registrar import Registrar
from callcenter.sip.ua import UserAgent
from callcenter.speech.interfaces import SpeechRecognizer, TextToSpeech
from callcenter.tasks import BackgroundTasks
from crm_bridge.addresses import normalize_phone

log = logging.getLogger(__name__)

REMOTE_END_REASONS = ("remote_bye", "cancelled")
# Legs we end on a party's behalf (the desk's Hang up): that party ended it, not the system.
ON_BEHALF_END_REASONS = {"agent_hangup": "agent"}
RING_SLACK_S = 5.0  # the router's RONA timer decides; the SIP ring timeout is only a backstop
MEDIA_FAILED = "media_failed"  # the UA ends the calls of a media worker that died with this reason
# The desk's Answer re-offers the ringing leg with these: phones that honour one of them answer at
# once (Call-Info answer-after: Polycom, Yealink, Grandstream, baresip >= 1.1 with
# sip_autoanswer=yes; Alert-Info info=alert-autoanswer: Snom, Cisco SPA; Answer-Mode: RFC 5373).
AUTO_ANSWER_HEADERS = (("Alert-Info", "<http://www.notused.com>;info=alert-autoanswer"),
                       ("Answer-Mode", "Auto"))  # fmt: skip


def ended_by(leg: Call, party: str) -> str:
    """Who ended a leg: ``party`` (caller, agent) when the far end hung up, the agent when they
    hung up from the desk, else the system."""
    if leg.end_reason in REMOTE_END_REASONS:
        return party
    return ON_BEHALF_END_REASONS.get(leg.end_reason, "system")


@dataclass(eq=False)
class VoiceLegs:
    """The voice side of one contact."""

    call: Call  # the customer's leg (a callback replaces it with the leg dialled out)
    agent_call: Call | None = None  # the B2BUA leg to the agent's phone, once answered
    ringing: asyncio.Task[None] | None = None  # the INVITE to the offered agent's phone
    treatment: asyncio.Task[None] | None = None  # what the caller hears waiting or held

    def stop_treatment(self) -> None:
        """End what the caller hears while waiting or held (announcements, music)."""
        if self.treatment is not None:
            self.treatment.cancel()
            self.treatment = None


class VoiceChannel:
    def __init__(
        self,
        core: ContactCore,
        *,
        ua: UserAgent,
        ivr: IvrEngine,
        registrar: Registrar,
        tts: TextToSpeech,
        recognizer: SpeechRecognizer | None,
        agent_sip_users: dict[str, str],
        default_region: str,
        moh: Path,
        echo_prompt: Path | None,
        voicemail_dir: Path,
        announce_every_s: float = 30.0,
        offer_options_after_s: float = 60.0,
        callbacks: CallbacksCfg | None = None,
    ) -> None:
        self.core = core
        self.ua = ua
        self.ivr = ivr
        self.registrar = registrar
        self.tts = tts
        self.recognizer = recognizer
        self.agent_sip_users = agent_sip_users
        self.sip_user_agents = {user: agent for agent, user in agent_sip_users.items()}
        self.default_region = default_region
        self.echo_prompt = echo_prompt
        self.legs: dict[str, VoiceLegs] = {}
        self.tasks = BackgroundTasks(log)
        self.waiting_room = WaitingTreatment(
            self,
            moh=moh,
            voicemail_dir=voicemail_dir,
            announce_every_s=announce_every_s,
            offer_options_after_s=offer_options_after_s,
        )
        self.dialler = CallbackDialler(self, callbacks or CallbacksCfg())
        self.outbound = OutboundDialler(self)  # click-to-dial from the desk
        self.consults = Consults(self)  # consultation (warm transfer) and conference
        self.handoff: VoiceHandoff | None = None  # several nodes: callers move to a free agent's node
        core.add_channel("voice", self)

    @property
    def host(self) -> str:
        return next(iter(self.ua.advertised.values()))[0]

    async def say(self, call: Call, text: str) -> None:
        """Speak ``text`` to one leg (English prompts of the server's own)."""
        await call.media.play(str(await self.tts.render(text, language="en")))

    # ------------------------------------------------------------------ inbound calls

    async def on_call(self, call: Call) -> None:
        """Entry point for every inbound INVITE (the UA's call handler)."""
        handed = call.request.headers.get(HANDOFF_HEADER)
        if handed is not None and self.handoff is not None:  # a caller another node moved here
            await self.handoff.adopt(call, handed, VoiceLegs)
            return
        service = self.ivr.services.resolve(call.dnis)
        ani = normalize_phone(call.ani, self.default_region) or ""
        contact = Contact(ev.new_id(), "voice", ani, call.dnis, service.name)
        cid = contact.contact_id
        call.data["contact_id"] = cid
        self.legs[cid] = VoiceLegs(call)
        self.core.arrive(
            contact,
            ev.ContactArrived(
                contact_id=cid,
                channel="voice",
                ani=ani,
                dnis=call.dnis,
                service=service.name,
                from_addr=call.from_uri,
                to_addr=call.to_uri,
                attributes={"sip_call_id": call.call_id, "display": call.from_display},
            ),
        )
        call.add_end_callback(self.caller_gone)
        try:
            if service.flow == "echo":
                self.core.move(contact, Phase.SELF_SERVICE)
                await EchoTest(self.echo_prompt)(call)  # answers by itself
                # The app served the caller: the record says self-served, not abandoned.
                path = (service.flow,)
                app = {"service": service.name, "app": service.flow}
                self.core.publish(ev.IvrCompleted(contact_id=cid, outcome="self_served", path=path, data=app))
                return
            try:
                await call.answer()
            except CallError:
                return  # the caller left before we answered; caller_gone recorded it
            await self._run_ivr(contact, self.legs[cid])
            await call.ended.wait()
        finally:
            # Self-service ends with the call: the flow's end (or the queue entry after it) did not
            # hand the contact on, and caller_gone leaves self-service to the flow.
            if contact.phase is Phase.SELF_SERVICE:
                if call.is_active:  # the flow failed, or the server is stopping
                    call.add_end_callback(lambda _c: self._end_with(contact, call))
                else:
                    self._end_with(contact, call)

    async def _run_ivr(self, contact: Contact, legs: VoiceLegs) -> None:
        call = legs.call
        port = MediaCallPort(
            call.media,
            ani=contact.ani,
            dnis=contact.dnis,
            tts=self.tts,
            recognizer=self.recognizer,
            transfer=lambda uri: self._ivr_transfer(contact, legs, uri),
            hangup=lambda: call.hangup("ivr_hangup"),
        )
        call.add_end_callback(lambda _c: port.caller_hung_up())
        call.data["ivr_stop"] = port.caller_hung_up  # the fax channel's CNG hand-over ends the flow
        self.core.move(contact, Phase.SELF_SERVICE)
        try:
            result = await self.ivr.run(port, contact_id=contact.contact_id)
        finally:
            port.close()
        if call.data.get("fax_contact_id"):
            return  # a fax machine: the call is the fax channel's now (callcenter/fax/wiring.py)
        contact.ivr_path = tuple(result.path)
        contact.ivr_titles = self.ivr.path_titles(contact.ivr_path, contact.dnis)
        contact.ivr_data = jsonable(result.variables)
        number = normalize_phone(result.callback_number or "", self.default_region)
        if result.outcome is IvrOutcome.CALLBACK and number and self.dialler.can_dial_out:
            # The flow took a number and hung up; the request waits in the queue for an agent.
            contact.callback_number = number
            await self._enqueue(contact, result.queue, result.priority, result.skills, Phase.CALLBACK)
        elif not call.is_active:
            return  # hung up during the flow: on_call ends the contact
        elif result.outcome is IvrOutcome.QUEUED:
            await self._enqueue(contact, result.queue, result.priority, result.skills, Phase.QUEUED)
        elif result.outcome is not IvrOutcome.TRANSFERRED:
            await call.hangup("ivr_done")

    async def _ivr_transfer(self, contact: Contact, legs: VoiceLegs, uri: str) -> bool:
        try:
            leg = await self.ua.place_call(uri, from_uri=None, timeout=30.0, media_near=legs.call.media)
        except CallFailed:
            return False
        if not legs.call.is_active:
            leg.terminate("caller_gone")
            return False
        self._bridge_external(contact, legs, leg)
        return True

    async def _enqueue(
        self, contact: Contact, queue: str | None, priority: int, skills: dict[str, int], phase: Phase
    ) -> None:
        service = self.ivr.services.resolve(contact.dnis)
        await self.core.customer_context(contact, "phone")
        if self.reachable(contact):  # else hung up during the lookup: on_call ends the contact
            self.core.enqueue(contact, queue or service.default_queue, priority, skills, phase=phase)

    # ------------------------------------------------------------------ the core's Channel

    def reachable(self, contact: Contact) -> bool:
        """The caller is on the line, or is waiting for a call back."""
        legs = self.legs.get(contact.contact_id)
        if legs is None:
            return False
        return legs.call.is_active or (
            contact.callback_number is not None and contact.phase is not Phase.ENDED
        )

    def waiting(self, contact: Contact) -> None:
        legs = self.legs[contact.contact_id]
        if legs.call.is_active and self.consults.completing(contact):
            # handed to the consulted agent in a moment: music, no "you are number 1"
            legs.treatment = self.tasks.spawn(self.waiting_room.music(legs), "consult-music")
        elif legs.call.is_active:
            legs.treatment = self.tasks.spawn(
                self.waiting_room.treat(contact, legs), f"treat:{contact.contact_id}"
            )

    def no_agent(self, contact: Contact, why: str) -> None:
        """No agent will come (queue full with no overflow, or maximum wait): take a message."""
        if contact.phase not in WAITING:
            return
        legs = self.legs[contact.contact_id]
        legs.stop_treatment()
        if not legs.call.is_active:  # a callback request that no agent will take
            self.core.fail(contact, "callback_failed")
            return
        self.core.move(contact, Phase.VOICEMAIL)
        self.tasks.spawn(
            self.waiting_room.take_message(
                contact, legs, f"Sorry, {why}. Please leave a message after the tone."
            ),
            "no-agent",
        )

    def present(self, contact: Contact, offer: Offer) -> None:
        if self.outbound.foreign(contact, offer):
            return  # an agent's outbound call is theirs only: dropped, nobody else is rung
        if self.consults.present(contact, offer):
            return  # a warm transfer: the consulted agent's phone is answered already
        legs = self.legs[contact.contact_id]
        legs.ringing = self.tasks.spawn(self._ring(contact, legs, offer), f"ring:{offer.agent_id}")

    async def accept_from_desk(self, contact: Contact, offer: Offer) -> None:
        """The desk's Answer while the agent's phone rings: the leg is CANCELled and offered
        again with auto-answer headers, which a phone that supports them answers at once (the
        answer then accepts the offer, as always for voice). A phone without the feature rings
        again; the agent answers it by hand. Decline needs nothing of voice: the core's decline
        withdraws the offer, which CANCELs the leg."""
        legs = self.legs.get(contact.contact_id)
        if legs is None or legs.ringing is None or legs.ringing.done() or contact.phase is not Phase.OFFERED:
            raise InvalidState("the phone is not ringing")
        if legs.ringing.get_name().startswith("auto-answer:"):
            return  # asked already: the phone is answering
        legs.ringing.cancel()  # place_call CANCELs the INVITE
        legs.ringing = self.tasks.spawn(self._ring(contact, legs, offer, auto_answer=True),
                                        f"auto-answer:{offer.agent_id}")  # fmt: skip

    def withdraw(self, contact: Contact) -> None:
        self.outbound.withdrawn(contact)
        legs = self.legs.get(contact.contact_id)
        if legs is not None and legs.ringing is not None:
            legs.ringing.cancel()  # place_call CANCELs the INVITE
            legs.ringing = None

    def forget(self, contact: Contact) -> None:
        self.outbound.forget(contact)
        self.consults.forget(contact)
        legs = self.legs.pop(contact.contact_id, None)
        if legs is not None:
            legs.stop_treatment()

    def restore_callback(self, contact: Contact) -> None:
        """A callback request kept over a restart (contacts/callback_keeper.py): the customer's
        leg is long gone; once an agent answers, the dialler calls them as for any request."""
        self.legs[contact.contact_id] = VoiceLegs(GONE_LEG)

    # ------------------------------------------------------------------ offers

    async def _ring(
        self, contact: Contact, legs: VoiceLegs, offer: Offer, *, auto_answer: bool = False
    ) -> None:
        """Alert the agent and connect; whatever goes wrong on the way ends the contact through
        the core (never half-open: the record closes, the agent is freed, the caller gets BYE)."""
        try:
            await self._alert(contact, legs, offer, auto_answer=auto_answer)
        except Exception:
            cid = contact.contact_id
            log.exception("contact %s: alerting or connecting agent %s failed", cid, offer.agent_id,
                          extra={"contact_id": cid})  # fmt: skip
            self._give_up(contact, legs, "channel_error")

    def _give_up(self, contact: Contact, legs: VoiceLegs, reason: str) -> None:
        """End a contact the channel cannot carry on with, then its legs (their end callbacks then
        find the contact over)."""
        legs.ringing = None
        if contact.phase is Phase.CONNECTED:
            self._end_connected(contact, legs, "system", reason)
            return
        if contact.phase in (Phase.QUEUED, Phase.OFFERED, Phase.CALLBACK):
            self._fail(contact, reason)
        elif self.core.contacts.get(contact.contact_id) is contact:
            self.core.end(contact, reason, "system")
        for leg in (legs.call, legs.agent_call):
            if leg is not None:
                leg.terminate(reason)

    def _fail(self, contact: Contact, reason: str) -> None:
        """A waiting or offered contact ends as failed: an agent reserved or ringing for it is
        freed without wrap-up."""
        agent = contact.agent_id
        self.core.withdraw_offer(contact, reason)
        self.core.route(self.core.router.cancel, contact.contact_id, reason, agents=(agent,) if agent else ())
        self.core.fail(contact, reason)

    async def _alert(
        self, contact: Contact, legs: VoiceLegs, offer: Offer, *, auto_answer: bool = False
    ) -> None:
        agent_id = offer.agent_id
        bindings = await self.registrar.contacts(self.agent_sip_users.get(agent_id, agent_id))
        if not bindings:
            # Routing thought the phone was registered; correct it and offer someone else.
            legs.ringing = None
            self.core.decline(contact, offer, "no_softphone", "no softphone")
            self.core.set_reachable(agent_id, False)
            return
        binding = bindings[0]
        # The screen-pop first: present() returns once the desktop has it (or a stuck desktop
        # has had its SCREEN_POP_WAIT_S), so the desktop shows the customer before the phone rings.
        # (The desk's Answer re-offers a leg of an offer presented already.)
        present = self.core.present(contact, offer) if not auto_answer else None
        shown = self.core.holds_offer(contact, offer) if present is None else await present
        if not shown:
            return  # withdrawn meanwhile (abandon, RONA)
        customer = contact.customer or {}
        headers = [("X-Interaction-Id", contact.contact_id), ("X-Queue", offer.queue)]
        if auto_answer:
            headers += [("Call-Info", f"<sip:{self.host}>;answer-after=0"), *AUTO_ANSWER_HEADERS]
        try:
            leg = await self.ua.place_call(
                binding.uri,
                dest=tuple(binding.source),
                transport=binding.transport,
                from_uri=f"sip:{contact.ani or 'anonymous'}@{self.host}",
                from_display=customer.get("name") or contact.ani or "Anonymous",
                headers=headers,
                timeout=max(1.0, offer.deadline - time.monotonic()) + RING_SLACK_S,
                media_near=legs.call.media,  # one media worker carries both legs
            )
        except CallFailed as exc:
            if self.core.holds_offer(contact, offer):
                legs.ringing = None
                self.core.decline(contact, offer, f"sip_{exc.status}", f"phone answered {exc.status}")
            return
        if not self.core.holds_offer(contact, offer):
            leg.terminate("offer_withdrawn")
            return
        legs.ringing = None
        try:
            # The agent's phone answered: that is how a voice offer is accepted.
            if legs.call.is_active:
                self.core.accept(contact.contact_id, agent_id)
                self.talk(contact, legs, leg, agent_id)
            else:  # the customer asked to be called back and is no longer on the line
                self.dialler.start(contact, legs, leg, agent_id)
        except Exception:
            leg.terminate("channel_error")  # _ring ends the contact
            raise

    def talk(self, contact: Contact, legs: VoiceLegs, leg: Call, agent_id: str) -> None:
        """Bridge the customer's leg and the agent's leg: the conversation starts."""
        legs.agent_call = leg
        legs.stop_treatment()
        legs.call.media.stop_playing()
        legs.call.media.bridge(leg.media)
        leg.data["contact_id"] = contact.contact_id
        leg.add_end_callback(lambda _leg: self._agent_leg_gone(contact, legs, _leg))
        leg.on_transfer = lambda _leg, target: self._refer_from_phone(contact, target)
        self.core.connect(contact, agent_id)

    # ------------------------------------------------------------------ ends

    def _end_with(self, contact: Contact, call: Call) -> None:
        self.core.end(contact, call.end_reason, ended_by(call, "caller"))

    def caller_gone(self, call: Call) -> None:
        """End callback of every customer leg (inbound, or dialled back)."""
        cid = call.data.get("contact_id", "")
        contact, legs = self.core.contacts.get(cid), self.legs.get(cid)
        if contact is None or legs is None or call is not legs.call:
            return  # an old leg, or a contact already over
        phase = contact.phase
        if phase is Phase.SELF_SERVICE:
            return  # the flow is still deciding (it may be a callback request); on_call ends it
        legs.stop_treatment()
        if contact.callback_number is not None and phase in (Phase.CALLBACK, Phase.OFFERED):
            return  # the customer hung up after asking for a call back: not an abandon
        if phase is Phase.QUEUED and self.handoff is not None and self.handoff.caller_left(contact):
            return  # left while being moved to another node: the move settles whose abandon it is
        if call.end_reason == MEDIA_FAILED and phase in (Phase.QUEUED, Phase.OFFERED):
            self._fail(contact, MEDIA_FAILED)  # the center lost the call: not an abandon
        elif phase is Phase.CONNECTED:
            self._end_connected(contact, legs, ended_by(call, "caller"), call.end_reason)
        elif phase in (Phase.QUEUED, Phase.OFFERED):
            self.core.abandon(contact, call.end_reason, ended_by(call, "caller"))
        else:
            self._end_with(contact, call)

    def _agent_leg_gone(self, contact: Contact, legs: VoiceLegs, leg: Call) -> None:
        if legs.agent_call is not leg or contact.phase is not Phase.CONNECTED:
            return  # a transfer released this leg on purpose
        self._end_connected(contact, legs, ended_by(leg, "agent"), leg.end_reason)

    def _end_connected(self, contact: Contact, legs: VoiceLegs, ended_by: str, reason: str) -> None:
        self.core.end_connected(contact, ended_by, reason)
        for leg in (legs.call, legs.agent_call):
            if leg is not None:
                leg.terminate("bridged_leg_ended")

    # ------------------------------------------------------------------ agent actions

    async def hold(self, contact: Contact, on_hold: bool) -> bool:
        """Hold: a re-INVITE tells the caller's phone (a=sendonly), the caller hears music,
        the agent hears silence; unhold re-INVITEs (a=sendrecv) and re-bridges. A phone
        that refuses the re-INVITE is still held locally (music, no bridge)."""
        legs = self.legs[contact.contact_id]
        if legs.agent_call is None:
            return False
        if self.consults.holds(contact):
            raise InvalidState("the consultation holds the caller: complete, conference or cancel it")
        caller, agent_media = legs.call.media, legs.agent_call.media
        if not await legs.call.hold(on_hold):
            log.info(
                "caller's phone refused the %s re-INVITE; holding locally",
                "hold" if on_hold else "resume",
                extra={"contact": contact.contact_id},
            )
        if contact.phase is not Phase.CONNECTED or legs.agent_call is None:
            return False  # the call ended while the re-INVITE was out
        if on_hold:
            caller.unbridge()
            legs.treatment = self.tasks.spawn(self.waiting_room.music(legs), "hold-music")
        else:
            legs.stop_treatment()
            caller.stop_playing()
            caller.bridge(agent_media)
        return True

    def hangup(self, contact: Contact) -> None:
        legs = self.legs[contact.contact_id]
        if legs.agent_call is not None:
            legs.agent_call.terminate("agent_hangup")

    def mute(self, contact: Contact, muted: bool) -> None:
        """The agent's audio becomes silence at the server (any phone): the customer, and a
        conference's third party, hear nothing from them; they still hear everyone."""
        legs = self.legs[contact.contact_id]
        if legs.agent_call is None:
            raise InvalidState("no call on your phone to mute")
        legs.agent_call.media.set_muted(muted)

    def send_digits(self, contact: Contact, digits: str) -> None:
        """RFC 4733 events on the customer's leg (in-band tones if it has no telephone-event);
        they take the floor from the agent's relayed audio while they play."""
        self.legs[contact.contact_id].call.media.send_dtmf(digits)

    def release_agent(self, contact: Contact) -> None:
        self.consults.agent_released(contact)  # a blind transfer ends a consultation in progress
        legs = self.legs[contact.contact_id]
        leg = legs.agent_call
        legs.stop_treatment()  # hold music, if the agent transfers a held call
        legs.call.media.unbridge()
        legs.agent_call = None
        if leg is not None:
            leg.terminate("transferred")

    def address(self, target: str) -> str:
        kind, _, value = target.partition(":")
        return target if kind == "sip" else f"sip:{value}@{self.host}"

    async def transfer_out(self, contact: Contact, address: str) -> None:
        legs = self.legs[contact.contact_id]
        consulted = self.consults.take_leg(contact)
        if consulted is not None:  # a warm transfer to a number: its leg is up already
            await legs.call.hold(False)
            if contact.phase is Phase.TRANSFERRING and consulted.is_active:
                self._bridge_external(contact, legs, consulted)
            else:
                consulted.terminate("caller_gone")
            return
        legs.treatment = self.tasks.spawn(self.waiting_room.music(legs), "transfer-music")
        try:
            leg = await self.ua.place_call(address, timeout=30.0, media_near=legs.call.media)
        except CallFailed:
            if contact.phase is Phase.TRANSFERRING:
                self.core.move(contact, Phase.FAILED)
                await legs.call.hangup("transfer_failed")
            return
        if contact.phase is not Phase.TRANSFERRING:  # the caller hung up meanwhile
            leg.terminate("caller_gone")
            return
        self._bridge_external(contact, legs, leg)

    def _bridge_external(self, contact: Contact, legs: VoiceLegs, leg: Call) -> None:
        """The caller leaves the contact center for ``leg``; the record ends with the call."""
        legs.stop_treatment()
        self.core.move(contact, Phase.EXTERNAL)
        bridge_legs(legs.call, leg)

    async def _refer_from_phone(self, contact: Contact, target_uri: str) -> int:
        """REFER from the agent's phone: a queue or agent name dials internally, else out."""
        agent_id = contact.agent_id
        if agent_id is None or contact.phase is not Phase.CONNECTED:
            return 481
        user = target_uri.split(":", 1)[-1].split("@", 1)[0]
        if user in self.core.router.queues:
            target = f"queue:{user}"
        elif user in self.sip_user_agents:
            target = f"agent:{self.sip_user_agents[user]}"
        else:
            target = target_uri
        try:
            await self.core.transfer(agent_id, target)
        except NotFound:
            return 404
        except ContactError:
            return 503
        return 200

    # ------------------------------------------------------------------ phones

    def softphone_changed(self, user: str, registered: bool) -> None:
        agent_id = self.sip_user_agents.get(user)
        if agent_id is not None:
            self.core.set_reachable(agent_id, registered)

    async def close(self) -> None:
        self.dialler.close()
        await self.tasks.close()
