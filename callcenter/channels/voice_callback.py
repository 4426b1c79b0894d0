"""Calling a customer back for the agent who took their callback request.

The agent answers the offer on their phone, hears where the call goes, and the
server dials the customer through ``callbacks.dial_uri``; when the customer
answers, the two legs are bridged like any answered call. If they do not, the
request goes back to its place in the queue after ``retry_after_s``, up to
``max_attempts`` dials in all.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, cast

from callcenter import events as ev
from callcenter.config import CallbacksCfg
from callcenter.contacts.contact import Contact, Phase
from callcenter.sip.calls import Call, CallFailed

if TYPE_CHECKING:
    from callcenter.channels.voice import VoiceChannel, VoiceLegs


class _GoneLeg:
    """The customer's leg of a callback request restored after a restart: never active, and
    no media to stay near (the agent's leg may go to any media worker)."""

    is_active = False
    media = None


GONE_LEG = cast(Call, _GoneLeg())


def dial_result(exc: BaseException | None) -> str:
    status = exc.status if isinstance(exc, CallFailed) else 0
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):  # 487: our own CANCEL when ring_s ran out
        return "no_answer"
    return "failed"


class CallbackDialler:
    def __init__(self, channel: VoiceChannel, cfg: CallbacksCfg) -> None:
        self.channel = channel
        self.core = channel.core
        self.cfg = cfg
        self._retries: dict[str, asyncio.TimerHandle] = {}  # callbacks waiting to re-enter a queue

    @property
    def can_dial_out(self) -> bool:
        return self.cfg.dial_uri is not None

    def can_call_back(self, contact: Contact) -> bool:
        return self.can_dial_out and bool(contact.ani)

    def start(self, contact: Contact, legs: VoiceLegs, agent_leg: Call, agent_id: str) -> None:
        """The agent's phone answered a callback offer: accept it and dial the customer."""
        created = self.core.router.tasks[contact.contact_id].created  # its place in the queue
        self.core.accept(contact.contact_id, agent_id)
        self.channel.tasks.spawn(
            self._call_back(contact, legs, agent_leg, agent_id, created), f"callback:{contact.contact_id}"
        )

    async def _call_back(
        self, contact: Contact, legs: VoiceLegs, agent_leg: Call, agent_id: str, created: float
    ) -> None:
        cfg = self.cfg
        number = contact.callback_number or ""
        legs.agent_call = agent_leg
        self.core.dial_back(contact, agent_id)
        spoken = " ".join(number.lstrip("+"))
        self.channel.tasks.spawn(
            self._tell(agent_leg, f"Calling the customer back on {spoken}."), "callback-tell"
        )
        dial = self.channel.tasks.spawn(
            self.channel.ua.place_call(
                cfg.uri_for(number),
                from_uri=f"sip:{contact.dnis or 'callcenter'}@{self.channel.host}",
                headers=[("X-Interaction-Id", contact.contact_id)],
                timeout=cfg.ring_s,
                media_near=agent_leg.media,
            ),
            f"dial:{contact.contact_id}",
        )
        agent_gone = asyncio.ensure_future(agent_leg.ended.wait())
        await asyncio.wait({dial, agent_gone}, return_when=asyncio.FIRST_COMPLETED)
        agent_gone.cancel()
        leg: Call | None = None
        if not dial.done():  # the agent hung up first: place_call CANCELs the INVITE
            dial.cancel()
            result = "agent_hung_up"
        elif dial.exception() is not None:
            result = dial_result(dial.exception())
        else:
            leg = dial.result()
            result = "answered" if agent_leg.is_active else "agent_hung_up"
        if result == "answered" and leg is not None:
            self.core.publish(
                ev.CallbackAttempted(
                    contact_id=contact.contact_id,
                    agent_id=agent_id,
                    number=number,
                    attempt=contact.callback_attempts,
                    result=result,
                )
            )
            legs.call = leg
            leg.data["contact_id"] = contact.contact_id
            leg.add_end_callback(self.channel.caller_gone)
            self.channel.talk(contact, legs, agent_leg, agent_id)
            return
        if leg is not None:
            leg.terminate("agent_gone")
        agent_leg.terminate("callback_not_answered")
        legs.agent_call = None
        retry = contact.callback_attempts < cfg.max_attempts
        self.core.callback_missed(contact, agent_id, number, result, retry=retry)
        if retry:
            self._retries[contact.contact_id] = asyncio.get_running_loop().call_later(
                cfg.retry_after_s, self._retry, contact, created
            )

    def _retry(self, contact: Contact, created: float) -> None:
        """Back into the queue with the original creation time, so it keeps its place."""
        self._retries.pop(contact.contact_id, None)
        if contact.phase is not Phase.CALLBACK or contact.contact_id not in self.core.contacts:
            return
        if not self.core.submit(contact, created=created):
            self.core.fail(contact, "callback_failed")

    async def _tell(self, leg: Call, text: str) -> None:
        with contextlib.suppress(Exception):  # a courtesy prompt; its failure must not stop the dial
            await self.channel.say(leg, text)

    def close(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
