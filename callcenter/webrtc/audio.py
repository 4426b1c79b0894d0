"""Audio between aiortc and the gateway's RTP: 20 ms frames of 16-bit PCM at 8 kHz.

Towards the browser, ``LineTrack`` is the outgoing aiortc track: it is paced by its own
clock (aiortc pulls one frame every 20 ms) and plays what the call's RTP pushed into a
small jitter buffer, or silence between calls, so the peer connection stays up and ready.
When the browser took PCMU or PCMA (``LineTrack.g711``), the track holds G.711 bytes and
hands aiortc ready-made packets (``av.Packet``): aiortc then skips its encoder, which it
runs in a thread pool for every frame — the call's G.711 passes through untouched, and
bench/webrtc.py measured that hop as the main source of late packets.
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

from callcenter.media import g711

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
    """The audio the browser hears: pushed audio, else silence, one frame per 20 ms."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._start: float | None = None
        self._timestamp = 0
        self.g711 = ""  # "PCMU"/"PCMA": the browser's codec, buffered and sent as is
        self._frame = FRAME_BYTES  # bytes of one 20 ms frame in the buffer
        self._silence = SILENCE
        self.frames_sent = 0
        self.audio_frames_sent = 0  # frames carrying call audio (not filler silence)
        # set: the first frame waits until the line knows it stays on aiortc's path; a line
        # handed to the media engine (lean.py) never releases it, so aiortc sends no RTP
        self._gate: asyncio.Event | None = None

    def hold_first_frame(self) -> None:
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def use_g711(self, codec: str) -> None:
        """Hold ``codec`` bytes and send them unencoded (set once the answer chose it)."""
        self.g711 = codec
        self._frame = SAMPLES
        self._silence = g711.encode(codec, SILENCE)
        self._buffer.clear()

    def push(self, pcm: bytes) -> None:
        self._append(g711.encode(self.g711, pcm) if self.g711 else pcm)

    def push_g711(self, codec: str, payload: bytes) -> None:
        """The call's RTP payload: as is when the browser has the same codec."""
        if codec == self.g711:
            self._append(payload)
        else:
            self.push(g711.decode(codec, payload))

    def _append(self, data: bytes) -> None:
        self._buffer += data
        limit = MAX_BUFFER_BYTES * self._frame // FRAME_BYTES
        if len(self._buffer) > limit:
            del self._buffer[: len(self._buffer) - limit]

    def clear(self) -> None:
        self._buffer.clear()

    async def recv(self) -> av.AudioFrame | av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._gate is not None:
            await self._gate.wait()
            self._gate = None
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += SAMPLES
            wait = self._start + self._timestamp / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        size = self._frame
        if len(self._buffer) >= size:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            self.audio_frames_sent += 1
        else:
            data = self._silence
        self.frames_sent += 1
        if self.g711:
            packet = av.Packet(data)
            packet.pts = self._timestamp
            packet.time_base = fractions.Fraction(1, RATE)
            return packet
        pcm = data
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
        if frame.sample_rate == RATE and frame.format.name == "s16" and frame.layout.name == "mono":
            self._pending += frame.to_ndarray().tobytes()  # G.711 decoded: already what we need
        else:
            for out in self._resampler.resample(frame):
                self._pending += out.to_ndarray().tobytes()
        chunks = []
        while len(self._pending) >= FRAME_BYTES:
            chunks.append(bytes(self._pending[:FRAME_BYTES]))
            del self._pending[:FRAME_BYTES]
        return chunks


__all__ = ["FRAME_BYTES", "RATE", "SAMPLES", "LineTrack", "MediaStreamError", "PcmChunker", "rms"]
