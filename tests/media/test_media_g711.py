import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.media import g711

ALL_PCM = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))

needs_audioop = pytest.mark.skipif(g711.audioop is None, reason="audioop removed (Python 3.13+)")


@needs_audioop
def test_numpy_tables_match_audioop_on_every_input() -> None:
    assert g711.ulaw_encode_numpy(ALL_PCM) == g711.ulaw_encode_audioop(ALL_PCM)
    assert g711.alaw_encode_numpy(ALL_PCM) == g711.alaw_encode_audioop(ALL_PCM)
    assert g711.ulaw_decode_numpy(ALL_CODES) == g711.ulaw_decode_audioop(ALL_CODES)
    assert g711.alaw_decode_numpy(ALL_CODES) == g711.alaw_decode_audioop(ALL_CODES)


def test_known_values() -> None:
    # silence codes and full scale, per G.711
    assert g711.ulaw_encode(b"\x00\x00") == b"\xff"
    assert g711.alaw_encode(b"\x00\x00") == b"\xd5"
    full = np.array([32767, -32768], dtype="<i2").tobytes()
    assert g711.ulaw_encode(full) == b"\x80\x00"
    assert g711.alaw_encode(full) == b"\xaa\x2a"
    assert np.frombuffer(g711.ulaw_decode(b"\x80"), "<i2")[0] == 32124
    assert np.frombuffer(g711.alaw_decode(b"\xaa"), "<i2")[0] == 32256


def test_decode_encode_is_identity_on_codes() -> None:
    # every code except µ-law's negative zero (0x7f → 0 → 0xff) survives a round trip
    u = g711.ulaw_encode(g711.ulaw_decode(ALL_CODES))
    assert [i for i in range(256) if u[i] != i] == [0x7F]
    assert g711.alaw_encode(g711.alaw_decode(ALL_CODES)) == ALL_CODES


def test_transcoding_tables_equal_decode_then_encode() -> None:
    assert g711.ulaw_to_alaw(ALL_CODES) == g711.alaw_encode(g711.ulaw_decode(ALL_CODES))
    assert g711.alaw_to_ulaw(ALL_CODES) == g711.ulaw_encode(g711.alaw_decode(ALL_CODES))
    assert g711.transcode(b"abc", "PCMU", "PCMU") == b"abc"
    with pytest.raises(ValueError):
        g711.transcode(b"abc", "PCMU", "G729")


@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=400))
def test_roundtrip_error_is_bounded(samples: list[int]) -> None:
    pcm = np.array(samples, dtype="<i2")
    for enc, dec in ((g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)):
        back = np.frombuffer(dec(enc(pcm.tobytes())), "<i2").astype(int)
        err = np.abs(back - pcm.astype(int))
        # logarithmic quantisation: error grows with magnitude, under ~1/16 of it (+ floor)
        assert np.all(err <= np.abs(pcm.astype(int)) // 16 + 1100 // 16 + 16)
