"""Answering a browser's ICE binding requests on a media socket (RFC 8445 §7.3, RFC 7675).

A WebRTC leg whose media the engine carries (callcenter/webrtc/lean.py) keeps the socket
ICE selected; the browser goes on sending STUN binding requests on it — its consent
freshness checks, about every 5 s — and closes the connection when they stay unanswered
for 30 s. ``IceResponder`` answers them as the ICE agent did: a success response with
XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY (short-term credential: our ICE password) and
FINGERPRINT; a request that fails the integrity check or names another user gets nothing.
The STUN codec is aioice's (the ICE library aiortc uses), so both ends of the handover
speak the same STUN.
"""

from __future__ import annotations

from aioice import stun

__all__ = ["IceResponder", "is_stun"]


def is_stun(data: bytes) -> bool:
    """RFC 7983 demultiplexing: STUN's first byte is 0–3 (RTP/RTCP 128–191, DTLS 20–63)."""
    return len(data) >= 20 and data[0] < 4


class IceResponder:
    __slots__ = ("_checked", "_key", "_user_prefix", "answered", "refused")

    def __init__(self, local_ufrag: str, local_password: str) -> None:
        self._key = local_password.encode("utf8")
        self._user_prefix = local_ufrag + ":"  # USERNAME is "our-ufrag:their-ufrag"
        self._checked: list[tuple[str, int]] = []  # sources of authenticated checks, newest last
        self.answered = 0
        self.refused = 0

    def checked(self, addr: tuple[str, int]) -> bool:
        """Whether ``addr`` sent us an authenticated binding request: the browser's ICE agent
        checked the pair from there, so it may move its media to it (the controlling agent
        may switch pairs at any time, RFC 8445 §8.1.1), and consent is given for it."""
        return (addr[0], addr[1]) in self._checked

    def respond(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        """The response to send back to ``addr``; None for anything not to answer."""
        try:
            message = stun.parse_message(data)
            if message.message_method != stun.Method.BINDING or message.message_class != stun.Class.REQUEST:
                return None  # a response or an indication: nothing to answer
            username = message.attributes.get("USERNAME")
            valid = (
                isinstance(username, str)
                and username.startswith(self._user_prefix)
                and message.check_message_integrity(self._key)
            )
        except Exception:  # aioice's decoder raises more than ValueError on garbage (struct.error)
            valid = False
        if not valid:
            self.refused += 1
            return None
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = (addr[0], addr[1])
        response.add_message_integrity(self._key)  # adds FINGERPRINT too
        self.answered += 1
        source = (addr[0], addr[1])
        if source not in self._checked:
            self._checked.append(source)
            del self._checked[:-8]  # a browser checks a handful of pairs, not more
        return bytes(response)
