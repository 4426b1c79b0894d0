import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.media import rtp


def test_build_parse_roundtrip() -> None:
    data = rtp.build(8, 65535, 0xFFFFFFFF, 0x12345678, b"\xd5" * 160, marker=True)
    p = rtp.parse(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker) == (
        8, 65535, 0xFFFFFFFF, 0x12345678, True,
    )
    assert p.payload == b"\xd5" * 160
    assert rtp.parse(p.to_bytes()).payload == p.payload


def test_csrc_extension_and_padding_are_skipped() -> None:
    payload = b"hello"
    head = bytes([0x80 | 0x20 | 0x10 | 2, 0]) + struct.pack("!HII", 1, 2, 3)
    csrcs = struct.pack("!II", 7, 9)
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    padding = b"\x00\x00\x03"
    p = rtp.parse(head + csrcs + ext + payload + padding)
    assert p.payload == payload
    assert p.csrcs == (7, 9)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00",
        b"\x00" * 12,  # version 0
        bytes([0x8F, 0]) + b"\x00" * 10,  # 15 CSRCs announced, none present
        bytes([0x90, 0]) + b"\x00" * 10 + b"\x00\x00\xff\xff",  # extension longer than packet
        bytes([0xA0, 0]) + b"\x00" * 10 + b"\x00",  # padding count 0
        bytes([0xA0, 0]) + b"\x00" * 10 + b"\xff",  # padding longer than packet
        bytes([0x80, 200]) + b"\x00" * 10,  # RTCP SR multiplexed
    ],
)
def test_malformed_raise_parse_error(data: bytes) -> None:
    with pytest.raises(rtp.RtpParseError):
        rtp.parse(data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        p = rtp.parse(data)
    except rtp.RtpParseError:
        return
    assert len(p.payload) <= len(data) - 12
