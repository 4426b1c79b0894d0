"""SDP (RFC 4566) for the offer/answer model (RFC 3264), audio only.

Parses what a SIP phone offers — connection address (``c=``, session or media level),
``m=audio`` streams, ``a=rtpmap``, ``a=fmtp`` for telephone-event, ``a=ptime`` and the
direction attributes, including the old ``c=0.0.0.0`` hold — and builds our answers and
offers. Codec choice follows the offerer's order among the codecs we support (RFC 3264
§6.1 lets the answerer pick; honouring the offerer's preference is what phones expect).
No usable codec → ``None`` so the SIP layer answers 488 Not Acceptable Here.

The answer has as many ``m=`` lines as the offer (RFC 3264 §6): the chosen audio stream
carries our address; every other stream is refused with port 0.

SRTP (SDES, RFC 4568): ``a=crypto`` lines are read into ``MediaDescription.crypto``;
``negotiate`` takes the policy (callcenter.media.srtp) and skips a stream it cannot
serve under it — an ``RTP/SAVP`` stream without a usable key, any SRTP with ``off``,
plain RTP with ``mandatory`` — so a mismatch ends as 488 like a codec mismatch.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, field

from callcenter.media.srtp import SECURE_PROTOS, Crypto, SrtpKeys

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
DEFAULT_DTMF_PT = 101
STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}


class SdpError(ValueError):
    """The body is not SDP we can use (the SIP layer answers 400/488)."""


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[int]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    ptime: int | None = None
    direction: str | None = None  # media-level attribute, None when absent
    connection: str | None = None  # media-level c= address
    crypto: list[Crypto] = field(default_factory=list)  # usable a=crypto lines, in order

    def codec_of(self, pt: int) -> tuple[str, int] | None:
        if pt in self.rtpmap:
            return self.rtpmap[pt]
        return STATIC.get(pt)


@dataclass(slots=True)
class SessionDescription:
    origin: str = ""
    connection: str | None = None
    direction: str | None = None  # session-level attribute
    media: list[MediaDescription] = field(default_factory=list)


@dataclass(slots=True)
class Negotiated:
    """Outcome of offer/answer for our one audio stream."""

    codec: str  # "PCMU" | "PCMA"
    payload_type: int
    dtmf_payload_type: int | None
    remote_addr: tuple[str, int] | None  # None when the peer said "do not send" (0.0.0.0)
    remote_direction: str  # the direction the peer declared
    ptime: int
    media_index: int  # which m= line of the offer we took
    proto: str = "RTP/AVP"  # the stream's transport profile, echoed in our answer
    crypto: Crypto | None = None  # the peer's SRTP key line we took; None: plain RTP
    srtp: SrtpKeys | None = None  # both keys, once the negotiator has added ours


def parse(text: str | bytes) -> SessionDescription:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    sd = SessionDescription()
    current: MediaDescription | None = None
    seen_v = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "v":
            seen_v = True
        elif kind == "o":
            sd.origin = value
        elif kind == "c":
            addr = _parse_connection(value)
            if current is None:
                sd.connection = addr
            else:
                current.connection = addr
        elif kind == "m":
            current = _parse_media(value)
            sd.media.append(current)
        elif kind == "a":
            _parse_attribute(value, sd, current)
    if not seen_v:
        raise SdpError("missing v= line")
    return sd


def _parse_connection(value: str) -> str:
    """The connection address, as an IP literal in canonical form. RFC 4566 also allows
    a host name here, but resolving it would block the SIP loop on DNS (or need an await
    in the middle of answering an INVITE) for something phones and SBCs never send: a
    name is refused like any unusable SDP (488). The canonical form is what ``recvfrom``
    reports, so the RTP latch compares like with like."""
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line {value[:80]!r}")
    host = parts[2].split("/")[0]  # drop a multicast TTL/count suffix
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise SdpError(f"c= address is not an IP address: {host[:80]!r}") from None


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line {value!r}")
    try:
        port = int(parts[1].split("/")[0])
    except ValueError:
        raise SdpError(f"bad port in m= line {value!r}") from None
    if not 0 <= port <= 65535:
        raise SdpError(f"port out of range in m= line {value!r}")
    formats: list[int] = []
    for f in parts[3:]:
        if f.isdigit() and int(f) < 128:
            formats.append(int(f))
    return MediaDescription(parts[0].lower(), port, parts[2], formats)


def _parse_attribute(value: str, sd: SessionDescription, m: MediaDescription | None) -> None:
    name, _, rest = value.partition(":")
    name = name.strip().lower()
    if name in DIRECTIONS:
        if m is None:
            sd.direction = name
        else:
            m.direction = name
        return
    if m is None:
        return
    if name == "rtpmap":
        pt_s, _, enc = rest.strip().partition(" ")
        bits = enc.strip().split("/")
        if pt_s.isdigit() and len(bits) >= 2 and bits[1].isdigit():
            m.rtpmap[int(pt_s)] = (bits[0].strip(), int(bits[1]))
    elif name == "fmtp":
        pt_s, _, params = rest.strip().partition(" ")
        if pt_s.isdigit():
            m.fmtp[int(pt_s)] = params.strip()
    elif name == "crypto":
        crypto = Crypto.parse(rest)
        if crypto is not None:
            m.crypto.append(crypto)
    elif name == "ptime":
        with contextlib.suppress(ValueError):  # an unreadable ptime is ignored: we send 20 ms
            m.ptime = int(float(rest.strip()))


def is_hold_address(addr: str | None) -> bool:
    if addr is None:
        return True
    try:
        return ipaddress.ip_address(addr).is_unspecified
    except ValueError:
        return False  # a host name; not a hold marker


def negotiate(
    sd: SessionDescription, codecs: tuple[str, ...] = ("PCMU", "PCMA"), srtp: str = "off"
) -> Negotiated | None:
    """Pick the first audio stream with a codec we support, in the offerer's order,
    that the SRTP policy ``srtp`` ("off", "optional", "mandatory") allows."""
    wanted = {c.upper() for c in codecs}
    for index, m in enumerate(sd.media):
        if m.media != "audio" or m.port == 0:
            continue
        proto = m.proto.upper()
        secure = proto in SECURE_PROTOS
        if not (secure or proto.startswith("RTP/AVP")):
            continue
        crypto = m.crypto[0] if m.crypto and srtp != "off" else None
        if (secure and crypto is None) or (srtp == "mandatory" and crypto is None):
            continue
        chosen: tuple[str, int] | None = None
        dtmf_pt: int | None = None
        for pt in m.formats:
            codec = m.codec_of(pt)
            if codec is None:
                continue
            name, rate = codec[0].upper(), codec[1]
            if chosen is None and name in wanted and rate == 8000:
                chosen = (name, pt)
            elif name == "TELEPHONE-EVENT" and rate == 8000 and dtmf_pt is None:
                dtmf_pt = pt
        if chosen is None:
            continue
        addr = m.connection or sd.connection
        direction = m.direction or sd.direction or "sendrecv"
        remote = None if is_hold_address(addr) else (addr, m.port)
        return Negotiated(
            codec=chosen[0],
            payload_type=chosen[1],
            dtmf_payload_type=dtmf_pt,
            remote_addr=remote,  # type: ignore[arg-type]
            remote_direction=direction,
            ptime=m.ptime or 20,
            media_index=index,
            proto=m.proto,
            crypto=crypto,
        )
    return None


def answer_direction(remote_direction: str, remote_hold_addr: bool, local_hold: bool) -> str:
    """Our direction attribute given theirs (RFC 3264 §6.1) and whether we hold them.

    Holding (RFC 6337 §5.3) means we keep sending (music on hold) but stop receiving.
    """
    they_send = remote_direction in ("sendrecv", "sendonly")
    they_receive = remote_direction in ("sendrecv", "recvonly") and not remote_hold_addr
    we_send = they_receive
    we_receive = they_send and not local_hold
    if we_send and we_receive:
        return "sendrecv"
    if we_send:
        return "sendonly"
    if we_receive:
        return "recvonly"
    return "inactive"


def build(
    address: str,
    port: int,
    formats: list[tuple[int, str]],
    dtmf_pt: int | None,
    direction: str = "sendrecv",
    session_id: int = 0,
    version: int = 0,
    ptime: int = 20,
    refused: list[MediaDescription] | None = None,
    media_index: int = 0,
    proto: str = "RTP/AVP",
    crypto: Crypto | None = None,
) -> str:
    """An SDP body with one audio stream (plus port-0 lines for refused offer streams)."""
    ip = "IP6" if ":" in address else "IP4"
    pts = [pt for pt, _ in formats] + ([dtmf_pt] if dtmf_pt is not None else [])
    audio = [f"m=audio {port} {proto} {' '.join(str(p) for p in pts)}"]
    if crypto is not None:
        audio.append(crypto.attribute())
    audio += [f"a=rtpmap:{pt} {name}/8000" for pt, name in formats]
    if dtmf_pt is not None:
        audio += [f"a=rtpmap:{dtmf_pt} telephone-event/8000", f"a=fmtp:{dtmf_pt} 0-16"]
    audio += [f"a=ptime:{ptime}", f"a={direction}"]
    lines = [
        "v=0",
        f"o=callcenter {session_id} {version} IN {ip} {address}",
        "s=callcenter",
        f"c=IN {ip} {address}",
        "t=0 0",
    ]
    refused = refused or []
    for i in range(max(len(refused), media_index + 1)):
        if i == media_index:
            lines += audio
        else:
            r = refused[i]
            fmts = " ".join(str(f) for f in r.formats) or "0"
            lines.append(f"m={r.media} 0 {r.proto} {fmts}")
    return "\r\n".join(lines) + "\r\n"
