"""SDP for T.38 (RFC 3362 ``image/t38``; T.38 Annex D attributes): reading a re-INVITE's
offer of ``m=image <port> udptl t38`` and writing our answer.

The audio offer/answer stays in ``callcenter.media.negotiation``; only a re-INVITE that
offers T.38 comes here (``Call.on_offer``). Our answer accepts UDPTL with redundancy,
version 0, transferred TCF (the only rate management UDPTL allows), and refuses every
other stream of the offer with port 0, in the offer's order (RFC 3264 §6).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from callcenter.media import sdp

MAX_DATAGRAM = 400  # octets: 3 redundant copies of a 14,400 bit/s ECM frame fit
MAX_BUFFER = 2000


@dataclass(slots=True)
class T38Offer:
    remote: tuple[str, int]
    media_index: int
    media: list[str]  # every m= line of the offer (refused except ours)
    attributes: dict[str, str] = field(default_factory=dict)  # the image stream's a= lines


def parse_offer(text: str) -> T38Offer | None:
    """The T.38 stream of an offer, or None when it offers none (or only with port 0)."""
    try:
        sd = sdp.parse(text)
    except ValueError:
        return None
    media_lines = [ln.strip()[2:] for ln in text.splitlines() if ln.strip().startswith("m=")]
    for index, m in enumerate(sd.media):
        if m.media != "image" or m.proto.lower() != "udptl" or m.port == 0:
            continue
        addr = m.connection or sd.connection
        if not addr:
            return None
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            return None
        return T38Offer((addr, m.port), index, media_lines, _attributes(text, index))
    return None


def _attributes(text: str, media_index: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    current = -1
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            current += 1
        elif line.startswith("a=") and current == media_index:
            name, _, value = line[2:].partition(":")
            attrs[name.strip()] = value.strip()
    return attrs


def answer(offer: T38Offer, address: str, port: int, *, redundancy: bool = True) -> str:
    """Our answer: T.38 on ``address:port`` (the leg's RTP port, which carries UDPTL
    from now on), every other stream refused."""
    family = "IP6" if ":" in address else "IP4"
    session_id = int.from_bytes(os.urandom(4), "big")
    lines = [
        "v=0",
        f"o=callcenter {session_id} {session_id} IN {family} {address}",
        "s=callcenter",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    for index, m in enumerate(offer.media):
        if index != offer.media_index:
            parts = m.split()
            lines.append(f"m={parts[0]} 0 {' '.join(parts[2:])}")
            continue
        lines += [
            f"m=image {port} udptl t38",
            "a=T38FaxVersion:0",  # SpanDSP's T.38 terminal speaks version 0
            "a=T38MaxBitRate:14400",
            "a=T38FaxRateManagement:transferredTCF",
            f"a=T38FaxMaxBuffer:{MAX_BUFFER}",
            f"a=T38FaxMaxDatagram:{MAX_DATAGRAM}",
            f"a=T38FaxUdpEC:{'t38UDPRedundancy' if redundancy else 't38UDPNoEC'}",
        ]
    return "\r\n".join(lines) + "\r\n"


def offer(address: str, port: int) -> str:
    """A T.38 offer (a test sender's re-INVITE, or ours when we switch an outbound fax)."""
    t = T38Offer(("0.0.0.0", 0), 0, ["image 0 udptl t38"])
    return answer(t, address, port)
