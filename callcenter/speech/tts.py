"""Cached offline TTS: text → 8 kHz mono 16-bit WAV on disk, never blocking the loop.

Cache key = sha256 of (text, language, voice, rate, engine name and version, output
format). A hit is one ``stat`` (an ``os.path.exists`` on the loop is cheap enough; no
thread hop). A miss synthesises through the engine (worker process or subprocess),
resamples to 8 kHz in a thread, and writes atomically (temp file + rename), so a
crash or a concurrent reader never sees half a WAV. Concurrent identical requests
share one render (an in-flight task per key).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from callcenter.speech.audio import TELEPHONE_RATE, resample, wav_bytes, write_atomic
from callcenter.speech.tts_engines import (
    EspeakCliEngine,
    Pyttsx3Engine,
    SynthesisEngine,
    voice_for,
)

log = logging.getLogger(__name__)

FORMAT = "wav-8k-s16-mono-v1"
DEFAULT_RATE = 160  # words per minute; a little slower than espeak's 175 for the phone
PEAK = 0.7 * 32767  # normalise prompts to −3 dBFS peak so every prompt is equally loud


class CachedTts:
    """``TextToSpeech`` over a synthesis engine with an on-disk cache."""

    def __init__(
        self, cache_dir: Path, engine: SynthesisEngine | None = None, *,
        default_rate: int = DEFAULT_RATE,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.engine: SynthesisEngine = engine if engine is not None else Pyttsx3Engine()
        self.default_rate = default_rate
        self._inflight: dict[str, asyncio.Task[Path]] = {}
        self.renders = 0  # engine calls (misses), for tests and metrics
        self.hits = 0

    @classmethod
    def create(cls, cache_dir: Path, engine: str = "pyttsx3", **kw: int) -> CachedTts:
        """``engine``: "pyttsx3" (the documented default) or "espeak-ng" (CLI)."""
        if engine == "pyttsx3":
            return cls(cache_dir, Pyttsx3Engine(), **kw)
        if engine == "espeak-ng":
            return cls(cache_dir, EspeakCliEngine(), **kw)
        raise ValueError(f"unknown TTS engine {engine!r} (pyttsx3 | espeak-ng)")

    def key(self, text: str, language: str, voice: str | None, rate: int | None) -> str:
        ident = {
            "text": text, "language": language.lower(), "voice": voice_for(language, voice),
            "rate": rate or self.default_rate, "engine": self.engine.name,
            "engine_version": self.engine.version, "format": FORMAT,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.wav"

    async def render(
        self, text: str, *, language: str = "en-US", voice: str | None = None,
        rate: int | None = None,
    ) -> Path:
        text = " ".join(text.split())
        if not text:
            raise ValueError("nothing to say: empty prompt text")
        key = self.key(text, language, voice, rate)
        path = self.path_for(key)
        if os.path.exists(path):
            self.hits += 1
            return path
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._render(text, language, voice, rate, path))
            self._inflight[key] = task
            task.add_done_callback(lambda _t, k=key: self._inflight.pop(k, None))
        # shield: one caller hanging up must not cancel the render others wait for
        return await asyncio.shield(task)

    async def _render(
        self, text: str, language: str, voice: str | None, rate: int | None, path: Path
    ) -> Path:
        samples, src_rate = await self.engine.synthesize(
            text, voice_for(language, voice), rate or self.default_rate)
        self.renders += 1
        data = await asyncio.to_thread(_to_telephone_wav, samples, src_rate)
        await asyncio.to_thread(write_atomic, path, data)
        return path

    async def prerender(
        self, texts: Iterable[str], *, language: str = "en-US", voice: str | None = None,
        rate: int | None = None,
    ) -> list[Path]:
        """Render a flow's static prompts; a prompt that fails is logged and skipped
        (it will be tried again on demand), so one bad text cannot stop a flow loading."""
        out: list[Path] = []
        for text in dict.fromkeys(texts):
            try:
                out.append(await self.render(text, language=language, voice=voice, rate=rate))
            except Exception:
                log.exception("could not pre-render prompt %r", text)
        return out

    def close(self) -> None:
        self.engine.close()

    async def aclose(self) -> None:
        await self.engine.aclose()


def _to_telephone_wav(samples: np.ndarray, rate: int) -> bytes:
    pcm = resample(samples, rate, TELEPHONE_RATE).astype(np.float64)
    peak = float(np.max(np.abs(pcm))) if pcm.size else 0.0
    if peak > 0:
        pcm *= PEAK / peak
    return wav_bytes(np.rint(pcm).astype("<i2"), TELEPHONE_RATE)
