"""Test tones and how to find them in what a party received (FFT band energy)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.support.polling import eventually

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


class Ears:
    """What one phone receives (``media.on_audio``), 20 ms frames."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __call__(self, frame: bytes) -> None:
        self.frames.append(frame)

    async def next(self, n: int = 30) -> bytes:
        start = len(self.frames) + 15  # a switch reaches the phone within a few frames
        await eventually(lambda: len(self.frames) >= start + n, timeout=15, what="audio")
        return b"".join(self.frames[start : start + n])

    async def expect(self, check: Callable[[bytes], bool], what: str = "audio") -> None:
        """Successive 0.6 s windows until one passes ``check`` (a switch takes effect within a
        few frames, later on a loaded machine); fails after 15 s with the last window's tones."""
        last = b""

        async def window() -> bool:
            nonlocal last
            last = await self.next()
            return check(last)

        try:
            await eventually(window, timeout=15, interval=0.0, what=what)
        except TimeoutError:
            raise AssertionError(f"{what}: the last window held {sorted(heard(last))}, "
                                 f"rms {rms(last):.0f}") from None
