"""Where the caller stopped talking: an energy gate with hysteresis for 8 kHz G.711 audio.

Why not pocketsphinx's ``Endpointer`` alone (it still detects the *start*): its WebRTC
VAD keeps saying "speech" for a hangover of its own after the voice stops, and the
end-pointer then needs 90 % of its window unvoiced, so on the bench's 234 phone-band
utterances it ended 340 ms (p50) / 440 ms (p99) after the last loud frame, most of the
decision latency. Frame energy against the utterance's own level is immediate and,
unlike a stricter VAD mode, does not call the weak fricatives inside "six" or "sales"
silence (STRICT saw 160-220 ms "gaps" inside them; energy saw at most 60 ms).

A frame is *quiet* when its RMS is at or below the highest of: an absolute floor
(≈ −50 dBFS, G.711 idle-channel noise sits well below), a multiple of the line noise
measured before the caller started, and the utterance's peak less ``rel_db``. The VAD
is not consulted per frame: after a pause it needs its window of voiced frames before
it says "speech" again, and counting those frames as quiet cut "technical ... support"
at a 0.4 s pause. (The recogniser still ends an utterance if the VAD stays silent for
long, for a line whose noise rises after the caller started.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def frame_rms(pcm16: bytes) -> float:
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


@dataclass(slots=True)
class QuietRun:
    """Counts consecutive quiet frames after the last loud one, for one utterance."""

    floor_rms: float = 100.0
    rel_db: float = 40.0
    noise_ratio: float = 2.5
    noise_rms: float = 0.0
    peak_rms: float = 0.0
    quiet_frames: int = 0
    _rel: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._rel = 10.0 ** (-self.rel_db / 20.0)

    def start(self, noise_frames_rms: list[float]) -> None:
        """A new utterance; ``noise_frames_rms``: RMS of frames heard before it (line noise)."""
        # 20th percentile: the quietest frames before the onset, not the onset itself
        self.noise_rms = float(np.percentile(noise_frames_rms, 20)) if noise_frames_rms else 0.0
        self.peak_rms = 0.0
        self.quiet_frames = 0

    def threshold(self) -> float:
        return max(self.floor_rms, self.noise_ratio * self.noise_rms, self._rel * self.peak_rms)

    def update(self, rms: float) -> bool:
        """Account one frame; True if it was loud (the caller is still talking)."""
        self.peak_rms = max(self.peak_rms, rms)
        loud = rms > self.threshold()
        self.quiet_frames = 0 if loud else self.quiet_frames + 1
        return loud
