"""The contact core: what is the same for every channel.

``ContactCore`` owns the live contacts and drives routing for them: submit to
a queue, offer to an agent, accept, withdraw on RONA or abandon, wrap-up,
transfer to a queue or an agent, the record's events and the agents' state.
It changes a contact's phase only through :meth:`ContactCore.move`, which
checks the change against ``contact.TRANSITIONS``, logs it and publishes its
event; everything the desktops and the CRM learn comes from those events.

A channel adapter (:class:`callcenter.contacts.channel.Channel`; voice today) brings contacts in and does
what only it can: alert the agent (ring the softphone), connect the customer
and the agent (bridge the legs), hold, hang up, take a message, dial out. An
offer is accepted by the channel's own means — the softphone answering for
voice, an Accept button for chat — and the channel then calls
:meth:`ContactCore.accept`. Routing's multichannel capacity decides how many
contacts of which channel an agent holds at once.

Several contacts per agent: each agent holds a set of contacts (offered, dialling or
connected) and a set in wrap-up, each wrap-up with its own draft, all keyed by contact
id (an email, two chats and a call at once, as routing's capacity allows). Agent-level
actions that name no contact (hold, hang up, keypad, transfer, wrap-up) mean the
agent's voice call, else their only contact: the voice desk and its API work as
before. The desk's per-contact actions name the contact (:meth:`accept_offer`,
:meth:`decline_offer`, :meth:`end_contact`, and ``contact_id=`` on the others).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.channel import Channel, CustomerDirectory
from callcenter.contacts.contact import WAITING, Contact, Offer, Phase
from callcenter.contacts.drafts import WrapUpDraft
from callcenter.contacts.errors import ContactError, Invalid, InvalidState, NotFound
from callcenter.contacts.why_you import why_you
from callcenter.routing_driver import RoutingDriver
from routing.model import Decision, DecisionKind
from routing.router import Router

log = logging.getLogger(__name__)

SCREEN_POP_WAIT_S = 0.25  # a stuck desktop must not delay the offer by more than this
QUEUE_PUSH_S = 0.25


def jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}


class ContactCore:
    def __init__(
        self,
        *,
        router: Router,
        bus: EventBus,
        crm: CustomerDirectory | None,
        kept_skills: Collection[str] = (),
    ) -> None:
        self.router = router
        self.bus = bus
        self.crm = crm
        self.node = ""  # this node's id when it is one of several (its queue figures say whose)
        self.kept_skills = frozenset(kept_skills)  # skills a transfer keeps (the caller's language)
        self.channels: dict[str, Channel] = {}
        self.routing = RoutingDriver(router, self._on_decision)
        self.contacts: dict[str, Contact] = {}
        # agent → ids of their contacts offered, dialling or connected (a dict: ordered set)
        self._live: dict[str, dict[str, None]] = {}
        # agent → contact id → a contact in (or transferred out of) the agent's wrap-up...
        self._wrapping: dict[str, dict[str, Contact]] = {}
        # ...and that wrap-up's form as last saved (the same agent and contact id)
        self._drafts: dict[str, dict[str, WrapUpDraft]] = {}
        self._agent_states = {a: str(router.agent_state(a)) for a in router.agents}
        # When each agent's state (as routing derives it: reserved, busy, wrap-up too) last changed.
        self._state_since = dict.fromkeys(router.agents, time.time())
        self._queue_push: asyncio.TimerHandle | None = None

    def add_channel(self, name: str, channel: Channel) -> None:
        self.channels[name] = channel

    # ------------------------------------------------------------------ who holds what

    def _hold(self, agent_id: str, contact_id: str) -> None:
        self._live.setdefault(agent_id, {})[contact_id] = None

    def _let_go(self, agent_id: str | None, contact_id: str) -> None:
        held = self._live.get(agent_id or "")
        if held is not None:
            held.pop(contact_id, None)
            if not held:
                del self._live[agent_id or ""]

    @staticmethod
    def _primary(contacts: list[Contact]) -> Contact | None:
        """What an action that names no contact means: the voice contact, else the only one."""
        voice = [c for c in contacts if c.channel == "voice"]
        if voice:
            return voice[-1]
        return contacts[0] if len(contacts) == 1 else None

    def live_contacts(self, agent_id: str) -> list[Contact]:
        """The agent's contacts offered, dialling or connected, oldest first."""
        return [c for cid in self._live.get(agent_id, ()) if (c := self.contacts.get(cid)) is not None]

    def wrap_up_contacts(self, agent_id: str) -> list[tuple[Contact, WrapUpDraft]]:
        """The agent's contacts in wrap-up with their drafts, oldest first."""
        drafts = self._drafts.get(agent_id, {})
        return [(c, drafts[cid]) for cid, c in self._wrapping.get(agent_id, {}).items()]

    @property
    def agent_contact(self) -> dict[str, str]:
        """Agent → their voice contact, else their only contact (offered, dialling or connected)."""
        out = {}
        for agent_id in self._live:
            if (contact := self._primary(self.live_contacts(agent_id))) is not None:
                out[agent_id] = contact.contact_id
        return out

    @property
    def wrap_ups(self) -> dict[str, Contact]:
        """Agent → their voice contact in wrap-up, else their only one."""
        out = {}
        for agent_id, wrapping in self._wrapping.items():
            if (contact := self._primary(list(wrapping.values()))) is not None:
                out[agent_id] = contact
        return out

    @property
    def drafts(self) -> dict[str, WrapUpDraft]:
        """The drafts of :attr:`wrap_ups`, by agent."""
        return {a: self._drafts[a][c.contact_id] for a, c in self.wrap_ups.items()}

    def find(self, contact_id: str) -> Contact | None:
        """A live contact, or one that is over but still in some agent's wrap-up."""
        contact = self.contacts.get(contact_id)
        if contact is None:
            contact = next((w[contact_id] for w in self._wrapping.values() if contact_id in w), None)
        return contact

    def agents_holding(self, contact_id: str) -> list[str]:
        """The agents who hold the contact: offered, connected, or in its wrap-up."""
        holders = [a for a, held in self._live.items() if contact_id in held]
        return holders + [a for a, w in self._wrapping.items() if contact_id in w and a not in holders]

    def held_contact(self, agent_id: str, contact_id: str) -> Contact:
        """One of the agent's live contacts (NotFound for anyone else's)."""
        contact = self.contacts.get(contact_id)
        if contact is None or contact_id not in self._live.get(agent_id, ()):
            raise NotFound(f"you hold no contact {contact_id!r}")
        return contact

    # ------------------------------------------------------------------ events and phases

    def publish(self, event: ev.Event) -> list[asyncio.Future[None]]:
        return self.bus.publish(event)

    def move(self, contact: Contact, new: Phase, event: ev.Event | None = None) -> list[asyncio.Future[None]]:
        """The one way a contact's phase changes: checked against the transition table
        (IllegalTransition otherwise), logged, and announced by its event."""
        old = contact.enter(new, event)
        log.debug("contact %s: %s → %s", contact.contact_id, old, new)
        return self.publish(event) if event is not None else []

    def arrive(self, contact: Contact, event: ev.ContactArrived) -> None:
        self.contacts[contact.contact_id] = contact
        log.info("contact %s arrived: %s from %s to %s (service %s)", contact.contact_id, contact.channel,
                 contact.ani or "anonymous", contact.dnis, contact.service,
                 extra={"contact_id": contact.contact_id, "channel": contact.channel, "ani": contact.ani,
                        "dnis": contact.dnis, "service": contact.service})  # fmt: skip
        self.publish(event)

    @staticmethod
    def _log_end(contact: Contact, outcome: str, reason: str, ended_by: str) -> None:
        """The one INFO line of a contact's end (its start is logged by ``arrive``)."""
        log.info("contact %s ended: %s, %s by %s (queue %s, agent %s)", contact.contact_id, outcome,
                 reason, ended_by or "system", contact.queue or "-", contact.agent_id or "-",
                 extra={"contact_id": contact.contact_id, "channel": contact.channel, "ani": contact.ani,
                        "dnis": contact.dnis, "outcome": outcome, "reason": reason, "ended_by": ended_by,
                        "queue": contact.queue, "agent_id": contact.agent_id})  # fmt: skip

    def end(self, contact: Contact, reason: str, ended_by: str) -> None:
        """ContactEnded, exactly once: ending one side ends the other, and both report it."""
        if contact.phase in (Phase.ENDED, Phase.WRAP_UP):
            return
        self._log_end(contact, "answered" if contact.connected_at else str(contact.phase), reason, ended_by)
        self.move(
            contact,
            Phase.ENDED,
            ev.ContactEnded(contact_id=contact.contact_id, reason=reason or "ended", ended_by=ended_by),
        )
        self._forget(contact)

    def _forget(self, contact: Contact) -> None:
        self._let_go(contact.agent_id, contact.contact_id)
        if self.contacts.pop(contact.contact_id, None) is not None:
            self.channels[contact.channel].forget(contact)

    # ------------------------------------------------------------------ routing

    def route(
        self, method: Callable[..., Any], *args: Any, agents: tuple[str, ...] = (), **kwargs: Any
    ) -> bool:
        """Call the router and afterwards publish the state change of every agent touched."""
        ok = self.routing.call(method, *args, **kwargs)
        self.sync_agents(agents)
        self._queues_changed()
        return ok

    def _queues_changed(self) -> None:
        """Queue figures at most every QUEUE_PUSH_S: a burst of routing calls costs one snapshot."""
        if self._queue_push is None:
            self._queue_push = asyncio.get_running_loop().call_later(QUEUE_PUSH_S, self._push_queues)

    def queue_figures(self) -> list[dict[str, Any]]:
        """Every queue's statistics as plain dicts (supervisor stream, snapshot, metrics)."""
        return [dataclasses.asdict(self.router.queue_stats(q)) for q in self.router.queues]

    def _push_queues(self) -> None:
        self._queue_push = None
        self.publish(ev.QueueFigures(queues=self.queue_figures(), node=self.node))

    def sync_agents(self, agent_ids: tuple[str, ...] | list[str] = ()) -> None:
        for agent_id in agent_ids:
            if agent_id not in self.router.agents:
                continue
            new = str(self.router.agent_state(agent_id))
            old = self._agent_states.get(agent_id, "offline")
            if new == old:
                continue
            self._agent_states[agent_id] = new
            self._state_since[agent_id] = time.time()
            reason = self.router.agents[agent_id].reason
            self.publish(ev.AgentStateChanged(agent_id=agent_id, old=old, new=new, reason=reason))

    def in_state_s(self, agent_id: str) -> float:
        """Seconds since the agent's state last changed, busy and reserved included."""
        return max(0.0, time.time() - self._state_since.get(agent_id, time.time()))

    def set_reachable(self, agent_id: str, reachable: bool) -> None:
        """The agent's voice endpoint (softphone) registered or went away."""
        known = self.router.agents[agent_id].softphone if agent_id in self.router.agents else None
        self.route(self.router.set_softphone, agent_id, reachable, agents=(agent_id,))
        if known is not reachable:
            self.publish(ev.AgentDeviceChanged(agent_id=agent_id, softphone=reachable))

    async def customer_context(self, contact: Contact, kind: str) -> None:
        """Customer record and recent history for the screen-pop, fetched once at queue entry
        so that the offer itself needs no I/O."""
        if self.crm is None or not contact.ani:
            return
        try:
            customer, recent = await self.crm.customer_with_recent(kind, contact.ani, 6)
            if customer is not None:
                contact.customer = jsonable(customer) | {"id": customer.get("id")}
                contact.recent = [jsonable(r) for r in recent if r.get("id") != contact.contact_id]
        except Exception:  # the CRM being down must not stop the contact reaching an agent
            log.exception("customer lookup failed for %s", contact.contact_id)

    def enqueue(
        self,
        contact: Contact,
        queue: str,
        priority: int,
        skills: dict[str, int],
        *,
        phase: Phase = Phase.QUEUED,
    ) -> None:
        """Into ``queue`` (QUEUED, or CALLBACK for a request to be called back), preferring
        the agent who served the customer last."""
        contact.queue = queue
        contact.priority = priority
        contact.skills = dict(skills)
        contact.queued_at = time.time()
        self.move(
            contact,
            phase,
            ev.ContactQueued(
                contact_id=contact.contact_id, queue=queue, priority=priority, skills=dict(skills)
            ),
        )
        channel = self.channels[contact.channel]
        channel.waiting(contact)
        last_agent = next((r.get("agent_id") for r in contact.recent if r.get("agent_id")), None)
        if not self.submit(contact, preferred_agent=last_agent if last_agent in self.router.agents else None):
            channel.no_agent(contact, "this line cannot take calls right now")

    def submit(
        self, contact: Contact, *, preferred_agent: str | None = None, created: float | None = None,
        waiting_since: float | None = None,
    ) -> bool:
        """Hand the contact to routing in its queue, with its skills, priority and tier."""
        customer = contact.customer or {}
        channel = self.channels.get(contact.channel)
        return self.route(
            self.router.submit,
            contact.contact_id,
            contact.queue or "",
            # A channel may share another's capacity (chat and web forms on agents' ``web`` slots).
            getattr(channel, "routing_channel", None) or contact.channel,
            required=contact.skills,
            priority=contact.priority,
            preferred_agent=preferred_agent,
            created=created,
            waiting_since=waiting_since,
            attributes={"tier": customer.get("tier") or "standard", "service": contact.service},
        )

    # ------------------------------------------------------------------ several nodes

    def hand_over(self, contact: Contact) -> None:
        """A waiting contact leaves routing here to be moved to another node
        (cluster/handoff.py); it stays QUEUED until :meth:`handed_off` or :meth:`take_back`."""
        self.route(self.router.cancel, contact.contact_id, "handed_off", abandoned=False)

    def handed_off(self, contact: Contact) -> None:
        """Another node took the contact over and carries its record on: forgotten here
        without an end."""
        log.info("contact %s handed off to another node", contact.contact_id,
                 extra={"contact_id": contact.contact_id, "queue": contact.queue})  # fmt: skip
        self.move(contact, Phase.HANDED_OFF)
        self._forget(contact)

    def take_back(self, contact: Contact) -> bool:
        """Into routing again with the wait it has had (a move that failed, or a contact
        adopted from another node): escalation and maximum wait count from its queue entry."""
        waited = max(0.0, time.time() - (contact.queued_at or time.time()))
        return self.submit(contact, waiting_since=time.monotonic() - waited)

    def adopt(self, contact: Contact, event: ev.ContactHandedOff) -> None:
        """A waiting contact another node handed over: this node carries its record on."""
        self.contacts[contact.contact_id] = contact
        log.info("contact %s taken over from node %s (queue %s)", contact.contact_id, event.from_node,
                 contact.queue, extra={"contact_id": contact.contact_id, "from_node": event.from_node,
                                       "queue": contact.queue})  # fmt: skip
        self.publish(event)

    def leave_queue(self, contact: Contact, reason: str, new: Phase, event: ev.Event | None = None) -> None:
        """The customer leaves the queue (voicemail, callback request): routing lets go."""
        self.route(self.router.cancel, contact.contact_id, reason)
        self.move(contact, new, event)

    # ------------------------------------------------------------------ offers

    def _on_decision(self, d: Decision) -> None:
        self.publish(ev.RoutingDecided(contact_id=d.task_id, decision=d.as_dict()))
        contact = self.contacts.get(d.task_id)
        kind = d.kind
        if kind is DecisionKind.OFFER and d.agent_id and d.reservation is not None:
            if contact is None or not self.channels[contact.channel].reachable(contact):
                self.route(self.router.cancel, d.task_id, "gone", agents=(d.agent_id,))
                return
            offer = Offer(d.agent_id, d.reservation.id, d.queue, d.explanation.text, d.reservation.deadline)
            contact.offer = offer
            contact.explanation = offer.explanation
            contact.why_you = why_you(d.explanation.facts)
            contact.agent_id = d.agent_id
            self._hold(d.agent_id, contact.contact_id)
            self.channels[contact.channel].present(contact, offer)
        elif kind is DecisionKind.RONA and contact is not None:
            self.withdraw_offer(contact, "rona")
        elif kind is DecisionKind.OVERFLOW and contact is not None and d.target_queue:
            contact.queue = d.target_queue
            queued = ev.ContactQueued(
                contact_id=contact.contact_id,
                queue=d.target_queue,
                priority=contact.priority,
                skills=contact.skills,
            )
            if contact.phase in WAITING:
                self.move(contact, contact.phase, queued)
            else:  # overflowed while an offer is out: the queue changes, the phase does not
                self.publish(queued)
        elif kind in (DecisionKind.EXITED, DecisionKind.REFUSED) and contact is not None:
            why = "the queue is full" if kind is DecisionKind.REFUSED else "all our agents are busy"
            self.channels[contact.channel].no_agent(contact, why)
        elif kind is DecisionKind.WRAP_UP_ENDED and d.agent_id:
            self._wrap_up_done(d.agent_id, d.task_id, timed_out=True)
        if d.agent_id:
            self.sync_agents((d.agent_id,))

    def holds_offer(self, contact: Contact, offer: Offer) -> bool:
        """The offer still stands and the customer is still worth it."""
        return contact.offer is offer and self.channels[contact.channel].reachable(contact)

    async def present(self, contact: Contact, offer: Offer) -> bool:
        """Show the offer on the agent's desktop, then return: the channel alerts the agent
        only after this, so the desktop shows the customer before the phone rings.

        AgentOffered's inline desk subscriber returns futures that resolve when the
        screen-pop is written to the desktop's socket; waiting on them (at most
        SCREEN_POP_WAIT_S, so a stuck desktop cannot hold up the call) is the whole
        guarantee. False when the offer was withdrawn (before or meanwhile)."""
        if not self.holds_offer(contact, offer):
            return False
        delivered = self.move(
            contact,
            Phase.OFFERED,
            ev.AgentOffered(
                contact_id=contact.contact_id,
                agent_id=offer.agent_id,
                queue=offer.queue,
                reservation_id=offer.reservation_id,
                explanation=offer.explanation,
            ),
        )
        if delivered:
            await asyncio.wait(delivered, timeout=SCREEN_POP_WAIT_S)
        return self.holds_offer(contact, offer)

    def withdraw_offer(self, contact: Contact, reason: str) -> None:
        """The offer to the agent is over (RONA, reject, abandon): stop alerting them."""
        offer = contact.offer
        if offer is None:
            return
        rejected = ev.OfferRejected(
            contact_id=contact.contact_id,
            agent_id=offer.agent_id,
            reservation_id=offer.reservation_id,
            reason=reason,
        )
        contact.offer = None
        contact.agent_id = None
        self._let_go(offer.agent_id, contact.contact_id)
        self.channels[contact.channel].withdraw(contact)
        if contact.phase is Phase.OFFERED:
            self.move(contact, Phase.CALLBACK if contact.callback_number else Phase.QUEUED, rejected)
        else:  # not presented yet (the channel was still looking for the agent's endpoint), or abandoned
            self.publish(rejected)

    def decline(self, contact: Contact, offer: Offer, reason: str, why: str) -> None:
        """The channel could not alert the agent (no endpoint, refused): offer someone else."""
        if contact.offer is not offer:
            return
        self.withdraw_offer(contact, reason)
        self.route(self.router.reject, offer.reservation_id, why, agents=(offer.agent_id,))

    def accept(self, contact_id: str, agent_id: str) -> Contact:
        """The agent took the offer (voice: the softphone answered; chat: the Accept button)."""
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise NotFound(f"no contact {contact_id!r}")
        offer = contact.offer
        if offer is None or offer.agent_id != agent_id:
            raise InvalidState("no offer to accept")
        self.route(self.router.accept, offer.reservation_id, agents=(agent_id,))
        return contact

    def connect(self, contact: Contact, agent_id: str) -> None:
        """Customer and agent are connected: the conversation starts."""
        contact.offer = None
        contact.agent_id = agent_id
        contact.connected_at = time.time()
        self._hold(agent_id, contact.contact_id)
        self.move(
            contact, Phase.CONNECTED, ev.ContactConnected(contact_id=contact.contact_id, agent_id=agent_id)
        )

    def dial_back(self, contact: Contact, agent_id: str) -> None:
        """A callback was accepted: the center dials the customer for the agent."""
        contact.offer = None
        contact.callback_attempts += 1
        self.move(
            contact,
            Phase.DIALLING,
            ev.CallbackDialling(
                contact_id=contact.contact_id,
                agent_id=agent_id,
                number=contact.callback_number or "",
                attempt=contact.callback_attempts,
            ),
        )

    def callback_missed(
        self, contact: Contact, agent_id: str, number: str, result: str, *, retry: bool
    ) -> None:
        """The customer was not reached: back to its place in the queue later, or failed."""
        attempted = ev.CallbackAttempted(
            contact_id=contact.contact_id,
            agent_id=agent_id,
            number=number,
            attempt=contact.callback_attempts,
            result=result,
            retry=retry,
        )
        self.move(contact, Phase.CALLBACK if retry else Phase.FAILED, attempted)
        self._let_go(agent_id, contact.contact_id)
        contact.agent_id = None
        self.route(self.router.cancel, contact.contact_id, f"callback {result}", agents=(agent_id,))
        if not retry:
            self.end(contact, "callback_failed", "system")

    def fail(self, contact: Contact, reason: str) -> None:
        """The center cannot serve the contact after all: it ends as failed."""
        self.move(contact, Phase.FAILED)
        self.end(contact, reason, "system")

    def abandon(self, contact: Contact, reason: str, ended_by: str) -> None:
        """The customer left while waiting or while an agent was being alerted."""
        where = "ringing" if contact.offer is not None else "queue"
        agent = contact.agent_id
        self.move(
            contact,
            Phase.ABANDONED,
            ev.ContactAbandoned(contact_id=contact.contact_id, waited_s=contact.waited_s(), where=where),
        )
        self.withdraw_offer(contact, "abandoned")
        self.route(self.router.cancel, contact.contact_id, "abandoned", agents=(agent,) if agent else ())
        self.end(contact, reason, ended_by)

    # ------------------------------------------------------------------ conversation end, wrap-up

    def end_connected(self, contact: Contact, ended_by: str, reason: str) -> None:
        """The conversation is over: the contact ends and the agent's wrap-up begins."""
        agent_id = contact.agent_id or ""
        self._log_end(contact, "answered", reason, ended_by)
        self._let_go(agent_id, contact.contact_id)
        self.route(self.router.complete, contact.contact_id, agents=(agent_id,))
        self.move(
            contact,
            Phase.WRAP_UP,
            ev.ContactEnded(contact_id=contact.contact_id, reason=reason or "ended", ended_by=ended_by),
        )
        self._forget(contact)
        self._start_wrap_up(agent_id, contact, ended_by)

    def _start_wrap_up(
        self, agent_id: str, contact: Contact, ended_by: str, *, routed: bool = True,
        served: str | None = None,
    ) -> None:  # fmt: skip
        """After-contact work on ``contact`` begins, with an empty draft bound to it. ``routed``:
        routing holds the agent in wrap-up (and ends it on time); after a transfer to a queue
        or an agent it does not, and the form waits for the agent. Each contact has its own
        wrap-up and draft; an earlier wrap-up of the same contact, or an earlier *voice*
        wrap-up when this is a call (the desk's call form is one), is completed with its draft
        first: notes are never carried to another contact.
        ``served``: the queue the agent took it from, when the contact has moved on (transfer)."""
        cid = contact.contact_id
        voice = contact.channel == "voice"
        for earlier in [c for c in self._wrapping.get(agent_id, {}).values()
                        if c.contact_id == cid or (voice and c.channel == "voice")]:  # fmt: skip
            self._wrap_up_done(agent_id, earlier.contact_id, timed_out=True)
        wrap_s = self.router.queues[contact.queue].wrap_up_s if contact.queue in self.router.queues else 0
        limit = wrap_s if wrap_s > 0 and routed else None
        deadline = time.time() + limit if limit else None
        self._wrapping.setdefault(agent_id, {})[cid] = contact
        self._drafts.setdefault(agent_id, {})[cid] = WrapUpDraft(cid, deadline, routed=routed,
                                                                 queue=served or contact.queue)  # fmt: skip
        self.publish(ev.WrapUpStarted(contact_id=cid, agent_id=agent_id, ended_by=ended_by, wrap_up_s=limit))

    def _wrap_up_of(self, agent_id: str, contact_id: str | None) -> Contact:
        """The agent's contact in wrap-up: ``contact_id``, else their voice one, else their only one."""
        wrapping = self._wrapping.get(agent_id, {})
        contact = wrapping.get(contact_id) if contact_id else self._primary(list(wrapping.values()))
        if contact is None:
            if not contact_id and len(wrapping) > 1:
                raise InvalidState("you have several contacts in wrap-up: name the contact")
            which = f"of {contact_id} " if contact_id else ""
            raise InvalidState(f"the wrap-up {which}has ended (notes saved before then are on its record)")
        return contact

    def dispositions(self, agent_id: str, contact_id: str | None = None) -> list[str]:
        """The outcomes the agent may choose for a wrap-up (``contact_id``'s, else the voice or
        only one): its queue's list (queues.yaml ``dispositions``), else the routing settings'."""
        drafts = self._drafts.get(agent_id, {})
        if contact_id:
            draft = drafts.get(contact_id)
        else:
            primary = self._primary(list(self._wrapping.get(agent_id, {}).values()))
            draft = drafts.get(primary.contact_id) if primary is not None else None
        return self.queue_dispositions(draft.queue if draft is not None else None)

    def queue_dispositions(self, queue_name: str | None) -> list[str]:
        queue = self.router.queues.get(queue_name or "")
        return list(queue.dispositions if queue and queue.dispositions
                    else self.router.config.settings.dispositions)  # fmt: skip

    def _check_disposition(self, draft: WrapUpDraft, disposition: str, *, empty_ok: bool) -> None:
        choices = self.queue_dispositions(draft.queue)
        if (disposition or not empty_ok) and disposition not in choices:
            raise Invalid(f"unknown disposition {disposition!r}; choose one of: " + ", ".join(choices))

    def save_draft(self, agent_id: str, contact_id: str, disposition: str, notes: str) -> WrapUpDraft:
        """Keep what the agent typed so far; a wrap-up that times out is completed with it."""
        self._wrap_up_of(agent_id, contact_id)
        draft = self._drafts[agent_id][contact_id]
        self._check_disposition(draft, disposition, empty_ok=True)  # a draft may have none yet
        draft.disposition, draft.notes = disposition, notes
        return draft

    def submit_wrap_up(
        self, agent_id: str, disposition: str, notes: str, contact_id: str | None = None
    ) -> None:
        contact = self._wrap_up_of(agent_id, contact_id)
        draft = self._drafts[agent_id][contact.contact_id]
        self._check_disposition(draft, disposition, empty_ok=False)
        if draft.routed:  # else the task is in another queue, or another agent's
            self.route(self.router.end_wrap_up, contact.contact_id, agents=(agent_id,))
        self._wrap_up_done(agent_id, contact.contact_id, disposition, notes)

    def _wrap_up_done(
        self, agent_id: str, contact_id: str, disposition: str = "", notes: str = "", *,
        timed_out: bool = False,
    ) -> None:  # fmt: skip
        wrapping, drafts = self._wrapping.get(agent_id, {}), self._drafts.get(agent_id, {})
        contact = wrapping.pop(contact_id, None)
        draft = drafts.pop(contact_id, None)
        if not wrapping:
            self._wrapping.pop(agent_id, None)
            self._drafts.pop(agent_id, None)
        if contact is None:
            return
        if timed_out and draft is not None:  # the draft is the agent's last word on this contact
            disposition, notes = draft.disposition, draft.notes
        done = ev.WrapUpCompleted(
            contact_id=contact.contact_id,
            agent_id=agent_id,
            disposition=disposition,
            notes=notes,
            timed_out=timed_out,
        )
        if contact.phase is Phase.WRAP_UP:
            self.move(contact, Phase.ENDED, done)
        else:  # transferred out: the contact goes on without this agent
            self.publish(done)

    # ------------------------------------------------------------------ agent actions

    def connected_contact(self, agent_id: str, contact_id: str | None = None) -> Contact:
        """``contact_id`` of the agent's, else their voice contact, else their only one; connected."""
        if contact_id:
            contact: Contact | None = self.held_contact(agent_id, contact_id)
        else:
            contact = self._primary(self.live_contacts(agent_id))
        if contact is None or contact.phase is not Phase.CONNECTED:
            raise InvalidState("no connected call" if not contact_id or contact is None or
                               contact.channel == "voice" else f"{contact_id} is not connected")  # fmt: skip
        return contact

    async def set_hold(self, agent_id: str, on_hold: bool, contact_id: str | None = None) -> None:
        contact = self.connected_contact(agent_id, contact_id)
        if contact.on_hold == on_hold:
            return
        contact.on_hold = on_hold
        try:
            held = await self.channels[contact.channel].hold(contact, on_hold)
        except ContactError:  # the channel has no hold (an email): nothing changed
            contact.on_hold = not on_hold
            raise
        if held:
            self.publish(ev.ContactHeld(contact_id=contact.contact_id, agent_id=agent_id, on_hold=on_hold))

    def set_mute(self, agent_id: str, muted: bool, contact_id: str | None = None) -> None:
        """The agent's own audio toward the customer (and a conference) becomes silence, or not."""
        contact = self.connected_contact(agent_id, contact_id)
        mute = getattr(self.channels[contact.channel], "mute", None)
        if mute is None:
            raise InvalidState(f"a {contact.channel} contact has no microphone to mute")
        if contact.muted == muted:
            return
        mute(contact, muted)
        contact.muted = muted
        self.publish(ev.ContactMuted(contact_id=contact.contact_id, agent_id=agent_id, muted=muted))

    def hangup(self, agent_id: str, contact_id: str | None = None) -> None:
        """The agent ends the conversation (a call's hang-up, an email or chat closed)."""
        contact = self.connected_contact(agent_id, contact_id)
        self.channels[contact.channel].hangup(contact)

    def send_digits(self, agent_id: str, digits: str, contact_id: str | None = None) -> None:
        contact = self.connected_contact(agent_id, contact_id)
        self.channels[contact.channel].send_digits(contact, digits)

    def _offered(self, agent_id: str, contact_id: str) -> tuple[Contact, Offer]:
        contact = self.held_contact(agent_id, contact_id)
        offer = contact.offer
        if offer is None or offer.agent_id != agent_id or contact.phase is not Phase.OFFERED:
            raise InvalidState(f"no offer of {contact_id} to accept or decline")
        return contact, offer

    async def accept_offer(self, agent_id: str, contact_id: str) -> Contact:
        """The desk's Accept: the channel takes the offer by its own means (a desk task
        connects at once); a channel without ``accept_from_desk`` is answered on the phone."""
        contact, offer = self._offered(agent_id, contact_id)
        accept = getattr(self.channels[contact.channel], "accept_from_desk", None)
        if accept is None:
            raise InvalidState(f"a {contact.channel} contact is answered on your phone")
        await accept(contact, offer)
        return contact

    def decline_offer(self, agent_id: str, contact_id: str) -> None:
        """The desk's Decline: the offer goes to someone else (not back to this agent)."""
        contact, offer = self._offered(agent_id, contact_id)
        self.decline(contact, offer, "declined", "declined by the agent")

    def work_list(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's contacts for the desk's work list: live ones, then those in wrap-up."""
        items = [self._work_item(c, str(c.phase), None) for c in self.live_contacts(agent_id)]
        items += [self._work_item(c, "wrap_up", d) for c, d in self.wrap_up_contacts(agent_id)]
        return items

    def _work_item(self, contact: Contact, phase: str, draft: WrapUpDraft | None) -> dict[str, Any]:
        channel = self.channels.get(contact.channel)
        view = getattr(channel, "view", None)
        try:
            shown = view(contact) if view is not None else {}
        except Exception:  # one channel's fault must not empty the agent's whole list
            log.exception("view of %s failed", contact.contact_id)
            shown = {"error": "the channel could not show this contact"}
        return {
            **contact.summary(),
            "phase": phase,
            "customer": contact.customer,
            "tier": (contact.customer or {}).get("tier"),
            "why_you": contact.why_you,
            "offer_deadline": contact.ring_deadline() if phase == str(Phase.OFFERED) else None,
            "wrap_up": draft.as_dict() if draft is not None else None,
            "wrap_up_deadline": draft.deadline if draft is not None else None,
            "dispositions": self.queue_dispositions(draft.queue if draft is not None else contact.queue),
            "desk_accept": hasattr(channel, "accept_from_desk"),  # else answered on the phone
            "view": shown,
        }

    async def transfer(self, agent_id: str, target: str, contact_id: str | None = None) -> None:
        """Blind transfer: ``queue:NAME``, ``agent:ID``, or an address the channel dials."""
        contact = self.connected_contact(agent_id, contact_id)
        kind, _, value = target.partition(":")
        if kind == "queue":
            if value not in self.router.queues:
                raise NotFound(f"no queue {value!r}")
            self._requeue(contact, agent_id, value, target)
        elif kind == "agent":
            if value not in self.router.agents:
                raise NotFound(f"no agent {value!r}")
            if value == agent_id:
                raise InvalidState("cannot transfer to yourself")
            # Same queue, with the target agent preferred (routing offers them first).
            self._requeue(contact, agent_id, contact.queue or "", target, preferred_agent=value)
        else:
            channel = self.channels[contact.channel]
            address = channel.address(target)
            self._release_agent(contact, agent_id, address)
            self.route(self.router.complete, contact.contact_id, agents=(agent_id,))
            self._start_wrap_up(agent_id, contact, "transfer")
            await channel.transfer_out(contact, address)

    def _release_agent(self, contact: Contact, agent_id: str, target: str) -> None:
        self.channels[contact.channel].release_agent(contact)
        self._let_go(agent_id, contact.contact_id)
        contact.agent_id = None
        contact.on_hold = contact.muted = False
        self.move(
            contact,
            Phase.TRANSFERRING,
            ev.ContactTransferred(contact_id=contact.contact_id, from_agent=agent_id, target=target),
        )

    def hand_to_agent(
        self, contact: Contact, agent_id: str, target_agent: str, queue: str, priority: int
    ) -> None:
        """A warm transfer's end: the agent lets go, the contact goes to ``queue`` with
        ``target_agent`` preferred at ``priority`` (the voice channel then connects the leg it
        already has to them: voice_consult.py). The agent gets a wrap-up for their part."""
        self._requeue(contact, agent_id, queue, f"agent:{target_agent}", preferred_agent=target_agent,
                      priority=priority)  # fmt: skip

    def _requeue(
        self, contact: Contact, agent_id: str, queue: str, target: str, *, preferred_agent: str | None = None,
        priority: int | None = None,
    ) -> None:  # fmt: skip
        self._release_agent(contact, agent_id, target)
        served, contact.queue = contact.queue, queue
        contact.connected_at = None
        # The customer's language still matters in the new queue; the old department's skills do not.
        contact.skills = {k: v for k, v in contact.skills.items() if k in self.kept_skills}
        self.move(
            contact,
            Phase.QUEUED,
            ev.ContactQueued(
                contact_id=contact.contact_id, queue=queue, priority=contact.priority, skills=contact.skills
            ),
        )
        self.channels[contact.channel].waiting(contact)
        self.route(
            self.router.transfer,
            contact.contact_id,
            queue,
            required=contact.skills,
            preferred_agent=preferred_agent,
            priority=priority,
            agents=(agent_id,),
        )
        # The transferring agent's part gets its disposition and notes; routing frees them at once.
        self._start_wrap_up(agent_id, contact, "transfer", routed=False, served=served)

    def close(self) -> None:
        self.routing.close()
        if self._queue_push is not None:
            self._queue_push.cancel()
