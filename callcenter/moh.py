"""Music on hold, generated: no audio file to license or ship.

A slow, quiet arpeggio (C major, then A minor) rendered once to an 8 kHz
16-bit mono WAV in the data directory. Real deployments point
``server.yaml: media.moh`` … at their own file; the generated one proves the
pipeline and is pleasant enough for a demo.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 8000
NOTES_HZ = (261.63, 329.63, 392.00, 523.25, 220.00, 261.63, 329.63, 440.00)


def render_moh(path: Path, note_s: float = 0.5, amplitude: float = 0.12) -> Path:
    if path.exists():
        return path
    t = np.arange(int(RATE * note_s)) / RATE
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-3.0 * t)  # soft attack, bell-like decay
    notes = [np.sin(2 * np.pi * f * t) * envelope for f in NOTES_HZ]
    pcm = (np.concatenate(notes * 2) * amplitude * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    tmp.replace(path)
    return path
