"""Consultation (warm transfer) and three-way conference on a connected call.

The agent consults another agent (their registered phone), a queue (whoever serves it and
is free now: the longest idle; nobody free is a refusal, as waiting is a blind transfer's
job) or a number (through ``callbacks.dial_uri``): the customer is put on hold with music,
the server calls the target with its media on the customer's worker, and once it answers
the agent's leg is bridged to the target's — they talk privately. Then:

- **Complete**: the customer goes to the target and the agent into wrap-up. An outside
  number: the customer's leg is bridged to the target's, as a blind transfer out would
  (the record ends with the call). An agent: the contact moves to one of their queues with
  them preferred, at the top priority, and routing offers it to them at once (the books stay
  right: their state, handled count and AHT); the offer connects the leg already answered,
  nothing rings again. The target agent is Not ready (reason ``consult``) while consulted, so
  routing offers them nothing else meanwhile.
- **Cancel**: the target's leg is hung up, the customer comes back to the agent.
- **Conference**: the customer comes off hold and the three legs are mixed by the call's
  mixer (callcenter/media/mixer.py) in its three-way (barge) mode with the target in the
  third seat: each hears the other two. The agent may then leave (Complete: the other two
  stay connected), drop the target (Cancel), or hang up (everyone's call ends).

A target that declines, does not answer or hangs up brings the customer back to the agent
with a desk message saying so. Each consultation becomes one ``Consultation`` event in the
interaction record (target, when answered, conference and its participants, result).
The live state reaches the agent's desk as ``ConsultUpdated`` (``{"type": "consult"}``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callcenter import events as ev
from callcenter.contacts.callback_worklist import TAKE_PRIORITY
from callcenter.contacts.contact import Contact, Offer, Phase
from callcenter.contacts.errors import Invalid, InvalidState, NotFound
from callcenter.media.mixer import MixControl
from callcenter.sip.calls import Call, CallFailed
from crm_bridge.addresses import normalize_phone
from routing.model import Presence

if TYPE_CHECKING:
    from callcenter.channels.voice import VoiceChannel, VoiceLegs

log = logging.getLogger(__name__)
RING_S = 30.0
CONSULT_REASON = "consult"  # the target agent's not-ready reason while consulted
DECLINED = {486: "is busy", 600: "is busy", 603: "declined", 480: "is unavailable",
            408: "did not answer", 487: "did not answer"}  # fmt: skip


@dataclass(eq=False)
class Consult:
    contact: Contact
    agent_id: str
    target: str  # agent:ID | number:+E164
    label: str  # the target for people: "Bob (1002)", "+441632960999"
    uri: str
    dest: tuple[str, int] | None = None
    transport: str | None = None
    target_agent: str | None = None
    prev_state: tuple[str, str] | None = None  # the target agent's state before the consult
    started: float = field(default_factory=time.time)
    answered: float | None = None
    conference_from: float | None = None
    leg: Call | None = None
    dialling: asyncio.Task[None] | None = None
    mix: MixControl | None = None
    state: str = "calling"  # calling | talking | conference | completing | over
    own_hold: bool = False  # the consultation itself is holding or resuming the customer

    @property
    def participants(self) -> list[str]:
        return ["customer", f"agent:{self.agent_id}", self.target]


class Consults:
    """The consultations of a voice channel's calls, by contact id."""

    def __init__(self, channel: VoiceChannel) -> None:
        self.channel = channel
        self.core = channel.core
        self.active: dict[str, Consult] = {}
        # the supervisor monitoring service's answer to "is this call monitored?" (the mixer's
        # third seat is then taken); set by the wiring
        self.monitored: Callable[[str], bool] = lambda _cid: False

    # ------------------------------------------------------------------ queries and hooks
    def of(self, agent_id: str, contact_id: str) -> Consult:
        c = self.active.get(contact_id)
        if c is None or c.agent_id != agent_id:
            raise InvalidState("no consultation on this call")
        return c

    def view(self, contact_id: str) -> dict[str, object] | None:
        c = self.active.get(contact_id)
        if c is None:
            return None
        return {"target": c.target, "label": c.label, "state": c.state, "muted": c.contact.muted}

    def holds(self, contact: Contact) -> bool:
        """The agent's Hold is refused while a consultation holds the customer itself."""
        c = self.active.get(contact.contact_id)
        return c is not None and not c.own_hold

    def completing(self, contact: Contact) -> bool:
        c = self.active.get(contact.contact_id)
        return c is not None and c.state == "completing"

    def present(self, contact: Contact, offer: Offer) -> bool:
        """A completing consultation's offer to the consulted agent: their leg is already up."""
        c = self.active.get(contact.contact_id)
        if c is None or c.state != "completing" or offer.agent_id != c.target_agent:
            return False
        legs = self.channel.legs[contact.contact_id]
        legs.ringing = self.channel.tasks.spawn(self._connect_agent(c, offer),
                                                f"consult-connect:{offer.agent_id}")  # fmt: skip
        return True

    def take_leg(self, contact: Contact) -> Call | None:
        """The answered leg of a completing consultation to a number (transfer_out uses it)."""
        c = self.active.get(contact.contact_id)
        if c is None or c.state != "completing" or c.target_agent is not None or c.leg is None:
            return None
        leg, c.leg = c.leg, None
        self._over(c, self._done(c), "")
        return leg

    def agent_released(self, contact: Contact) -> None:
        """The agent let the call go another way (a blind transfer): the consultation ends."""
        c = self.active.get(contact.contact_id)
        if c is not None and c.state != "completing":
            self._stop_media(c)
            self._over(c, "cancelled", "the call was transferred")

    def forget(self, contact: Contact) -> None:
        """The contact is over (someone hung up): the target's leg goes too."""
        c = self.active.get(contact.contact_id)
        if c is not None:
            self._stop_media(c)
            self._over(c, "ended", "the call ended")

    # ------------------------------------------------------------------ start
    async def start(self, agent_id: str, contact_id: str, target: str) -> Consult:
        contact = self.core.connected_contact(agent_id, contact_id)
        cid = contact.contact_id
        legs = self.channel.legs.get(cid)
        if contact.channel != "voice" or legs is None or legs.agent_call is None:
            raise InvalidState("only a call connected to your phone can be consulted on")
        if cid in self.active:
            raise InvalidState("a consultation is already in progress on this call")
        c = await self._target(contact, agent_id, target)
        self.active[cid] = c
        log.info("consultation on contact %s: agent %s calls %s", cid, agent_id, c.target,
                 extra={"contact_id": cid})  # fmt: skip
        try:
            await self._hold(c, True)
        except Exception:
            self.active.pop(cid, None)
            raise
        if c.target_agent is not None:  # routing offers them nothing while they are consulted
            agent = self.core.router.agents[c.target_agent]
            c.prev_state = (str(agent.presence), agent.reason)
            self.core.route(self.core.router.set_agent_state, c.target_agent, "not_ready", CONSULT_REASON,
                            agents=(c.target_agent,))  # fmt: skip
        self._tell(c)
        c.dialling = self.channel.tasks.spawn(self._dial(c, legs), f"consult:{cid}")
        return c

    async def _target(self, contact: Contact, agent_id: str, target: str) -> Consult:
        kind, _, value = target.partition(":")
        core, ch = self.core, self.channel
        if kind == "queue":  # whoever is free there now; a queue's wait is for a blind transfer
            kind, value = "agent", self._free_agent_in(value, agent_id)
        if kind == "agent":
            agent = core.router.agents.get(value)
            if agent is None:
                raise NotFound(f"no agent {value!r}")
            if value == agent_id:
                raise InvalidState("you cannot consult yourself")
            if agent.presence is Presence.OFFLINE:
                raise InvalidState(f"{agent.name or value} is not signed in")
            if agent.tasks:
                raise InvalidState(f"{agent.name or value} is busy with a contact")
            if not core.router.queues_served(value):
                raise InvalidState(f"{agent.name or value} serves no queue the call could go to")
            bindings = await ch.registrar.contacts(ch.agent_sip_users.get(value, value))
            if not bindings:
                raise InvalidState(f"{agent.name or value}'s phone is not registered")
            b = bindings[0]
            return Consult(contact, agent_id, f"agent:{value}", f"{agent.name or value} ({value})", b.uri,
                           dest=tuple(b.source), transport=b.transport, target_agent=value)  # type: ignore[arg-type]
        number = normalize_phone(value if kind in ("number", "tel") else target, ch.default_region)
        if number is None:
            raise Invalid(f"not a phone number: {value or target!r}")
        if not ch.dialler.can_dial_out:
            raise InvalidState("calling a number needs callbacks.dial_uri (the trunk) in server.yaml")
        return Consult(contact, agent_id, f"number:{number}", number, ch.dialler.cfg.uri_for(number))

    def _free_agent_in(self, queue: str, agent_id: str) -> str:
        """The agent a consultation to ``queue`` calls: of those serving it who are Available,
        idle and reachable, the one idle longest (as routing's default strategy picks)."""
        router = self.core.router
        if queue not in router.queues:
            raise NotFound(f"no queue {queue!r}")
        free = [a for a in router.agents.values()
                if a.id != agent_id and a.presence is Presence.AVAILABLE and not a.tasks and a.softphone
                and queue in router.queues_served(a.id)]  # fmt: skip
        if not free:
            raise InvalidState(f"nobody in {queue} is free to consult now; "
                               "a blind transfer waits in the queue")
        return min(free, key=lambda a: a.idle_seq).id

    async def _dial(self, c: Consult, legs: VoiceLegs) -> None:
        ch = self.channel
        try:
            leg = await ch.ua.place_call(
                c.uri, dest=c.dest, transport=c.transport,
                from_uri=f"sip:{ch.agent_sip_users.get(c.agent_id, c.agent_id)}@{ch.host}",
                from_display=f"Consult from {self._name(c.agent_id)}",
                headers=[("X-Interaction-Id", c.contact.contact_id), ("X-Consult-From", c.agent_id)],
                timeout=RING_S, media_near=legs.call.media,
            )  # fmt: skip
        except CallFailed as exc:
            if c.state == "calling":
                why = DECLINED.get(exc.status, f"could not be reached ({exc.status})")
                self._over(c, f"failed:{exc.status}", f"{c.label} {why}", back=True)
            return
        if c.state != "calling" or legs.agent_call is None:
            leg.terminate("consult_over")
            return
        c.leg, c.answered, c.state = leg, time.time(), "talking"
        leg.add_end_callback(lambda _leg: self._target_gone(c))
        legs.agent_call.media.bridge(leg.media)  # agent and target, privately
        self._tell(c)

    def _name(self, agent_id: str) -> str:
        agent = self.core.router.agents.get(agent_id)
        return (agent.name if agent is not None and agent.name else agent_id)

    # ------------------------------------------------------------------ during
    async def conference(self, agent_id: str, contact_id: str) -> Consult:
        c = self.of(agent_id, contact_id)
        if c.state != "talking" or c.leg is None:
            raise InvalidState("the conference needs the consulted party on the line")
        if self.monitored(contact_id):
            raise InvalidState("a supervisor is monitoring this call: no conference meanwhile")
        legs = self.channel.legs[contact_id]
        await self._hold(c, False)  # the customer's leg is bridged to the agent's again
        if c.state != "talking" or c.leg is None or legs.agent_call is None:
            raise InvalidState("the consultation ended meanwhile")
        c.mix = MixControl(legs.call.media)
        try:
            c.mix.monitor(c.leg.media, "barge")  # the mixer's third seat: each hears the other two
        except ValueError as exc:
            c.mix = None
            raise InvalidState(f"the conference could not start: {exc}") from None
        c.state, c.conference_from = "conference", time.time()
        log.info("consultation on contact %s: conference with %s", contact_id, c.target,
                 extra={"contact_id": contact_id})  # fmt: skip
        self._tell(c)
        return c

    async def cancel(self, agent_id: str, contact_id: str) -> None:
        """Cancel the consultation (or drop the target from the conference): back to the customer."""
        c = self.of(agent_id, contact_id)
        if c.state == "completing":
            raise InvalidState("the call is being handed over")
        conference = c.state == "conference"
        self._stop_media(c)
        self._over(c, "cancelled", "", back=not conference)

    async def complete(self, agent_id: str, contact_id: str) -> None:
        """The customer goes to the target, the agent to wrap-up (from a conference: the agent leaves)."""
        c = self.of(agent_id, contact_id)
        if c.state not in ("talking", "conference") or c.leg is None:
            raise InvalidState("the consulted party has not answered yet")
        if c.mix is not None:
            c.mix.unmonitor()
            c.mix = None
        c.state = "completing"
        contact = c.contact
        if c.target_agent is None:  # a number: bridged as a transfer out (take_leg)
            await self.core.transfer(agent_id, c.uri, contact_id)
            return
        x = c.target_agent
        router = self.core.router
        served = router.queues_served(x)
        queue = contact.queue if contact.queue in served else served[0]
        c.prev_state = None  # they take the call: no state to restore

        def available() -> None:
            self.core.route(router.set_agent_state, x, "available", "", agents=(x,))

        # Whatever waits in their queues would be offered to them the moment they are available;
        # with nothing waiting they go available first, so routing's preferred-agent pick is them.
        if not any(router.queue_stats(q).waiting for q in served):
            available()
            self.core.hand_to_agent(contact, agent_id, x, queue, TAKE_PRIORITY)
        else:
            self.core.hand_to_agent(contact, agent_id, x, queue, TAKE_PRIORITY)
            available()
        if c.state == "completing" and (contact.offer is None or contact.offer.agent_id != x):
            # routing gave it to someone else: the caller waits in the queue as after a blind transfer
            self._stop_media(c)
            self._over(c, "failed:routing", f"{c.label} could not take the call; it waits in {queue}")

    async def _connect_agent(self, c: Consult, offer: Offer) -> None:
        contact, leg = c.contact, c.leg
        shown = await self.core.present(contact, offer)  # the screen-pop on the target's desk
        legs = self.channel.legs.get(contact.contact_id)
        if not shown or leg is None or not leg.is_active or legs is None:
            self._stop_media(c)
            if self.core.holds_offer(contact, offer):
                self.core.decline(contact, offer, "consult_gone", "the consulted agent hung up")
            self._over(c, "failed:target_gone", f"{c.label} hung up before the hand-over")
            return
        legs.ringing = None
        c.leg = None
        self.core.accept(contact.contact_id, offer.agent_id)
        self.channel.talk(contact, legs, leg, offer.agent_id)
        self._over(c, self._done(c), "")
        if not await legs.call.hold(False):  # the customer's phone: sendrecv again
            log.info("caller's phone refused the resume re-INVITE", extra={"contact_id": contact.contact_id})
        if legs.agent_call is leg and contact.phase is Phase.CONNECTED:
            # As VoiceChannel.hold does after its resume re-INVITE: whatever the caller's leg was
            # given meanwhile (hold music's last play) must not keep the floor from the bridge.
            legs.stop_treatment()
            legs.call.media.stop_playing()
            legs.call.media.bridge(leg.media)

    def _done(self, c: Consult) -> str:
        return "conference_left" if c.conference_from is not None else "completed"

    def _target_gone(self, c: Consult) -> None:
        if self.active.get(c.contact.contact_id) is not c or c.state not in ("talking", "conference"):
            return
        if c.leg is None:
            return  # hung up by us (cancel, the end of the call): _over says why
        conference = c.state == "conference"
        if c.mix is not None:
            c.mix.unmonitor()
            c.mix = None
        c.leg = None
        self._over(c, "target_left", f"{c.label} hung up", back=not conference)

    # ------------------------------------------------------------------ the end of it
    def _stop_media(self, c: Consult) -> None:
        if c.mix is not None:
            c.mix.unmonitor()
            c.mix = None
        if c.dialling is not None and not c.dialling.done():
            c.dialling.cancel()  # place_call CANCELs the INVITE
        leg, c.leg = c.leg, None
        if leg is not None:
            leg.terminate("consult_over")

    def _over(self, c: Consult, result: str, reason: str, *, back: bool = False) -> None:
        cid = c.contact.contact_id
        if self.active.get(cid) is not c:
            return
        del self.active[cid]
        was = c.state
        c.state = "over"
        x = c.target_agent
        if x is not None and c.prev_state is not None:
            agent = self.core.router.agents.get(x)
            if agent is not None and agent.presence is Presence.NOT_READY and agent.reason == CONSULT_REASON:
                self.core.route(self.core.router.set_agent_state, x, *c.prev_state, agents=(x,))
        log.info("consultation on contact %s with %s over (%s, was %s)%s", cid, c.target, result, was,
                 f": {reason}" if reason else "", extra={"contact_id": cid})  # fmt: skip
        self.core.publish(ev.ConsultUpdated(contact_id=cid, agent_id=c.agent_id, target=c.target,
                                            label=c.label, state="over", reason=reason))  # fmt: skip
        self.core.publish(ev.Consultation(
            contact_id=cid, agent_id=c.agent_id, target=c.target, started=c.started, answered=c.answered,
            conference_from=c.conference_from, ended=time.time(),
            participants=c.participants if c.conference_from is not None else [],
            result=result))  # fmt: skip
        if back:
            self.channel.tasks.spawn(self._back(c), f"consult-back:{cid}")

    async def _back(self, c: Consult) -> None:
        """The customer back with the agent (off hold), if the call is still theirs."""
        contact = c.contact
        if contact.phase is Phase.CONNECTED and contact.agent_id == c.agent_id and contact.on_hold:
            await self._hold(c, False)

    async def _hold(self, c: Consult, on: bool) -> None:
        c.own_hold = True
        try:
            await self.core.set_hold(c.agent_id, on, c.contact.contact_id)
        finally:
            c.own_hold = False

    def _tell(self, c: Consult) -> None:
        self.core.publish(ev.ConsultUpdated(contact_id=c.contact.contact_id, agent_id=c.agent_id,
                                            target=c.target, label=c.label, state=c.state))  # fmt: skip
