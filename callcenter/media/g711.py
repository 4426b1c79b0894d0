"""G.711 µ-law (PCMU) and A-law (PCMA) codecs and PCMU↔PCMA transcoding.

Two implementations give bit-identical results:

* ``audioop`` (C, in the standard library up to Python 3.12; deprecated, removed in 3.13);
* numpy lookup tables built once at import from the ITU/Sun reference algorithm
  (a 64 Ki-entry encode table indexed by the raw 16-bit sample, a 256-entry decode table).

``ulaw_encode``/``alaw_encode``/``ulaw_decode``/``alaw_decode`` use audioop when the
interpreter still has it and the tables otherwise; ``tests/media/test_g711.py`` checks both
paths agree on every possible input, so behaviour does not change on 3.13.
Transcoding is a 256-byte ``bytes.translate`` table — one C call per packet, no numpy.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

try:  # audioop is optional: present on 3.11/3.12, gone on 3.13
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as _audioop
    audioop: ModuleType | None = _audioop
except ImportError:  # pragma: no cover - depends on the interpreter
    audioop = None

_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _ulaw_encode_ref(pcm: np.ndarray) -> np.ndarray:
    """Vectorised Sun g711.c ``linear2ulaw`` (the algorithm audioop uses)."""
    val = pcm.astype(np.int32) >> 2  # 14-bit magnitude, arithmetic shift like C
    neg = val < 0
    val = np.where(neg, -val, val)
    mask = np.where(neg, 0x7F, 0xFF)
    val = np.minimum(val, 8159) + 33  # clip, add bias (0x84 >> 2)
    seg = np.searchsorted(_SEG_UEND, val, side="left")
    out = np.where(
        seg >= 8,
        0x7F,
        (seg << 4) | ((val >> (np.minimum(seg, 7) + 1)) & 0xF),
    )
    return (out ^ mask).astype(np.uint8)


def _alaw_encode_ref(pcm: np.ndarray) -> np.ndarray:
    """Vectorised Sun g711.c ``linear2alaw``."""
    val = pcm.astype(np.int32) >> 3  # 13-bit
    neg = val < 0
    mask = np.where(neg, 0x55, 0xD5)
    val = np.where(neg, -val - 1, val)
    seg = np.searchsorted(_SEG_AEND, val, side="left")
    segc = np.minimum(seg, 7)
    quant = np.where(segc < 2, (val >> 1) & 0xF, (val >> segc) & 0xF)
    out = np.where(seg >= 8, 0x7F, (segc << 4) | quant)
    return (out ^ mask).astype(np.uint8)


def _ulaw_decode_ref(codes: np.ndarray) -> np.ndarray:
    u = (~codes.astype(np.int32)) & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_ref(codes: np.ndarray) -> np.ndarray:
    a = codes.astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ALL_PCM = np.arange(-32768, 32768, dtype=np.int32)
_ALL_CODES = np.arange(256, dtype=np.uint8)

# Encode tables are indexed by the sample's raw 16-bit pattern (int16 viewed as uint16).
_ULAW_ENC = np.empty(65536, dtype=np.uint8)
_ULAW_ENC[_ALL_PCM.astype(np.int16).view(np.uint16)] = _ulaw_encode_ref(_ALL_PCM)
_ALAW_ENC = np.empty(65536, dtype=np.uint8)
_ALAW_ENC[_ALL_PCM.astype(np.int16).view(np.uint16)] = _alaw_encode_ref(_ALL_PCM)
ULAW_DEC: np.ndarray = _ulaw_decode_ref(_ALL_CODES)
ALAW_DEC: np.ndarray = _alaw_decode_ref(_ALL_CODES)

#: bytes.translate tables for transcoding without leaving C
ULAW_TO_ALAW: bytes = _ALAW_ENC[ULAW_DEC.view(np.uint16)].tobytes()
ALAW_TO_ULAW: bytes = _ULAW_ENC[ALAW_DEC.view(np.uint16)].tobytes()

#: squared decoded sample per code, for cheap energy/RMS of received packets
ULAW_SQUARE: np.ndarray = ULAW_DEC.astype(np.float64) ** 2
ALAW_SQUARE: np.ndarray = ALAW_DEC.astype(np.float64) ** 2

#: one 20 ms frame of digital silence per codec
SILENCE_BYTE = {"PCMU": 0xFF, "PCMA": 0xD5}

#: static RTP payload types (RFC 3551)
STATIC_PT = {"PCMU": 0, "PCMA": 8}
PT_CODEC = {0: "PCMU", 8: "PCMA"}


def ulaw_encode_numpy(pcm16: bytes) -> bytes:
    """16-bit little-endian signed PCM → µ-law bytes (one byte per sample)."""
    a = np.frombuffer(pcm16, dtype="<i2")
    return _ULAW_ENC[a.view(np.uint16)].tobytes()


def alaw_encode_numpy(pcm16: bytes) -> bytes:
    a = np.frombuffer(pcm16, dtype="<i2")
    return _ALAW_ENC[a.view(np.uint16)].tobytes()


def ulaw_decode_numpy(data: bytes) -> bytes:
    """µ-law bytes → 16-bit little-endian signed PCM."""
    return ULAW_DEC[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def alaw_decode_numpy(data: bytes) -> bytes:
    return ALAW_DEC[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def ulaw_to_alaw(data: bytes) -> bytes:
    return data.translate(ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes) -> bytes:
    return data.translate(ALAW_TO_ULAW)


def encode(codec: str, pcm16: bytes) -> bytes:
    if codec == "PCMU":
        return ulaw_encode(pcm16)
    if codec == "PCMA":
        return alaw_encode(pcm16)
    raise ValueError(f"unsupported codec {codec!r}")


def decode(codec: str, data: bytes) -> bytes:
    if codec == "PCMU":
        return ulaw_decode(data)
    if codec == "PCMA":
        return alaw_decode(data)
    raise ValueError(f"unsupported codec {codec!r}")


def transcode(data: bytes, src: str, dst: str) -> bytes:
    if src == dst:
        return data
    if src == "PCMU" and dst == "PCMA":
        return data.translate(ULAW_TO_ALAW)
    if src == "PCMA" and dst == "PCMU":
        return data.translate(ALAW_TO_ULAW)
    raise ValueError(f"cannot transcode {src!r} to {dst!r}")


def decode_table(codec: str) -> np.ndarray:
    return ULAW_DEC if codec == "PCMU" else ALAW_DEC


def square_table(codec: str) -> np.ndarray:
    return ULAW_SQUARE if codec == "PCMU" else ALAW_SQUARE


# audioop-backed variants, used by tests to prove equivalence and available to callers
# that prefer the C path while it exists.
def ulaw_encode_audioop(pcm16: bytes) -> bytes:
    if audioop is None:
        raise RuntimeError("audioop is not available on this Python")
    return audioop.lin2ulaw(pcm16, 2)


def alaw_encode_audioop(pcm16: bytes) -> bytes:
    if audioop is None:
        raise RuntimeError("audioop is not available on this Python")
    return audioop.lin2alaw(pcm16, 2)


def ulaw_decode_audioop(data: bytes) -> bytes:
    if audioop is None:
        raise RuntimeError("audioop is not available on this Python")
    return audioop.ulaw2lin(data, 2)


def alaw_decode_audioop(data: bytes) -> bytes:
    if audioop is None:
        raise RuntimeError("audioop is not available on this Python")
    return audioop.alaw2lin(data, 2)


if audioop is not None:
    ulaw_encode = ulaw_encode_audioop
    alaw_encode = alaw_encode_audioop
    ulaw_decode = ulaw_decode_audioop
    alaw_decode = alaw_decode_audioop
else:  # pragma: no cover - Python 3.13+
    ulaw_encode = ulaw_encode_numpy
    alaw_encode = alaw_encode_numpy
    ulaw_decode = ulaw_decode_numpy
    alaw_decode = alaw_decode_numpy

IMPLEMENTATION = "audioop" if audioop is not None else "numpy"
