"""The voice side of moving a waiting caller to another node (callcenter/cluster/handoff.py).

Out: a caller waiting here with no agent of this node free for them, while another node
has one, is taken out of this node's routing and a call with the handoff key goes to that
node; when it answers, the caller is bridged to it (this node stays in the media path, as
for any B2BUA transfer) and the contact is forgotten here. If that call fails the caller
goes back into routing here, with their place.

In: a call carrying a valid key is answered and its contact queued here with everything
it had (customer, IVR path, priority, skills, wait so far); this node's agents then take
it as any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.cluster.elsewhere import AgentsElsewhere, FreeAgent
from callcenter.cluster.handoff import HANDOFF_HEADER, HandoffKeys
from callcenter.contacts.contact import Contact, Phase
from callcenter.sip.b2bua import bridge_legs
from callcenter.sip.calls import Call, CallError, CallFailed

if TYPE_CHECKING:
    from callcenter.channels.voice import VoiceChannel, VoiceLegs

log = logging.getLogger(__name__)

ANSWER_S = 5.0  # the other node answers at once; longer means it is in trouble
CARRIED = ("contact_id", "ani", "dnis", "service", "arrived_at", "customer", "recent", "ivr_path",
           "ivr_titles", "ivr_data", "queue", "priority", "skills", "queued_at")  # fmt: skip


def carried(contact: Contact) -> dict[str, Any]:
    """What the other node needs to carry the contact on."""
    return {name: getattr(contact, name) for name in CARRIED}


def rebuilt(data: dict[str, Any]) -> Contact:
    fields = {name: data[name] for name in CARRIED if name in data}
    fields["ivr_path"] = tuple(fields.get("ivr_path") or ())
    fields["ivr_titles"] = tuple(fields.get("ivr_titles") or ())
    return Contact(channel="voice", _phase=Phase.QUEUED, **fields)


class VoiceHandoff:
    def __init__(self, voice: VoiceChannel, agents: AgentsElsewhere, keys: HandoffKeys) -> None:
        self.voice = voice
        self.core = voice.core
        self.agents = agents
        self.keys = keys
        self.moving: dict[str, asyncio.Task[None]] = {}  # contact id -> its move in progress
        self.keyed: set[str] = set()  # ...whose key is out: out of routing here, maybe taken there
        self.handed_in: set[str] = set()  # contacts moved here: never moved again
        self._scan: asyncio.Handle | None = None
        self.stats = {"out": 0, "in": 0, "failed": 0}

    def follow(self, bus: EventBus) -> None:
        """Look again whenever a caller queues here (or goes back to the queue); news of
        the agents elsewhere calls :meth:`look_soon` too (``Cluster.agents_changed``)."""

        def on_event(event: ev.Event) -> None:
            if isinstance(event, ev.ContactEnded):
                self.handed_in.discard(event.contact_id)
            elif event.contact_id in self.core.contacts:  # not another node's contact
                self.look_soon()

        bus.subscribe("cluster-handoff", on_event, (ev.ContactQueued, ev.OfferRejected, ev.ContactEnded))

    def look_soon(self) -> None:
        if self._scan is None:  # after the routing step that published the event has finished
            self._scan = asyncio.get_running_loop().call_soon(self.look)

    def look(self) -> None:
        """Move each caller waiting here for whom another node has an agent free (the most
        urgent caller first, each agent once)."""
        self._scan = None
        if not self.agents.anyone_free():
            return  # the common case on a busy day: nothing to look through
        waiting = sorted(
            (c for c in self.core.contacts.values() if self._movable(c)),
            key=lambda c: (-c.priority, c.queued_at or 0.0),
        )
        taken: set[str] = set()
        found: dict[tuple[str, frozenset[tuple[str, int]]], list[FreeAgent]] = {}  # per queue and skills
        for contact in waiting:
            need = (contact.queue or "", frozenset(contact.skills.items()))
            if need not in found:
                found[need] = self.agents.free_for(need[0], contact.skills, self._signed_in_here)
            target = next((f for f in found[need] if f.agent_id not in taken), None)
            if target is None:
                continue
            taken.add(target.agent_id)
            cid = contact.contact_id
            self.moving[cid] = self.voice.tasks.spawn(self._move(contact, target), f"handoff:{cid}")

    def _signed_in_here(self, agent_id: str) -> bool:
        router = self.core.router
        return agent_id in router.agents and str(router.agent_state(agent_id)) != "offline"

    def _movable(self, contact: Contact) -> bool:
        cid = contact.contact_id
        if contact.channel != "voice" or contact.phase is not Phase.QUEUED or contact.offer is not None:
            return False
        if cid in self.moving or cid in self.handed_in or contact.callback_number is not None:
            return False
        legs = self.voice.legs.get(cid)
        return legs is not None and legs.call.is_active and not self.voice.consults.completing(contact)

    async def _move(self, contact: Contact, target: FreeAgent) -> None:
        cid = contact.contact_id
        try:
            await self._try_move(contact, target)
            await self.keys.release_agent(target.agent_id, cid)
        except (RedisError, OSError) as exc:  # before the key was out: the caller waits here as before
            log.warning("contact %s not moved to node %s: %s", cid, target.node, exc,
                        extra={"contact_id": cid})  # fmt: skip
        finally:
            self.moving.pop(cid, None)
            self.keyed.discard(cid)

    async def _try_move(self, contact: Contact, target: FreeAgent) -> None:
        cid = contact.contact_id
        if not await self.keys.claim_agent(target.agent_id, cid) or not self._still(contact):
            return
        header = await self.keys.put(cid, carried(contact) | {"agent_id": target.agent_id})
        if not self._still(contact):
            await self.keys.take_back(cid)
            return
        self.core.hand_over(contact)  # no agent here is offered the caller meanwhile
        self.keyed.add(cid)
        legs = self.voice.legs[cid]
        # Music only while the call goes out: the queue's keys (voicemail, callback) would
        # take the caller somewhere else here while the other node may be taking them.
        legs.stop_treatment()
        legs.call.media.on_dtmf = None
        legs.treatment = self.voice.tasks.spawn(self.voice.waiting_room.music(legs), f"handoff-music:{cid}")
        try:
            leg = await self.voice.ua.place_call(
                target.sip, headers=[(HANDOFF_HEADER, header)], timeout=ANSWER_S,
                from_uri=f"sip:{contact.ani or 'anonymous'}@{self.voice.host}",
                media_near=legs.call.media,  # one media worker carries both legs
            )  # fmt: skip
        except CallFailed as exc:
            await self._failed(contact, legs, target, f"{exc.status} {exc.reason}")
            return
        if not legs.call.is_active:  # the caller left as it answered: that node records it
            leg.terminate("caller_gone")
            return
        self.stats["out"] += 1
        log.info("contact %s moved to node %s (agent %s free there)", cid, target.node,
                 target.agent_id, extra={"contact_id": cid, "to_node": target.node,
                                         "agent_id": target.agent_id})  # fmt: skip
        self.core.handed_off(contact)
        bridge_legs(legs.call, leg)

    def _still(self, contact: Contact) -> bool:
        """Still waiting here, un-offered (an agent here may have become free meanwhile)."""
        return (contact.phase is Phase.QUEUED and contact.offer is None
                and self.core.contacts.get(contact.contact_id) is contact)  # fmt: skip

    async def _ours(self, contact_id: str) -> bool:
        """Take the key back: True when the contact stays this node's. Redis unreachable:
        kept here (a caller on this node's line must not be left with nobody routing them)."""
        try:
            return await self.keys.take_back(contact_id)
        except (RedisError, OSError) as exc:
            log.warning("contact %s: handoff key not taken back (%s); kept here", contact_id, exc)
            return True

    async def _failed(self, contact: Contact, legs: VoiceLegs, target: FreeAgent, why: str) -> None:
        self.stats["failed"] += 1
        self.agents.drop(target.node)  # not again until that node is heard from again
        cid = contact.contact_id
        if await self._ours(cid):
            log.warning("contact %s: node %s did not take it (%s); it waits here again", cid,
                        target.node, why, extra={"contact_id": cid, "to_node": target.node})  # fmt: skip
            if self.core.contacts.get(cid) is not contact or contact.phase is not Phase.QUEUED:
                return
            legs.stop_treatment()
            self.voice.waiting(contact)  # the announcements and the queue's keys again
            if not self.core.take_back(contact):
                self.voice.no_agent(contact, "this line cannot take calls right now")
            return
        # That node took the key but its call failed: the contact is that node's, which
        # records how it ended; the caller here is hung up.
        log.warning("contact %s: node %s took it but the call failed (%s)", cid, target.node, why,
                    extra={"contact_id": cid, "to_node": target.node})  # fmt: skip
        if self.core.contacts.get(cid) is contact:
            self.core.handed_off(contact)
        legs.call.terminate("handoff_failed")

    def caller_left(self, contact: Contact) -> bool:
        """The caller hung up while a move was in progress: True when the move handles it
        (the contact is this node's only if it can take its key back)."""
        cid = contact.contact_id
        task, keyed = self.moving.get(cid), cid in self.keyed
        if task is not None:
            task.cancel()  # place_call CANCELs the INVITE (or hangs up a leg that was answered)
        if not keyed:
            return False  # still in routing here: an abandon as any other
        self.voice.tasks.spawn(self._after_caller_left(contact), f"handoff-left:{contact.contact_id}")
        return True

    async def _after_caller_left(self, contact: Contact) -> None:
        if self.core.contacts.get(contact.contact_id) is not contact:
            return
        if await self._ours(contact.contact_id):
            self.core.abandon(contact, "remote_bye", "caller")
        else:
            self.core.handed_off(contact)  # the other node took it and records the abandon

    # ------------------------------------------------------------------ in

    async def adopt(self, call: Call, header: str, legs_for: Callable[[Call], VoiceLegs]) -> None:
        """A call from another node carrying a handoff key."""
        try:
            data = await self.keys.take(header)
        except (RedisError, OSError, ValueError) as exc:
            log.warning("handoff from another node refused: %s", exc)
            await call.reject(503, "Handoff Unavailable")
            return
        if data is None:
            await call.reject(403, "Handoff Key Unknown")
            return
        contact = rebuilt(data)
        cid = contact.contact_id
        call.data["contact_id"] = cid
        self.voice.legs[cid] = legs_for(call)
        self.handed_in.add(cid)
        self.core.adopt(contact, ev.ContactHandedOff(contact_id=cid, from_node=str(data["from_node"]),
                                                     to_node=self.keys.node,
                                                     agent_id=str(data.get("agent_id") or "")))  # fmt: skip
        call.add_end_callback(self.voice.caller_gone)  # from now on this node records the end
        try:
            await call.answer()
        except CallError:
            return  # cancelled: caller_gone recorded the abandon
        self.stats["in"] += 1
        self.voice.waiting(contact)
        if not self.core.take_back(contact):
            self.voice.no_agent(contact, "this line cannot take calls right now")
        await call.ended.wait()
