import io
import subprocess
import wave

import numpy as np
import pytest

from callcenter.media import dtmf_inband as dt
from callcenter.media import g711
from tests.support import require_tool

ALL = "0123456789*#ABCD"


def detect(pcm: bytes, frame: int = 320) -> list[str]:
    pcm += bytes(1600)  # a live stream goes on after the tone (the detector batches blocks)
    det = dt.DtmfDetector()
    out: list[str] = []
    for i in range(0, len(pcm), frame):
        out += det.feed(pcm[i : i + frame])
    return out


def through(codec: str, pcm: bytes) -> bytes:
    return g711.decode(codec, g711.encode(codec, pcm))


def test_matrix_form_equals_goertzel_recursion() -> None:
    rng = np.random.default_rng(1)
    block = rng.normal(0, 3000, dt.BLOCK)
    powers = dt.block_powers(block[None, :])[0]
    for i, f in enumerate(dt.ROWS + dt.COLS):
        assert powers[i] == pytest.approx(dt.goertzel_power(block, f), rel=1e-9)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
@pytest.mark.parametrize("level", [-30.0, -33.0])
def test_all_16_digits_40ms_at_low_level_through_g711(codec: str, level: float) -> None:
    # -30 dBm0 per tone, and -33 dBm0 per tone (= -30 dBm0 for the pair)
    pcm = dt.generate_digits(ALL, duration_ms=40, gap_ms=40, level_dbm0=level)
    assert "".join(detect(through(codec, pcm))) == ALL


def test_misaligned_frames_and_odd_chunking() -> None:
    pcm = b"\x00\x00" * 37 + dt.generate_digits("159#", 40, 40, -20)
    assert "".join(detect(through("PCMU", pcm), frame=222)) == "159#"


def test_long_tone_reported_once_and_repeats_after_gap() -> None:
    pcm = dt.generate_digit("5", 1000) + b"\x00\x00" * 400 + dt.generate_digit("5", 60)
    assert detect(through("PCMU", pcm)) == ["5", "5"]


def test_rejects_too_short_too_quiet_and_twisted() -> None:
    assert detect(dt.generate_digits("1", duration_ms=15, gap_ms=40)) == []
    assert detect(dt.generate_digits("1", duration_ms=80, level_dbm0=-45)) == []
    # high-group tone 12 dB weaker than the low group: beyond the 8 dB normal twist
    n = 800
    t = np.arange(n) / 8000
    amp = dt.DBM0_PEAK * 10 ** (-10 / 20)
    x = amp * np.sin(2 * np.pi * 697 * t) + amp / 4 * np.sin(2 * np.pi * 1209 * t)
    assert detect(x.astype("<i2").tobytes()) == []


def test_rejects_noise_and_music() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 3000, 8000 * 5).clip(-32768, 32767).astype("<i2").tobytes()
    assert detect(through("PCMU", noise)) == []
    # "music": 4 s of chords of harmonic-rich notes (sawtooth-like, 8 partials), note
    # fundamentals chosen near DTMF frequencies to make it hard
    t = np.arange(8000) / 8000
    notes = [(349.2, 440.0, 523.3), (392.0, 493.9, 587.3), (440.0, 554.4, 659.3),
             (698.5, 880.0, 1046.5), (784.0, 987.8, 1174.7), (932.3, 1174.7, 1396.9)]
    music = np.zeros(0)
    for chord in notes:
        x = sum(np.sin(2 * np.pi * f * k * t) / k for f in chord for k in range(1, 9))
        music = np.concatenate((music, 4000 * x / 3))
    pcm = music.clip(-32768, 32767).astype("<i2").tobytes()
    assert detect(through("PCMU", pcm)) == []


def test_rejects_synthetic_speech() -> None:
    """Real speech synthesiser output (espeak-ng), many voices' worth of phonemes."""
    require_tool("espeak-ng")
    text = (
        "Thank you for calling. Please say or enter your account number, then press pound. "
        "For sales, press one. For billing, press two. Sixty five, nine hundred, "
        "seven seven seven, one two three four five six seven eight nine zero."
    )
    found: list[str] = []
    for voice in ("en-us", "en", "en+f3", "en+m7"):
        out = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", "160", "--stdout", text],
            check=True, capture_output=True, timeout=60,
        ).stdout
        with wave.open(io.BytesIO(out)) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
        # crude but adequate decimation to 8 kHz after a moving-average low-pass
        step = rate / 8000
        lp = np.convolve(x, np.ones(3) / 3, mode="same")
        y = lp[(np.arange(int(len(x) / step)) * step).astype(int)]
        pcm = y.clip(-32768, 32767).astype("<i2").tobytes()
        assert np.sqrt(np.mean(y**2)) > 1000  # real, audible speech went in
        found += detect(through("PCMU", pcm))
    assert found == []


def test_generator_refuses_non_digit() -> None:
    with pytest.raises(ValueError):
        dt.generate_digit("x")


def test_detect_many_judges_each_stream_as_on_its_own() -> None:
    """The engine judges every call's audio in one pass: each detector must still see
    only its own stream, whatever the others carry and however the audio was chunked."""
    streams = [
        through("PCMU", dt.generate_digits("147", 40, 40, -30)),
        through("PCMA", b"\x00\x00" * 51 + dt.generate_digits("#0", 60, 40, -20)),
        bytes(16000),  # silence
        through("PCMU", dt.generate_digit("5", 1000)),  # one long tone: reported once
    ]
    streams = [s + bytes(1600) for s in streams]
    alone = [detect(s) for s in streams]
    assert alone == [["1", "4", "7"], ["#", "0"], [], ["5"]]
    detectors = [dt.DtmfDetector() for _ in streams]
    found: list[list[str]] = [[] for _ in streams]
    chunk = [320, 222, 160, 480]
    pos = [0] * len(streams)
    while any(p < len(s) for p, s in zip(pos, streams, strict=True)):
        for i, s in enumerate(streams):
            detectors[i].push(s[pos[i] : pos[i] + chunk[i]])
            pos[i] += chunk[i]
        for i, digits in enumerate(dt.detect_many(detectors)):
            found[i] += digits
    assert found == alone
