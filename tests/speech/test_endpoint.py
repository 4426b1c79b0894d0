"""The energy gate that ends an utterance (pure: RMS values in, quiet-frame count out)."""

from __future__ import annotations

import numpy as np

from callcenter.speech.endpoint import QuietRun, frame_rms


def test_frame_rms_of_a_square_wave_and_of_silence() -> None:
    assert frame_rms(np.full(160, 1000, dtype="<i2").tobytes()) == 1000.0
    assert frame_rms(bytes(320)) == 0.0


def test_quiet_frames_count_from_the_last_loud_frame() -> None:
    gate = QuietRun()
    gate.start([0.0] * 10)  # digital silence before the caller
    for rms in [3000, 5000, 4000, 50, 0, 0]:
        gate.update(rms)
    assert gate.quiet_frames == 3
    assert gate.update(2000)  # talking again
    assert gate.quiet_frames == 0


def test_a_weak_fricative_above_the_floor_keeps_the_utterance_open() -> None:
    gate = QuietRun()
    gate.start([])
    gate.update(6000)
    assert gate.update(150)  # ~ -47 dBFS /s/ after a loud vowel: still speech (peak - 40 dB = 60)
    assert not gate.update(90)  # below the absolute floor


def test_line_noise_measured_before_the_caller_raises_the_threshold() -> None:
    gate = QuietRun()
    gate.start([400.0, 420.0, 380.0, 2500.0])  # a noisy line; the onset frame is not the noise
    assert 900 < gate.threshold() < 1100  # 2.5 x the quiet frames' level
    gate.update(5000)
    assert not gate.update(600)  # line noise after the words counts as quiet
