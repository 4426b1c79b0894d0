"""What a caller hears while waiting or held, and the ways out of the queue by key.

While a voice contact waits in a queue the caller hears their position and
estimated wait, then music, until an agent takes the call. Past
``offer_options_after_s`` they may press 1 to leave a message instead, or 2 to
ask for a call back (the request keeps its place in the queue when the server
can dial out; else it is recorded for people to work from the CRM). A message
is recorded until the caller hangs up and becomes an attachment of the
interaction record through the VoicemailRecorded event.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter import events as ev
from callcenter.contacts.contact import Contact, Phase
from callcenter.ivr.media_port import beep_pcm
from callcenter.media.interface import Recording

if TYPE_CHECKING:
    from callcenter.channels.voice import VoiceChannel, VoiceLegs

MAX_MESSAGE_S = 120.0
RINGING_OR_WAITING = (Phase.QUEUED, Phase.OFFERED)


class WaitingTreatment:
    def __init__(
        self,
        channel: VoiceChannel,
        *,
        moh: Path,
        voicemail_dir: Path,
        announce_every_s: float,
        offer_options_after_s: float,
    ) -> None:
        self.channel = channel
        self.core = channel.core
        self.moh = moh
        self.voicemail_dir = voicemail_dir
        self.announce_every_s = announce_every_s
        self.offer_options_after_s = offer_options_after_s

    async def treat(self, contact: Contact, legs: VoiceLegs) -> None:
        """Position and estimated wait, then music, until the contact leaves the queue."""
        media = legs.call.media
        media.on_dtmf = lambda digit, _source: self._queue_key(contact, legs, digit)
        try:
            while contact.phase in RINGING_OR_WAITING and legs.call.is_active:
                if contact.phase is Phase.QUEUED:
                    text = self._position_text(contact.contact_id)
                    if contact.waited_s() >= self.offer_options_after_s:
                        text += " To leave a message instead, press 1."
                        if self.channel.dialler.can_call_back(contact):
                            text += " To be called back, press 2."
                    if text:
                        path = await self.channel.tts.render(text.strip(), language="en")
                        await media.play(str(path))
                deadline = time.monotonic() + self.announce_every_s
                while contact.phase in RINGING_OR_WAITING and time.monotonic() < deadline:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(media.play(str(self.moh)), deadline - time.monotonic())
        finally:
            with contextlib.suppress(Exception):
                media.stop_playing()

    def _queue_key(self, contact: Contact, legs: VoiceLegs, digit: str) -> None:
        # The keys work from the moment the options are due, even mid-announcement.
        if contact.phase is not Phase.QUEUED or digit not in "12":
            return
        if contact.waited_s() < self.offer_options_after_s:
            return
        cid = contact.contact_id
        if digit == "2" and self.channel.dialler.can_call_back(contact):
            # The task stays where it is in the queue; only the caller's line goes.
            contact.callback_number = contact.ani
            legs.stop_treatment()
            self.core.move(contact, Phase.CALLBACK, ev.CallbackRequested(contact_id=cid, number=contact.ani))
            self.channel.tasks.spawn(
                self._goodbye(
                    contact,
                    legs,
                    (
                        "Thank you. You keep your place in the queue, and we will call you back when it is "
                        "your turn. Goodbye."
                    ),
                ),
                "callback",
            )
            return
        legs.stop_treatment()
        if digit == "1":
            self.core.leave_queue(contact, "caller chose voicemail", Phase.VOICEMAIL)
            self.channel.tasks.spawn(
                self.take_message(contact, legs, "Please leave your message after the tone."), "vm"
            )
        else:
            # No way to dial out (callbacks.dial_uri unset, or the number was withheld):
            # the request is recorded for people to work from the CRM.
            self.core.leave_queue(
                contact,
                "caller chose callback",
                Phase.CALLBACK,
                ev.CallbackRequested(contact_id=cid, number=contact.ani),
            )
            self.channel.tasks.spawn(
                self._goodbye(
                    contact, legs, ("Thank you. We will call you back as soon as an agent is free. Goodbye.")
                ),
                "callback",
            )

    async def _goodbye(self, contact: Contact, legs: VoiceLegs, text: str) -> None:
        legs.call.media.stop_playing()
        await self.channel.say(legs.call, text)
        if contact.phase is not Phase.CONNECTED:  # an agent may have come while we spoke
            await legs.call.hangup("callback_requested")

    def _position_text(self, contact_id: str) -> str:
        router = self.core.router
        try:
            position = router.position(contact_id)
            wait = router.estimated_wait(contact_id)
        except Exception:
            return ""
        if position is None:
            return ""
        text = f"You are number {position} in the queue."
        if math.isfinite(wait) and wait > 0:
            minutes = max(1, round(wait / 60))
            text += f" Your expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
        return text

    async def take_message(self, contact: Contact, legs: VoiceLegs, prompt: str) -> None:
        """Record a voicemail until the caller hangs up (or MAX_MESSAGE_S)."""
        call = legs.call
        media = call.media
        media.stop_playing()
        await self.channel.say(call, prompt)
        await media.play(beep_pcm())
        if not call.is_active:
            return
        self.voicemail_dir.mkdir(parents=True, exist_ok=True)
        media.start_recording(str(self.voicemail_dir / f"{contact.contact_id}.wav"))
        # Stop the recording in the end callback: it runs before the call closes its media.
        call.add_end_callback(
            lambda _c: self.channel.tasks.spawn(
                self._message_saved(contact.contact_id, media.finish_recording()), "voicemail-saved"
            )
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.ended.wait(), MAX_MESSAGE_S)
        await call.hangup("voicemail_done")

    async def _message_saved(self, contact_id: str, recording: asyncio.Future[Recording | None]) -> None:
        result = await recording  # at once in process; a media worker answers over its pipe
        if result is not None:
            path, size, sha, seconds = result
            self.core.publish(
                ev.VoicemailRecorded(
                    contact_id=contact_id, path=path, size=size, sha256=sha, duration_s=seconds
                )
            )

    async def music(self, legs: VoiceLegs) -> None:
        """Music to the caller until this task is cancelled (unhold, transfer answered,
        caller gone) or the call's media closes."""
        media = legs.call.media
        try:
            await media.play(str(self.moh), loop=True)
        finally:
            with contextlib.suppress(Exception):
                media.stop_playing()
