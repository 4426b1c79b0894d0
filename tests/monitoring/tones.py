"""Test tones and how to find them in what a party received (FFT band energy)."""

from __future__ import annotations

import numpy as np

RATE = 8000
CUSTOMER_HZ, AGENT_HZ, SUPERVISOR_HZ = 500.0, 1100.0, 1700.0


def tone(hz: float, seconds: float = 1.0, amplitude: int = 6000) -> bytes:
    """A whole number of 20 ms frames of a sine (so a looped prompt has no gap)."""
    n = int(seconds * RATE) // 160 * 160
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(n) / RATE)).astype("<i2").tobytes()


def band_shares(pcm: bytes | np.ndarray, freqs: tuple[float, ...]) -> dict[float, float]:
    """Each frequency's share of the signal's energy (±40 Hz), Hann-windowed; 0 for silence."""
    x = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes | bytearray) else np.asarray(pcm)
    x = x.astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    total = float(spec.sum())
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    if total < 1e-9 * len(x):
        return dict.fromkeys(freqs, 0.0)
    return {hz: float(spec[(f > hz - 40) & (f < hz + 40)].sum()) / total for hz in freqs}


def heard(pcm: bytes | np.ndarray) -> set[float]:
    """Which of the three parties' tones the audio holds (a share above 10 %)."""
    shares = band_shares(pcm, (CUSTOMER_HZ, AGENT_HZ, SUPERVISOR_HZ))
    return {hz for hz, share in shares.items() if share > 0.10}


def rms(pcm: bytes | np.ndarray) -> float:
    x = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes | bytearray) else np.asarray(pcm)
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
