"""Prompt loading (WAV or raw G.711) and recording received audio to WAV.

Prompts must be 8 kHz mono 16-bit PCM WAV, or headerless G.711 (``.ulaw``/``.ul``/``.pcmu``,
``.alaw``/``.al``/``.pcma``). Other WAV formats are refused with the exact conversion
command: resampling well needs a proper low-pass filter, which is sox's job at prompt
build time, not the media clock's at play time (the TTS cache already renders 8 kHz).
"""

from __future__ import annotations

import hashlib
import os
import wave
from pathlib import Path

from callcenter.media import g711

RATE = 8000
ULAW_SUFFIXES = {".ulaw", ".ul", ".pcmu", ".mulaw"}
ALAW_SUFFIXES = {".alaw", ".al", ".pcma"}


class AudioFormatError(ValueError):
    """A prompt file we cannot play as it is."""


def load_pcm_wav(path: str | os.PathLike[str]) -> bytes:
    """Frames of an 8 kHz mono 16-bit WAV file, or AudioFormatError naming the problem."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            if (rate, channels, width) != (RATE, 1, 2):
                raise AudioFormatError(
                    f"{path}: {rate} Hz, {channels} channel(s), {8 * width}-bit; prompts must be "
                    f"8000 Hz mono 16-bit PCM (convert: sox IN -r 8000 -c 1 -b 16 OUT.wav)"
                )
            return w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from None


def load_for_codec(source: str | os.PathLike[str] | bytes, codec: str) -> bytes:
    """Return the whole prompt encoded in ``codec``, ready to slice into 160-byte frames."""
    if isinstance(source, bytes | bytearray | memoryview):
        pcm = bytes(source)
        if len(pcm) % 2:
            raise AudioFormatError("PCM bytes must be 16-bit samples (even length)")
        return g711.encode(codec, pcm)
    path = Path(source)
    suffix = path.suffix.lower()
    try:
        if suffix in ULAW_SUFFIXES:
            return g711.transcode(path.read_bytes(), "PCMU", codec)
        if suffix in ALAW_SUFFIXES:
            return g711.transcode(path.read_bytes(), "PCMA", codec)
    except OSError as exc:
        raise AudioFormatError(f"{path}: {exc.strerror}") from None
    try:
        return g711.encode(codec, load_pcm_wav(path))
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such file") from None


class WavRecorder:
    """Writes received 8 kHz audio to a WAV file, filling lost/late gaps with silence.

    Gaps are derived from RTP timestamps so the file's length matches the call's time
    (up to ``max_gap`` samples per gap, so a peer's timestamp jump cannot write hours).
    """

    __slots__ = ("_next_ts", "_wav", "max_gap", "path", "samples")

    def __init__(self, path: str | os.PathLike[str], max_gap: int = RATE) -> None:
        self.path = Path(path)
        # kept open for the whole call and closed in close(): no context manager can span that
        self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(RATE)
        self._next_ts: int | None = None
        self.max_gap = max_gap
        self.samples = 0

    def write(self, pcm16: bytes, timestamp: int | None = None) -> None:
        if self._wav is None:
            return
        n = len(pcm16) // 2
        if timestamp is not None and self._next_ts is not None:
            gap = (timestamp - self._next_ts) & 0xFFFFFFFF
            if 0 < gap <= self.max_gap:
                self._wav.writeframesraw(b"\x00\x00" * gap)
                self.samples += gap
            elif gap >= 0x80000000:  # reordered/duplicate: earlier than expected, drop
                return
        if timestamp is not None:
            self._next_ts = (timestamp + n) & 0xFFFFFFFF
        self._wav.writeframesraw(pcm16)
        self.samples += n

    def close(self) -> tuple[str, int, str, float]:
        """Finish the file; return (path, size in bytes, sha256 hex, seconds of audio)."""
        if self._wav is not None:
            self._wav.close()
            self._wav = None
        size = self.path.stat().st_size
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return str(self.path), size, digest, self.samples / RATE
