"""``MediaCallPort``: the IVR's CallPort over a real media session and speech engines.

- prompts: ``tts.render(text)`` → 8 kHz WAV (cached on disk) → ``session.play``;
  a key (``session.on_dtmf``: RFC 4733, in-band or SIP INFO) or a recognised
  phrase stops the prompt (barge-in) and is returned to the flow;
- speech: ``session.on_audio`` 20 ms frames → a recogniser session constrained
  to the phrases the step expects; its result arrives off the event loop;
- digits: a queue fed by ``on_dtmf``, read with first/inter-digit/overall timeouts;
- record: ``session.start_recording`` until '#', silence or the time limit;
- transfer / hang-up: callables from the call (the SIP layer owns the dialog).

The media session and the speech engines are reached through their protocols
(``callcenter.media.interface``, ``callcenter.speech.interfaces``), so any engine
with the same shape (a cloud one, a test double) plugs in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from callcenter.ivr.ports import CallEnded, DigitRules, InputSpec, Recording, UserInput
from callcenter.media.interface import MediaSession

if TYPE_CHECKING:  # types only: importing the speech package loads pocketsphinx
    from callcenter.speech.interfaces import (
        Recognition,
        RecognitionSession,
        SpeechRecognizer,
        TextToSpeech,
    )

log = logging.getLogger(__name__)

SPEECH_RMS = 500.0  # 16-bit RMS above which a 20 ms frame counts as voice (≈ -36 dBFS)


def beep_pcm(freq: float = 1000.0, seconds: float = 0.35, amplitude: int = 8000) -> bytes:
    """The tone before a voicemail: 16-bit PCM at 8 kHz."""
    t = np.arange(int(8000 * seconds)) / 8000.0
    return (amplitude * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes()


def _recognition_to_input(rec: Recognition | None) -> UserInput:
    """Map a Recognition to the IVR's answer: match → phrase, no-match → speech with
    value '' (the flow's no-match path), no-input → nothing."""
    if rec is None or rec.outcome == "no_input":  # Outcome is a StrEnum
        return UserInput.nothing()
    phrase = "" if rec.outcome == "no_match" else rec.phrase or ""
    return UserInput(how="speech", value=phrase, confidence=rec.confidence, text=rec.text or "")


class MediaCallPort:
    """One call's CallPort. Create it when the call is answered; ``close()`` when done."""

    def __init__(
        self,
        session: MediaSession,
        *,
        ani: str,
        dnis: str,
        tts: TextToSpeech,
        recognizer: SpeechRecognizer | None = None,
        transfer: Callable[[str], Awaitable[bool]] | None = None,
        hangup: Callable[[], Awaitable[None]] | None = None,
        voice: str | None = None,
        rate: int | None = None,
        record_silence_s: float = 5.0,
    ) -> None:
        self.session = session
        self.ani = ani
        self.dnis = dnis
        self.tts = tts
        self.recognizer = recognizer
        self._transfer = transfer
        self._hangup = hangup
        self.voice = voice
        self.rate = rate
        self.record_silence_s = record_silence_s
        # digits wait here until a step takes them; waiters only *watch* for them
        # (see _digit_ready), so a wait cancelled by another event never loses a key
        self.digits: deque[str] = deque()
        self._digit_event = asyncio.Event()
        self.ended = asyncio.Event()
        self._asr: RecognitionSession | None = None
        self._asr_phrases: tuple[str, ...] | None = None
        self._last_voice = 0.0
        self._loop = asyncio.get_running_loop()
        session.on_dtmf = self._on_dtmf
        session.on_audio = self._on_audio

    # --- callbacks from the media session (event loop thread) ---------------

    def _on_dtmf(self, digit: str, source: str) -> None:
        self.digits.append(digit)
        self._digit_event.set()

    async def _digit_ready(self) -> None:
        while not self.digits:
            self._digit_event.clear()
            await self._digit_event.wait()

    def _on_audio(self, frame: bytes) -> None:
        asr = self._asr
        if asr is not None:
            try:
                asr.feed(frame)
            except Exception:  # a recogniser fault must not kill the media path
                log.exception("recogniser feed failed; speech disabled for this turn")
                self._asr = None
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        if samples.size and float(np.sqrt(np.mean(samples * samples))) > SPEECH_RMS:
            self._last_voice = self._loop.time()

    def caller_hung_up(self) -> None:
        """Called by the call when BYE/CANCEL arrives: every wait ends with CallEnded."""
        self.ended.set()
        with contextlib.suppress(Exception):
            self.session.stop_playing()

    def close(self) -> None:
        self._asr = None
        self.session.on_dtmf = None
        self.session.on_audio = None

    # --- helpers ---------------------------------------------------------------

    def _check(self) -> None:
        if self.ended.is_set():
            raise CallEnded

    def _speech_session(
        self, phrases: tuple[str, ...] | None, language: str
    ) -> RecognitionSession | None:
        """The recogniser for these phrases; one started during the prompt carries over,
        so an answer spoken across the end of a prompt is heard whole."""
        if not phrases or self.recognizer is None:
            self._drop_speech()
            return None
        if self._asr is None or self._asr_phrases != phrases:
            self._drop_speech()
            try:
                self._asr = self.recognizer.start(list(phrases), language=language)
            except ValueError as exc:  # no model for the language, or no usable phrase
                log.info("no speech recognition for this question: %s", exc)
                return None
            self._asr_phrases = phrases
        return self._asr

    def _drop_speech(self) -> None:
        asr, self._asr, self._asr_phrases = self._asr, None, None
        if asr is not None:
            with contextlib.suppress(Exception):
                asr.close()

    async def _first(self, *aws: Awaitable[Any], timeout: float | None) -> tuple[int, Any]:
        """Index and result of the first awaitable to finish (-1 on timeout); cancels the rest.

        The caller hanging up always wins (raises CallEnded)."""
        tasks = [asyncio.ensure_future(a) for a in aws]
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait([*tasks, ended], timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if ended in done:
                raise CallEnded
            for i, t in enumerate(tasks):
                if t in done:
                    return i, t.result()
            return -1, None
        finally:
            for t in [*tasks, ended]:
                if not t.done():
                    t.cancel()
            for t in [*tasks, ended]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    # --- CallPort ---------------------------------------------------------------

    async def prompt(
        self, *, text: str | None, audio: str | None, language: str, barge_in: InputSpec | None
    ) -> UserInput | None:
        self._check()
        if barge_in is not None and barge_in.digits is not None and self.digits:
            return UserInput(how="dtmf", value=self.digits.popleft())  # typed ahead
        if barge_in is None or barge_in.digits is None:
            self._drain_digits()  # keys pressed during a non-interruptible prompt are dropped
        source: str | Path | None = audio
        if text:
            source = await self.tts.render(text, language=language, voice=self.voice, rate=self.rate)
        if source is None:
            return None
        asr = self._speech_session(barge_in.phrases if barge_in else None, language)
        keys = barge_in is not None and barge_in.digits is not None
        play_task = asyncio.ensure_future(
            self.session.play(os.fspath(source), interrupt_on_dtmf=keys)
        )
        try:
            waiters: list[Awaitable[Any]] = [asyncio.shield(play_task)]
            if keys:
                waiters.append(self._digit_ready())
            if asr is not None:
                waiters.append(asr.speech_started.wait())
            which, _value = await self._first(*waiters, timeout=None)
            if which == 0:
                if keys and self.digits:
                    # the media layer stopped the prompt on a key as it reported it
                    self._drop_speech()
                    return UserInput(how="dtmf", value=self.digits.popleft())
                return None  # played to the end; a recogniser already listening carries over
            self.session.stop_playing()
            if which == 1 and keys:
                self._drop_speech()
                return UserInput(how="dtmf", value=self.digits.popleft())
            # the caller started talking: stop the prompt and wait for the end-point
            assert asr is not None
            _, rec = await self._first(asr.result(barge_in.timeout if barge_in else 5.0),
                                       timeout=None)  # fmt: skip
            self._drop_speech()
            return _recognition_to_input(rec)
        finally:
            if not play_task.done():
                self.session.stop_playing()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await play_task

    def _drain_digits(self) -> None:
        self.digits.clear()

    async def collect(self, spec: InputSpec, *, initial: UserInput | None = None) -> UserInput:
        self._check()
        rules = spec.digits
        buf = initial.value if initial is not None and initial.how == "dtmf" else ""
        if rules is not None and buf:
            done = self._digits_done(buf, rules)
            if done is not None:
                return done
        asr = None if buf else self._speech_session(spec.phrases, spec.language)
        first_wait = rules.first_timeout if rules else spec.timeout
        deadline = self._loop.time() + (rules.overall_timeout if rules else first_wait)
        try:
            while True:
                now = self._loop.time()
                wait = (rules.inter_digit_timeout if rules else spec.timeout) if buf else first_wait
                wait = max(0.0, min(wait, deadline - now))
                waiters: list[Awaitable[Any]] = [self._digit_ready()]
                if asr is not None:
                    waiters.append(asr.result(wait))
                talking = asr is not None and asr.speech_started.is_set()
                # while the caller is talking the recogniser's end-point decides, not our timer
                which, value = await self._first(*waiters, timeout=None if talking else wait)
                if which == -1:
                    if asr is not None and asr.speech_started.is_set():
                        continue
                    return UserInput(how="dtmf", value=buf) if buf else UserInput.nothing()
                if which == 0:
                    if rules is None:
                        continue  # keys mean nothing here
                    self._drop_speech()
                    asr = None
                    buf += self.digits.popleft()
                    done = self._digits_done(buf, rules)
                    if done is not None:
                        return done
                    continue
                return _recognition_to_input(value)
        finally:
            self._drop_speech()

    @staticmethod
    def _digits_done(buf: str, rules: DigitRules) -> UserInput | None:
        if rules.terminator and rules.terminator in buf:
            head = buf.split(rules.terminator, 1)[0]
            return UserInput(how="dtmf", value=head + rules.terminator, terminated=True)
        if len(buf) >= rules.max:
            return UserInput(how="dtmf", value=buf[: rules.max])
        return None

    async def record(self, path: str, *, max_seconds: float, beep: bool) -> Recording | None:
        self._check()
        if beep:
            await self.session.play(beep_pcm())
        self._drain_digits()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.session.start_recording(path)
        start = self._loop.time()
        self._last_voice = start
        try:
            while True:
                now = self._loop.time()
                remaining = start + max_seconds - now
                silence_left = self._last_voice + self.record_silence_s - now
                if remaining <= 0 or silence_left <= 0:
                    break
                which, _ = await self._first(self._digit_ready(),
                                             timeout=min(remaining, silence_left, 0.5))  # fmt: skip
                if which == 0 and self.digits.popleft() in "#*":
                    break
        except CallEnded:
            pass  # a caller who hangs up after speaking has left a message: keep it
        finally:
            info = await self.session.finish_recording()
        if info is None:
            return None
        rec_path, size, sha256, seconds = info
        if seconds <= 0.0 or size <= 44:
            return None
        return Recording(path=str(rec_path), size=size, sha256=sha256, seconds=seconds)

    async def transfer(self, uri: str) -> bool:
        self._check()
        if self._transfer is None:
            return False
        return await self._transfer(uri)

    async def hangup(self) -> None:
        if self._hangup is not None and not self.ended.is_set():
            await self._hangup()
        self.ended.set()
