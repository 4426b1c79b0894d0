"""Audio between aiortc and the gateway's RTP: 20 ms frames of 16-bit PCM at 8 kHz.

Towards the browser, ``LineTrack`` is the outgoing aiortc track: it is paced by its own
clock (aiortc pulls one frame every 20 ms) and plays what the call's RTP pushed into a
small jitter buffer, or silence between calls, so the peer connection stays up and ready.
From the browser, ``frames_to_pcm`` resamples whatever aiortc decoded (8 kHz PCMU/PCMA or
48 kHz stereo Opus) to the 8 kHz mono PCM the G.711 side needs.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 8000
SAMPLES = 160  # 20 ms
FRAME_BYTES = SAMPLES * 2
PTIME = 0.020
# At most this much audio waits for the browser (a late burst is cut, not played late).
MAX_BUFFER_BYTES = FRAME_BYTES * 10
SILENCE = bytes(FRAME_BYTES)


def rms(pcm: bytes) -> float:
    a = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return math.sqrt(float(np.mean(a * a))) if a.size else 0.0


class LineTrack(MediaStreamTrack):
    """The audio the browser hears: pushed PCM, else silence, one frame per 20 ms."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._start: float | None = None
        self._timestamp = 0
        self.frames_sent = 0
        self.audio_frames_sent = 0  # frames carrying call audio (not filler silence)

    def push(self, pcm: bytes) -> None:
        self._buffer += pcm
        if len(self._buffer) > MAX_BUFFER_BYTES:
            del self._buffer[: len(self._buffer) - MAX_BUFFER_BYTES]

    def clear(self) -> None:
        self._buffer.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += SAMPLES
            wait = self._start + self._timestamp / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        if len(self._buffer) >= FRAME_BYTES:
            pcm = bytes(self._buffer[:FRAME_BYTES])
            del self._buffer[:FRAME_BYTES]
            self.audio_frames_sent += 1
        else:
            pcm = SILENCE
        self.frames_sent += 1
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, SAMPLES), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class PcmChunker:
    """Any decoded aiortc frame in, 20 ms chunks of 8 kHz mono PCM out."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._pending = bytearray()

    def feed(self, frame: av.AudioFrame) -> list[bytes]:
        for out in self._resampler.resample(frame):
            self._pending += out.to_ndarray().tobytes()
        chunks = []
        while len(self._pending) >= FRAME_BYTES:
            chunks.append(bytes(self._pending[:FRAME_BYTES]))
            del self._pending[:FRAME_BYTES]
        return chunks


__all__ = ["FRAME_BYTES", "RATE", "SAMPLES", "LineTrack", "MediaStreamError", "PcmChunker", "rms"]
