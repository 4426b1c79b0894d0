"""Synthetic telephone utterances for tests, benchmarks and diagnostics.

espeak-ng (22.05 kHz) → sox: 8 kHz and the G.711 channel band (300–3400 Hz, a
windowed-sinc FIR) → µ-law (or A-law) encode and decode with the media layer's codec
→ 16-bit PCM at 8 kHz, exactly what ``session.on_audio`` hands the recogniser.

sox, not a numpy FFT brick-wall: zeroing FFT bins over a whole utterance rings (Gibbs)
into the silences around the words, and that alone turned correct recognitions of
"technical support" into wrong ones — a real channel filter is causal and short.
"""

from __future__ import annotations

import shutil
import subprocess

from callcenter.media import g711
from callcenter.speech.audio import FRAME_BYTES, TELEPHONE_RATE
from callcenter.speech.endpoint import frame_rms


def espeak_phone_pcm(text: str, voice: str = "en-us", speed: int = 175,
                     codec: str = "PCMU") -> bytes:
    """16-bit PCM at 8 kHz of ``text`` spoken by espeak-ng through a G.711 round trip."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        raise RuntimeError("espeak-ng and sox are needed (apt-get install espeak-ng sox)")
    wav = subprocess.run([espeak, "-v", voice, "-s", str(speed), "--stdout", "--", text],
                         capture_output=True, check=True, timeout=30).stdout
    pcm = subprocess.run(
        # -D: no dither, so the same text always gives the same audio (sox dithers by
        # default, which made recognition results differ from run to run)
        [sox, "-D", "-t", "wav", "-", "-t", "raw", "-r", str(TELEPHONE_RATE), "-e", "signed",
         "-b", "16", "-c", "1", "-", "sinc", "300-3400"],
        input=wav, capture_output=True, check=True, timeout=30).stdout
    return g711.decode(codec, g711.encode(codec, pcm))


def frames(pcm: bytes, *, lead: float = 0.5, tail: float = 1.0) -> list[bytes]:
    """20 ms frames with silence before and after (the end-pointer needs the tail)."""
    audio = b"\0\0" * int(TELEPHONE_RATE * lead) + pcm + b"\0\0" * int(TELEPHONE_RATE * tail)
    audio += b"\0" * (-len(audio) % FRAME_BYTES)
    return [audio[i : i + FRAME_BYTES] for i in range(0, len(audio), FRAME_BYTES)]


def trim_silence(pcm: bytes, rms: float = 100.0) -> bytes:
    """``pcm`` without the leading and trailing 20 ms frames at or below ``rms``
    (espeak-ng pads its output with silence; a test that inserts a pause of a given
    length between two words must not add those pads to it)."""
    n = len(pcm) // FRAME_BYTES
    loud = [i for i in range(n) if frame_rms(pcm[i * FRAME_BYTES : (i + 1) * FRAME_BYTES]) > rms]
    if not loud:
        return b""
    return pcm[loud[0] * FRAME_BYTES : (loud[-1] + 1) * FRAME_BYTES]
