"""A scripted CallPort: the caller's answers are a list, prompts are recorded.

This stands in for the media session only (the brief allows it: the flow
engine is tested on its own; tests/ivr/test_media_port.py runs it on real
RTP). It applies the same digit rules the media port applies, so a script
cannot feed the stepper an answer a real port would never produce.
"""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.ivr.ports import CallEnded, InputSpec, Recording, UserInput


def key(digits: str) -> UserInput:
    return UserInput(how="dtmf", value=digits)


def speech(phrase: str, confidence: float = 0.9, text: str | None = None) -> UserInput:
    return UserInput(how="speech", value=phrase, confidence=confidence, text=text or phrase)


def silence() -> UserInput:
    return UserInput.nothing()


@dataclass
class Barge:
    """An answer given while a prompt is still playing."""

    answer: UserInput


@dataclass
class HangUp:
    """The caller hangs up at this point of the script."""


@dataclass
class ScriptedPort:
    ani: str
    dnis: str
    script: list[UserInput | Barge | HangUp] = field(default_factory=list)
    transfer_ok: bool = True
    recorded_audio: bytes = b"\x00\x01" * 8000  # one second of (quiet) 8 kHz audio
    prompts: list[tuple[str | None, str | None, str]] = field(default_factory=list)
    collects: list[InputSpec] = field(default_factory=list)
    transfers: list[str] = field(default_factory=list)
    hung_up: bool = False
    hang_up_after_record: bool = False

    def _next(self) -> UserInput | Barge | HangUp | None:
        return self.script.pop(0) if self.script else None

    async def prompt(
        self, *, text: str | None, audio: str | None, language: str, barge_in: InputSpec | None
    ) -> UserInput | None:
        self.prompts.append((text, audio, language))
        if self.script and isinstance(self.script[0], HangUp):
            raise CallEnded
        if barge_in is not None and self.script and isinstance(self.script[0], Barge):
            answer = self.script.pop(0)
            assert isinstance(answer, Barge)
            return answer.answer
        return None

    async def collect(self, spec: InputSpec, *, initial: UserInput | None = None) -> UserInput:
        self.collects.append(spec)
        item = self._next()
        if isinstance(item, HangUp):
            raise CallEnded
        if isinstance(item, Barge):
            item = item.answer
        if item is None:
            if initial is not None:
                return initial
            return UserInput.nothing()
        if item.how == "dtmf":
            if spec.digits is None:
                return UserInput.nothing()
            rules = spec.digits
            digits = (initial.value if initial else "") + item.value
            terminated = bool(rules.terminator) and rules.terminator in digits
            if terminated and rules.terminator:
                digits = digits.split(rules.terminator, 1)[0] + rules.terminator
            return UserInput(how="dtmf", value=digits[: rules.max + (1 if terminated else 0)],
                             terminated=terminated)  # fmt: skip
        if item.how == "speech" and spec.phrases is None:
            return UserInput.nothing()
        return item

    async def record(self, path: str, *, max_seconds: float, beep: bool) -> Recording | None:
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(self.recorded_audio)
        if self.hang_up_after_record:
            self.script = [HangUp()]
        data = Path(path).read_bytes()
        return Recording(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                         seconds=len(self.recorded_audio) / 16000)  # fmt: skip

    async def transfer(self, uri: str) -> bool:
        self.transfers.append(uri)
        return self.transfer_ok

    async def hangup(self) -> None:
        self.hung_up = True

    def said(self) -> list[str]:
        return [t for t, _, _ in self.prompts if t]
