"""Minimal classic-pcap reader for the UDP payloads of SIPp's bundled RTP captures."""

from __future__ import annotations

import struct
from pathlib import Path


def udp_payloads(path: str | Path) -> list[bytes]:
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    (linktype,) = struct.unpack_from(endian + "I", data, 20)
    link_len = {1: 14, 113: 16, 0: 4, 101: 0}[linktype]  # Ethernet, Linux SLL, loopback, raw
    out: list[bytes] = []
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, off + 8)[0]
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:  # IPv4 + UDP only
            continue
        ihl = (ip[0] & 0x0F) * 4
        out.append(ip[ihl + 8 :])
    return out
