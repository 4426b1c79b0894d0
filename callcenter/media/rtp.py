"""RTP packet build/parse (RFC 3550 §5.1).

Parsing is strict about what we need (version 2, a complete fixed header, CSRC list,
extension and padding lengths that fit the datagram) and tolerant of what we do not use
(CSRCs, header extensions and padding are skipped). Anything else raises ``RtpParseError``
so the receive path can count and drop it without crashing.
"""

from __future__ import annotations

import struct

_HDR = struct.Struct("!BBHII")
HEADER_SIZE = _HDR.size  # 12


class RtpParseError(ValueError):
    """The datagram is not a usable RTP packet."""


class RtpPacket:
    __slots__ = ("csrcs", "marker", "payload", "payload_type", "sequence", "ssrc", "timestamp")

    def __init__(
        self,
        payload_type: int,
        sequence: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        marker: bool = False,
        csrcs: tuple[int, ...] = (),
    ) -> None:
        self.payload_type = payload_type
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.marker = marker
        self.csrcs = csrcs

    def __repr__(self) -> str:
        return (
            f"RtpPacket(pt={self.payload_type}, seq={self.sequence}, ts={self.timestamp}, "
            f"ssrc={self.ssrc:#x}, marker={self.marker}, len={len(self.payload)})"
        )

    def to_bytes(self) -> bytes:
        return build(
            self.payload_type, self.sequence, self.timestamp, self.ssrc, self.payload,
            self.marker, self.csrcs,
        )


def build(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
) -> bytes:
    """Serialize one RTP packet (no padding, no extension)."""
    b0 = 0x80 | (len(csrcs) & 0x0F)
    b1 = (0x80 if marker else 0) | (payload_type & 0x7F)
    head = _HDR.pack(b0, b1, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
    if csrcs:
        head += struct.pack(f"!{len(csrcs)}I", *csrcs)
    return head + payload


def parse(data: bytes) -> RtpPacket:
    """Parse one datagram; raise RtpParseError on anything that is not RTP v2."""
    n = len(data)
    if n < HEADER_SIZE:
        raise RtpParseError("shorter than the RTP fixed header")
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpParseError("not RTP version 2")
    pt = b1 & 0x7F
    if 72 <= pt <= 76:  # RFC 5761: these are RTCP packet types multiplexed on the RTP port
        raise RtpParseError("RTCP packet on the RTP port")
    cc = b0 & 0x0F
    offset = HEADER_SIZE + 4 * cc
    if offset > n:
        raise RtpParseError("CSRC list longer than the datagram")
    csrcs = struct.unpack_from(f"!{cc}I", data, HEADER_SIZE) if cc else ()
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if offset + 4 > n:
            raise RtpParseError("truncated header extension")
        (ext_words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * ext_words
        if offset > n:
            raise RtpParseError("header extension longer than the datagram")
    end = n
    if b0 & 0x20:  # padding: last octet counts the padding octets, itself included
        pad = data[-1]
        if pad == 0 or offset + pad > n:
            raise RtpParseError("bad padding length")
        end = n - pad
    return RtpPacket(pt, seq, ts, ssrc, bytes(data[offset:end]), bool(b1 & 0x80), csrcs)
