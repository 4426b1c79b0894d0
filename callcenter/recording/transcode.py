"""WAV → Ogg Opus with opus-tools, verified before the WAV goes.

Why opus-tools (``opusenc``/``opusdec``, Debian's ``opus-tools``) and not PyAV or lame:
the encoder runs as its own process at low priority (``nice``), so a long call's encode
never takes the GIL or a core from the media clock; it reads our stereo WAV as it is;
Opus at 24 kb/s stereo is ~180 KB a minute (WAV: 1.9 MB), better than MP3 at that rate
for speech, and browsers play Ogg Opus natively. PyAV would encode in this process (a
thread holding the GIL between frames) and brings FFmpeg's whole library set for one codec;
lame makes MP3, which needs ~2x the bitrate for the same speech quality.

Verification: the Ogg file is decoded back with ``opusdec`` and its length must match the
WAV's within 50 ms (an encoder killed half-way, a full disk, a truncated file all fail);
only then is the WAV removed.
"""

from __future__ import annotations

import asyncio
import tempfile
import wave
from pathlib import Path

TOLERANCE_S = 0.05


class TranscodeError(RuntimeError):
    pass


async def _run(*cmd: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "nice", "-n", "10", *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise TranscodeError(f"{cmd[0]} exited {proc.returncode}: {err.decode(errors='replace')[-300:]}")


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


async def to_opus(wav: Path, out: Path, bitrate_kbps: int = 24) -> float:
    """Encode and verify; the seconds of audio. The WAV is left for the caller to remove."""
    seconds = wav_seconds(wav)
    await _run("opusenc", "--quiet", "--bitrate", str(bitrate_kbps), str(wav), str(out))
    with tempfile.TemporaryDirectory() as tmp:
        back = Path(tmp) / "check.wav"
        await _run("opusdec", "--quiet", "--rate", "8000", str(out), str(back))
        decoded = wav_seconds(back)
    if abs(decoded - seconds) > TOLERANCE_S:
        raise TranscodeError(f"{out}: decodes to {decoded:.3f} s, the recording has {seconds:.3f} s")
    return seconds
