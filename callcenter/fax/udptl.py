"""UDPTL framing for T.38 over UDP (ITU-T T.38 §9.1, Annex; SDP in RFC 3362 / T.38 Annex D).

A UDPTL packet carries one T.38 IFP packet (the "primary") plus error recovery: either
copies of the previous IFP packets ("redundancy", what nearly every gateway uses) or
parity over them ("FEC"). It is ASN.1 encoded with aligned PER, which for this one type
comes down to:

    seq-number           2 octets, big-endian
    primary-ifp-packet   length determinant + octets (an open type)
    error-recovery       1 octet: 0x00 = secondary-ifp-packets, 0x80 = fec-info
      secondary          length determinant (count), then each IFP as length + octets,
                         newest first (seq-1, seq-2, ...)
      fec                npackets as length(1) + value, then count + each parity octet string

A length determinant is one octet below 128, two octets (0x80 | high, low) below 16384;
IFP packets are never larger (fragmented lengths are refused as malformed).

``UdptlSender`` frames outgoing IFP packets with redundancy; ``UdptlReceiver`` turns
received datagrams back into IFP packets in sequence order, filling a gap from the
redundant copies of the next packet that arrives. FEC packets are read for their
primary only (we never offer FEC, so only a peer ignoring our SDP sends it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MAX_LEN = 16383
REDUNDANCY = 3  # previous IFP packets copied into each packet (what Asterisk sends by default)


class UdptlError(ValueError):
    """A datagram that is not a well-formed UDPTL packet."""


@dataclass(slots=True)
class UdptlPacket:
    seq: int
    primary: bytes
    secondary: list[bytes] = field(default_factory=list)  # newest first: seq-1, seq-2, ...
    fec: bool = False


def _put_length(out: bytearray, n: int) -> None:
    if n < 0x80:
        out.append(n)
    elif n <= MAX_LEN:
        out += bytes((0x80 | (n >> 8), n & 0xFF))
    else:
        raise ValueError(f"UDPTL field of {n} octets is too long (max {MAX_LEN})")


def _get_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise UdptlError("truncated length")
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    if b & 0xC0 == 0x80:
        if pos + 1 >= len(data):
            raise UdptlError("truncated length")
        return ((b & 0x3F) << 8) | data[pos + 1], pos + 2
    raise UdptlError("fragmented length (not used by T.38)")


def _get_open(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _get_length(data, pos)
    if pos + n > len(data):
        raise UdptlError("truncated field")
    return data[pos : pos + n], pos + n


def encode(packet: UdptlPacket) -> bytes:
    out = bytearray(packet.seq.to_bytes(2, "big"))
    _put_length(out, len(packet.primary))
    out += packet.primary
    out.append(0x00)  # error-recovery: secondary-ifp-packets
    _put_length(out, len(packet.secondary))
    for ifp in packet.secondary:
        _put_length(out, len(ifp))
        out += ifp
    return bytes(out)


def decode(data: bytes) -> UdptlPacket:
    if len(data) < 4:
        raise UdptlError(f"datagram of {len(data)} octets is too short for UDPTL")
    seq = int.from_bytes(data[:2], "big")
    primary, pos = _get_open(data, 2)
    if pos >= len(data):
        raise UdptlError("no error-recovery field")
    choice = data[pos]
    pos += 1
    if choice & 0x80 == 0:
        count, pos = _get_length(data, pos)
        secondary = []
        for _ in range(count):
            ifp, pos = _get_open(data, pos)
            secondary.append(ifp)
        return UdptlPacket(seq, primary, secondary)
    # fec-info: fec-npackets (an unconstrained INTEGER: length + value), then the parity
    _npackets, pos = _get_open(data, pos)
    count, pos = _get_length(data, pos)
    for _ in range(count):
        _parity, pos = _get_open(data, pos)
    return UdptlPacket(seq, primary, fec=True)


class UdptlSender:
    """Frames IFP packets, each with copies of the ``redundancy`` previous ones."""

    def __init__(self, redundancy: int = REDUNDANCY, seq: int = 0) -> None:
        self.redundancy = redundancy
        self.seq = seq & 0xFFFF
        self._history: deque[bytes] = deque(maxlen=max(redundancy, 1))

    def frame(self, ifp: bytes) -> bytes:
        secondary = list(reversed(self._history)) if self.redundancy else []
        data = encode(UdptlPacket(self.seq, ifp, secondary))
        self.seq = (self.seq + 1) & 0xFFFF
        if self.redundancy:
            self._history.append(ifp)
        return data


class UdptlReceiver:
    """Datagrams in, IFP packets out in sequence order, each once.

    A packet older than the next expected one is a duplicate (or a redundant copy already
    used) and yields nothing; a packet ahead of it first yields the missing packets its
    redundancy carries, oldest first. A jump too large to be a gap (a peer restarting its
    sequence) is taken as the new start.
    """

    def __init__(self) -> None:
        self.expected: int | None = None
        self.recovered = 0
        self.lost = 0
        self.malformed = 0
        self.duplicates = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        try:
            pkt = decode(data)
        except UdptlError:
            self.malformed += 1
            return []
        out: list[tuple[int, bytes]] = []
        exp = self.expected
        if exp is not None:
            ahead = (pkt.seq - exp) & 0xFFFF
            if ahead >= 0x8000:
                self.duplicates += 1
                return out
            if 0 < ahead <= 100:
                for back in range(ahead, 0, -1):  # the oldest missing one first
                    idx = back - 1  # secondary[0] is seq-1
                    if idx < len(pkt.secondary):
                        out.append(((pkt.seq - back) & 0xFFFF, pkt.secondary[idx]))
                        self.recovered += 1
                    else:
                        self.lost += 1
        out.append((pkt.seq, pkt.primary))
        self.expected = (pkt.seq + 1) & 0xFFFF
        return out
