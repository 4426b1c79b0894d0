"""Offline synthesis engines: pyttsx3 (on espeak-ng) and the espeak-ng command line.

Both speak with the same espeak-ng voices and return (samples, rate) at the engine's
native rate (22.05 kHz); the cache in ``tts.py`` resamples to 8 kHz and stores.

pyttsx3 runs in a long-lived worker process (``pyttsx3_worker``) driven over pipes
from asyncio: its espeak driver keeps global state and is not thread-safe,
``runAndWait`` must be called once per file (only the last of several queued
``save_to_file`` calls is written), and it prints "Audio saved to …" on stdout — in the
worker that print goes to stderr, not the server's stdout, and a crash in the C
library cannot take the server down. The espeak-ng CLI runs as an asyncio
subprocess per prompt. Neither needs a thread of the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np

from callcenter.speech.audio import read_wav

log = logging.getLogger(__name__)

#: IVR language → espeak-ng voice (the language part of a flow's service)
LANGUAGE_VOICES = {
    "en": "en-us", "en-us": "en-us", "en-gb": "en-gb", "es": "es", "es-es": "es",
    "es-mx": "es-419", "fr": "fr", "fr-fr": "fr", "de": "de", "de-de": "de",
    "it": "it", "pt": "pt", "pt-br": "pt-br", "nl": "nl",
}


def voice_for(language: str, voice: str | None) -> str:
    if voice:
        return voice
    lang = language.lower().replace("_", "-")
    return LANGUAGE_VOICES.get(lang) or LANGUAGE_VOICES.get(lang.split("-")[0]) or "en-us"


class SynthesisEngine(Protocol):
    name: str
    version: str  # part of the cache key: a new engine version re-renders

    async def synthesize(self, text: str, voice: str, rate: int) -> tuple[np.ndarray, int]: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def _espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip().split("  ")[0]


class EspeakCliEngine:
    """``espeak-ng --stdout`` as an asyncio subprocess (~30 ms per prompt, no threads)."""

    name = "espeak-ng"

    def __init__(self) -> None:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        self.exe = exe
        self.version = _espeak_version()

    async def synthesize(self, text: str, voice: str, rate: int) -> tuple[np.ndarray, int]:
        proc = await asyncio.create_subprocess_exec(
            self.exe, "-v", voice, "-s", str(rate), "--stdout", "--", text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0 or not out:
            raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {err.decode(errors='replace')}")
        return read_wav(out)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


# --- pyttsx3 in a worker process -------------------------------------------------


class Pyttsx3Engine:
    """pyttsx3's espeak driver in one long-lived worker process (see pyttsx3_worker).

    Requests are serialised (one ``runAndWait`` at a time, ~10-20 ms each); a dead
    worker is restarted on the next request. If pyttsx3 still fails a prompt after its
    retries, the same espeak-ng voice is used through the CLI (``fallbacks`` counts it),
    so a caller never gets silence because of a driver glitch."""

    name = "pyttsx3"

    def __init__(self) -> None:
        self.version = f"pyttsx3-{metadata.version('pyttsx3')}/{_espeak_version()}"
        self._proc: asyncio.subprocess.Process | None = None
        self._lock: asyncio.Lock | None = None
        self._cli: EspeakCliEngine | None = None
        self.fallbacks = 0

    async def synthesize(self, text: str, voice: str, rate: int) -> tuple[np.ndarray, int]:
        try:
            return await self._synthesize(text, voice, rate)
        except RuntimeError as exc:
            if "unknown espeak-ng voice" in str(exc):
                raise  # a config error, not a glitch: the CLI would fail the same way
            log.warning("pyttsx3 failed (%s); rendering with the espeak-ng CLI", exc)
            self.fallbacks += 1
            if self._cli is None:
                self._cli = EspeakCliEngine()
            return await self._cli.synthesize(text, voice, rate)

    async def _worker(self) -> asyncio.subprocess.Process:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            return proc
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).with_name("pyttsx3_worker.py")),  # no package import
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError("pyttsx3 worker failed to start")
        self._proc = proc
        return proc

    async def _synthesize(self, text: str, voice: str, rate: int) -> tuple[np.ndarray, int]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            proc = await self._worker()
            assert proc.stdin is not None and proc.stdout is not None
            fd, tmp = tempfile.mkstemp(suffix=".wav", prefix="tts-")
            os.close(fd)
            try:
                req = {"text": text, "voice": voice, "rate": rate, "out": tmp}
                proc.stdin.write((json.dumps(req) + "\n").encode())
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                if not line:
                    raise RuntimeError("pyttsx3 worker died")
                answer = json.loads(line)
                if "error" in answer:
                    raise RuntimeError(f"pyttsx3: {answer['error']}")
                data = await asyncio.to_thread(Path(tmp).read_bytes)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return read_wav(data)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def aclose(self) -> None:
        """Stop the worker and reap it (call before the loop closes)."""
        proc = self._proc
        self.close()
        if proc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
