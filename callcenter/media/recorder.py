"""Stereo call recording, written by the media clock: customer left, agent right.

``StereoRecorder`` takes one 20 ms frame per side per tick (``CallMixer`` hands them over)
and streams them to a 16-bit 8 kHz stereo WAV. Memory is bounded: frames collect in one
buffer that is written out every ``FLUSH_BYTES`` (one second of audio, 32 KB), so a
two-hour call costs the same memory as a two-second one; the header's sizes are patched
when the file is closed (a crash leaves a file whose header says 0 bytes, which sox,
ffmpeg and opusenc still read to its end).

The timeline is the clock's: every tick writes one frame to both channels, whatever
arrived, so the channels stay aligned and the file's length is the recording's time.
While paused (PCI: a card number is being given) both channels get zeros and the interval
is listed; ``mark`` lists other intervals (hold) without changing the audio.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

RATE = 8000
FRAME = 160  # samples per channel per 20 ms tick
FLUSH_BYTES = RATE * 2 * 2  # one second of stereo 16-bit audio
_SILENT = np.zeros(FRAME, dtype=np.int16)


def wav_header(data_bytes: int, channels: int = 2) -> bytes:
    """A canonical 44-byte PCM WAV header (16-bit, 8 kHz)."""
    block = 2 * channels
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, RATE, RATE * block, block, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )


class StereoRecorder:
    __slots__ = ("_buf", "_fd", "_frame", "_intervals", "_open", "data_bytes", "path", "paused", "samples")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(self._fd, wav_header(0))
        self._buf = bytearray()
        self._frame = np.empty(2 * FRAME, dtype=np.int16)  # interleaved L R L R ...
        self.samples = 0  # per channel
        self.data_bytes = 0
        self.paused = False
        self._open: dict[str, int] = {}  # kind -> sample where its open interval began
        self._intervals: dict[str, list[list[float]]] = {}

    def write(self, left: np.ndarray | None, right: np.ndarray | None) -> None:
        """One tick: ``FRAME`` int16 samples per side (None: nothing arrived, silence)."""
        if self._fd is None:
            return
        frame = self._frame
        if self.paused:
            frame[:] = 0
        else:
            frame[0::2] = _SILENT if left is None else left
            frame[1::2] = _SILENT if right is None else right
        self._buf += frame.tobytes()
        self.samples += FRAME
        if len(self._buf) >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._buf and self._fd is not None:
            os.write(self._fd, self._buf)
            self.data_bytes += len(self._buf)
            self._buf = bytearray()

    # intervals ---------------------------------------------------------------------
    def mark(self, kind: str, on: bool) -> None:
        """Open or close an interval of ``kind`` ("pause", "hold") at the current sample."""
        if on and kind not in self._open:
            self._open[kind] = self.samples
        elif not on and kind in self._open:
            start = self._open.pop(kind)
            self._intervals.setdefault(kind, []).append([start / RATE, self.samples / RATE])

    def pause(self, on: bool) -> None:
        self.paused = on
        self.mark("pause", on)

    # end ---------------------------------------------------------------------------
    def close(self) -> dict[str, Any] | None:
        """Finish the file (header patched); its details: path, size, seconds, intervals by
        kind. None when already closed. No hash and no fsync here: this runs on the media
        clock, and the WAV is only an intermediate; the transcoder hashes and syncs the
        compressed file it keeps, off the clock."""
        if self._fd is None:
            return None
        for kind in list(self._open):
            self.mark(kind, False)
        self._flush()
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, wav_header(self.data_bytes))
        os.close(self._fd)
        self._fd = None
        return {
            "path": str(self.path),
            "size": 44 + self.data_bytes,
            "duration_s": self.samples / RATE,
            "intervals": {k: [[round(a, 3), round(b, 3)] for a, b in v] for k, v in self._intervals.items()},
        }

    def abort(self) -> None:
        """Close without finishing (the worker is going down)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
