"""The two small speech interfaces the IVR talks to, so a cloud engine can replace ours.

- ``TextToSpeech.render`` returns a path to an 8 kHz mono 16-bit PCM WAV (what the
  media layer plays; it encodes to G.711 per packet). No .ulaw file is written.
- ``SpeechRecognizer.start`` opens one streaming session per question asked:
  ``feed`` 20 ms frames of 16-bit PCM at 8 kHz as they arrive (cheap, any thread),
  ``await result(timeout)`` for the decision, ``speech_started`` for barge-in.

Times in a ``Recognition``: ``start_of_speech``/``end_of_speech`` are seconds of
audio since the session started (frames fed × 20 ms); ``end_of_speech_at`` and
``decided_at`` are ``time.monotonic()`` readings, so their difference is the
decision latency after the caller stopped talking.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class Outcome(enum.StrEnum):
    MATCH = "match"  # an expected phrase, confidence at or above the threshold
    NO_MATCH = "no_match"  # speech heard, but off-menu or below the threshold
    NO_INPUT = "no_input"  # no speech before the timeout


@dataclass(frozen=True, slots=True)
class Recognition:
    outcome: Outcome
    text: str | None  # what was heard (None for no-input; "" if nothing usable)
    phrase: str | None  # the expected phrase matched, exactly as passed to start()
    confidence: float  # 0..1
    start_of_speech: float | None = None
    end_of_speech: float | None = None
    end_of_speech_at: float | None = None
    decided_at: float = 0.0

    @property
    def latency(self) -> float | None:
        """Seconds from the last speech audio arriving to the decision."""
        if self.end_of_speech_at is None:
            return None
        return self.decided_at - self.end_of_speech_at


@runtime_checkable
class TextToSpeech(Protocol):
    async def render(
        self, text: str, *, language: str = "en-US", voice: str | None = None,
        rate: int | None = None,
    ) -> Path:
        """Path of an 8 kHz mono 16-bit WAV saying ``text`` (cached; never blocks the loop)."""
        ...

    async def prerender(
        self, texts: Iterable[str], *, language: str = "en-US", voice: str | None = None,
        rate: int | None = None,
    ) -> list[Path]:
        """Render a flow's static prompts ahead of the first caller."""
        ...


@runtime_checkable
class RecognitionSession(Protocol):
    speech_started: asyncio.Event  # set when the caller starts talking (barge-in)
    on_speech_started: Callable[[], None] | None  # optional callback, on the event loop

    def feed(self, pcm16_8k_frame: bytes) -> None: ...

    async def result(self, timeout: float) -> Recognition:
        """The decision. ``timeout`` bounds the wait for speech to *start* (no-input);
        once the caller is talking, it waits for the end-point."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SpeechRecognizer(Protocol):
    def start(self, phrases: list[str], *, language: str = "en-US") -> RecognitionSession: ...

    def unknown_words(self, phrases: Iterable[str], *, language: str = "en-US") -> list[str]:
        """Words the engine cannot recognise (for config checks at load time)."""
        ...
