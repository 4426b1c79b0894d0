"""SRTP with SDES keys (RFC 3711, RFC 4568): the ``a=crypto`` attribute and the
per-session protect/unprotect contexts.

Keys travel in the SDP (``a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>``),
which is why SDES is only as private as the signalling: use it with SIP over TLS.
The cipher work is libsrtp2's, through ``pylibsrtp`` (maintained by the aiortc author;
a thin cffi binding with manylinux wheels, no compiler needed): a protect or an unprotect
is one C call on the packet, measured in bench/srtp.py.

Policy (``rtp.srtp``): ``off`` — plain RTP, an ``RTP/SAVP`` offer is refused (488);
``optional`` — an SRTP offer is answered with SRTP, a plain one with RTP, and our offers
carry ``a=crypto`` on ``RTP/AVP`` ("best effort", as baresip's ``mediaenc=srtp``);
``mandatory`` — only SRTP: we offer ``RTP/SAVP``, and a plain offer or an answer without
a usable key is refused.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Literal

import pylibsrtp

__all__ = ["MODES", "SUITES", "Crypto", "SrtpContext", "SrtpError", "SrtpKeys", "SrtpMode", "new_key"]

SrtpMode = Literal["off", "optional", "mandatory"]
MODES: tuple[str, ...] = ("off", "optional", "mandatory")
# suite name (RFC 4568 §6.2) → libsrtp profile; both use a 16-byte key and a 14-byte salt
SUITES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
OFFER_SUITE = "AES_CM_128_HMAC_SHA1_80"
KEY_SALT_LEN = 30
SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")

SrtpError = pylibsrtp.Error  # authentication or replay failure of one packet


def new_key() -> bytes:
    """A fresh master key and salt (RFC 4568 §6.1: one per direction and session)."""
    return os.urandom(KEY_SALT_LEN)


@dataclass(frozen=True, slots=True)
class Crypto:
    """One ``a=crypto`` line we can use."""

    tag: int
    suite: str
    key: bytes  # master key || master salt

    @classmethod
    def parse(cls, value: str) -> Crypto | None:
        """The attribute's value (after ``crypto:``); None for a suite, key method,
        MKI or session parameter we do not support (RFC 4568 §5.1.2: skip that line)."""
        parts = value.split()
        if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in SUITES:
            return None
        if len(parts) > 3:
            return None  # session parameters (UNENCRYPTED_SRTP, KDR, …): not supported
        method, _, info = parts[2].partition(":")
        if method != "inline":
            return None
        key_b64, *extra = info.split("|")
        # a lifetime (2^31 or a number) is fine; an MKI ("1:4") is not supported here
        if any(":" in item for item in extra):
            return None
        try:
            key = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(key) != KEY_SALT_LEN:
            return None
        return cls(int(parts[0]), parts[1], key)

    def attribute(self) -> str:
        return f"a=crypto:{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """A negotiated SRTP leg: the suite, our sending key and the peer's. Plain data, so it
    crosses to a media worker inside ``Negotiated``."""

    suite: str
    tx_key: bytes
    rx_key: bytes


class SrtpContext:
    """Both directions of one RTP session. ``protect`` / ``unprotect`` raise SrtpError
    for a packet that fails authentication or replay checks (the caller drops it)."""

    __slots__ = ("keys", "protect", "unprotect")

    def __init__(self, keys: SrtpKeys) -> None:
        self.keys = keys
        # bound methods, so the packet path makes one attribute lookup per packet
        self.protect = _session(keys.suite, keys.tx_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND).protect
        self.unprotect = _session(keys.suite, keys.rx_key, pylibsrtp.Policy.SSRC_ANY_INBOUND).unprotect

    def rekey(self, keys: SrtpKeys) -> None:
        """New keys from a re-INVITE: rebuild only the direction whose key changed. A new
        sending context for the same key would restart libsrtp's rollover counter while
        our sequence numbers go on, and reuse keystream once a call has sent 2^16 packets."""
        if (keys.suite, keys.tx_key) != (self.keys.suite, self.keys.tx_key):
            self.protect = _session(keys.suite, keys.tx_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND).protect
        if (keys.suite, keys.rx_key) != (self.keys.suite, self.keys.rx_key):
            self.unprotect = _session(keys.suite, keys.rx_key, pylibsrtp.Policy.SSRC_ANY_INBOUND).unprotect
        self.keys = keys


def _session(suite: str, key: bytes, ssrc_type: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=SUITES[suite]))
