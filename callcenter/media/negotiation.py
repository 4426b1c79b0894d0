"""The offer/answer half of a call leg's media (RFC 3264): SDP in, SDP out, no socket.

``SdpNegotiator`` keeps what a leg's SDP needs between offers (our address and port, the
codecs we allow, the ``o=`` session id and version, whether we hold the peer, the
telephone-event payload type last agreed) and turns an offer or answer into a
``Negotiated`` result plus whether we may send. It does not touch the audio stream:
``RtpSession`` applies the result to itself, and ``ProxySession`` (media in a worker
process, callcenter.media.worker) sends it to the worker. Keeping this half in the SIP
process is what lets the SIP layer answer an INVITE synchronously even when the RTP
socket lives in another process.

SRTP (callcenter.media.srtp): the negotiator holds the leg's policy and our sending key
(one per leg, kept across re-INVITEs); a result that uses SRTP carries both keys in
``Negotiated.srtp``, and whoever holds the socket builds the cipher contexts from it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from callcenter.media import g711, sdp
from callcenter.media.srtp import MODES, OFFER_SUITE, Crypto, SrtpKeys, new_key

SENDING = ("sendrecv", "sendonly")


class SdpNegotiator:
    __slots__ = ("_id", "_key", "_version", "advertise", "codecs", "dtmf_pt", "hold", "local_port", "srtp")

    def __init__(self, advertise: str, local_port: int, codecs: tuple[str, ...], srtp: str = "off") -> None:
        if srtp not in MODES:
            raise ValueError(f"srtp must be one of {', '.join(MODES)}, not {srtp!r}")
        self.advertise = advertise
        self.local_port = local_port
        self.codecs = codecs
        self.srtp = srtp
        self._key = new_key() if srtp != "off" else b""
        self.hold = False  # we hold the peer: our offers and answers say sendonly
        self.dtmf_pt: int | None = None
        self._id = int.from_bytes(os.urandom(4), "big")
        self._version = 0

    def _build(self, formats: list[tuple[int, str]], direction: str, **kw: Any) -> str:
        self._version += 1  # RFC 3264 §8: every new description bumps the o= version
        return sdp.build(
            self.advertise, self.local_port, formats, direction=direction,
            session_id=self._id, version=self._version, **kw,
        )

    def _take(self, text: str | bytes) -> tuple[sdp.SessionDescription, sdp.Negotiated] | None:
        try:
            sd = sdp.parse(text)
            neg = sdp.negotiate(sd, self.codecs, self.srtp)
        except ValueError:  # SdpError, and any int()/ipaddress refusal an odd body can reach
            return None
        if neg is None:
            return None
        self.dtmf_pt = neg.dtmf_payload_type
        if neg.crypto is not None:
            neg = dataclasses.replace(neg, srtp=SrtpKeys(neg.crypto.suite, self._key, neg.crypto.key))
        return sd, neg

    def answer(self, offer_sdp: str | bytes) -> tuple[str, sdp.Negotiated, bool] | None:
        """(answer SDP, result, may we send) for an offer; None → the SIP layer sends 488."""
        taken = self._take(offer_sdp)
        if taken is None:
            return None
        sd, neg = taken
        direction = sdp.answer_direction(neg.remote_direction, neg.remote_addr is None, self.hold)
        ours = None if neg.crypto is None else Crypto(neg.crypto.tag, neg.crypto.suite, self._key)
        text = self._build(
            [(neg.payload_type, neg.codec)], direction,
            dtmf_pt=neg.dtmf_payload_type, refused=sd.media, media_index=neg.media_index,
            proto=neg.proto, crypto=ours,
        )
        return text, neg, direction in SENDING

    def offer(self) -> str:
        formats = [(g711.STATIC_PT[c], c) for c in self.codecs]
        pt = self.dtmf_pt if self.dtmf_pt is not None else sdp.DEFAULT_DTMF_PT
        crypto = None if self.srtp == "off" else Crypto(1, OFFER_SUITE, self._key)
        proto = "RTP/SAVP" if self.srtp == "mandatory" else "RTP/AVP"
        return self._build(formats, "sendonly" if self.hold else "sendrecv", dtmf_pt=pt,
                           proto=proto, crypto=crypto)

    def take_answer(self, answer_sdp: str | bytes) -> tuple[sdp.Negotiated, bool] | None:
        """(result, may we send) for the peer's answer to our offer; None when unusable."""
        taken = self._take(answer_sdp)
        if taken is None:
            return None
        neg = taken[1]
        they_receive = neg.remote_direction in ("sendrecv", "recvonly")
        return neg, they_receive and neg.remote_addr is not None


class OfferAnswerMixin:
    """A leg's SDP methods, for any class with a ``negotiator``, a ``closed`` flag and an
    ``apply(neg, send)`` that puts the outcome into effect (``RtpSession`` itself;
    ``ProxySession`` by sending it to its worker)."""

    __slots__ = ()
    negotiator: SdpNegotiator

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def apply(self, neg: sdp.Negotiated, send: bool) -> None:
        raise NotImplementedError

    @property
    def hold(self) -> bool:
        return self.negotiator.hold

    def set_hold(self, on: bool) -> None:
        """Mark that we hold the peer; the next ``offer()``/answer says sendonly."""
        self.negotiator.hold = on

    def answer(self, offer_sdp: str | bytes) -> str | None:
        """Answer an offer (initial INVITE or re-INVITE); None → the SIP layer sends 488."""
        if self.closed:
            return None
        result = self.negotiator.answer(offer_sdp)
        if result is None:
            return None
        text, neg, send = result
        self.apply(neg, send)
        return text

    def update(self, offer_sdp: str | bytes) -> str | None:
        """A re-INVITE's offer (hold/unhold, new address): same rules as ``answer``."""
        return self.answer(offer_sdp)

    def offer(self) -> str:
        return self.negotiator.offer()

    def apply_answer(self, answer_sdp: str | bytes) -> bool:
        """Take the peer's answer to our offer; False when it is unusable."""
        if self.closed:
            return False
        result = self.negotiator.take_answer(answer_sdp)
        if result is None:
            return False
        self.apply(*result)
        return True
