"""DNIS 600: the echo test a newcomer calls first.

Answers, plays a prompt (a pre-rendered 8 kHz WAV, raw G.711 file or PCM bytes;
the lead renders it with TTS), then sends every DTMF digit it receives back to
the caller as tones (RFC 4733 events when negotiated, else in-band). A digit
pressed during the prompt cuts the prompt short and is echoed too. The call
lasts until the caller hangs up, or ``max_seconds`` passes.
"""

from __future__ import annotations

import logging
import os
import weakref

from callcenter.media.interface import MediaSession
from callcenter.sip.calls import Call, CallError

log = logging.getLogger(__name__)

ECHO_DNIS = "600"


class EchoTest:
    """``on_call`` handler: ``ua = UserAgent(engine, on_call=EchoTest(prompt))``."""

    def __init__(
        self, prompt: str | os.PathLike[str] | bytes | None = None, *, max_seconds: float = 600.0
    ) -> None:
        self.prompt = prompt
        self.max_seconds = max_seconds

    async def __call__(self, call: Call) -> None:
        try:
            await call.answer()
        except CallError:
            return  # cancelled before we got to it
        media = call.media
        echoed: list[str] = []
        call.data["echoed_digits"] = echoed
        # The callback holds the session weakly: session → callback → session would be a cycle.
        media_ref: weakref.ref[MediaSession] = weakref.ref(media)
        call_id = call.call_id

        def echo(digit: str, source: str) -> None:
            session = media_ref()
            if session is None:
                return
            echoed.append(digit)
            log.info("echo test: digit %s (%s) on %s", digit, source, call_id)
            session.send_dtmf(digit)

        media.on_dtmf = echo
        if self.prompt is not None:
            try:
                await media.play(self.prompt, interrupt_on_dtmf=True)
            except ValueError:
                log.exception("echo test: cannot play prompt %r", self.prompt)
        if not await call.wait_ended(self.max_seconds):
            await call.hangup("max_duration")
        del echo


async def echo_test(call: Call, prompt: str | os.PathLike[str] | bytes | None = None) -> None:
    """Function form of :class:`EchoTest`."""
    await EchoTest(prompt)(call)


__all__ = ["ECHO_DNIS", "EchoTest", "echo_test"]
