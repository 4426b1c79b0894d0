"""The lean media path: aiortc does ICE and the DTLS handshake, the media engine the rest.

Once a G.711 line is connected, ``hand_over`` takes what the engine needs from aiortc and
gives the media to a session of the server's own engine (in process or in a media worker,
``adopt_ice``): from then on no packet of the line passes through aiortc or the server's
event loop, and the line costs what a plain SRTP leg costs (docs/webrtc.md).

- **Keys.** DTLS-SRTP (RFC 5764 §4.2): both master keys and salts come from the DTLS
  exporter ``EXTRACTOR-dtls_srtp``, client's first; we derive them exactly as aiortc's
  ``RTCDtlsTransport._setup_srtp`` does (pyOpenSSL's ``export_keying_material``). Only the
  profile our SRTP code carries is offered on such a line (``SRTP_AES128_CM_SHA1_80``,
  ``only_cm_sha1_80``): the suite ``AES_CM_128_HMAC_SHA1_80`` of callcenter/media/srtp.py.
- **Socket.** The browser sends to the address ICE selected, so the engine works on that
  very socket (a duplicate of its descriptor; a worker receives one by SCM_RIGHTS). aiortc
  stops reading it (``pause_reading`` on aioice's transport) and aioice's own consent
  checks towards the browser stop (their responses would now reach the engine); the
  engine answers the browser's consent checks instead (``ice_consent.IceResponder``) and
  a dead browser shows as the line's RTP stopping (``PhoneLine.lean_silent``).
- **Stream.** The engine sends as the SSRC our SDP answer announced (aiortc's sender's),
  so the browser needs no renegotiation; aiortc's sender never sent RTP on such a line
  (``LineTrack`` holds its first frame until the line knows it will not be lean), so the
  engine's sequence numbers and rollover counter start fresh on that key and SSRC.

aiortc keeps RTCP sender reports and the DTLS association; nothing else of it runs.
Everything here needs aiortc/aioice internals (the DTLS connection, the nominated pair,
the consent task): ``hand_over`` checks each and returns None when one is missing, and
the line then stays on aiortc's full path (tested with aiortc 1.16, aioice 0.13).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from typing import Any

from aiortc import rtcdtlstransport

from callcenter.media import g711
from callcenter.media.sdp import Negotiated
from callcenter.media.srtp import SrtpKeys

log = logging.getLogger(__name__)
SUITE = "AES_CM_128_HMAC_SHA1_80"
PROFILE = rtcdtlstransport.SRTP_AES128_CM_SHA1_80
_SSRC = re.compile(r"^a=ssrc:(\d+) ", re.M)


def only_cm_sha1_80(pc: Any) -> bool:
    """Offer only the SRTP profile our engine carries on every DTLS transport of ``pc``
    (before the handshake). False when aiortc's transports do not look as expected."""
    done = False
    for t in pc.getTransceivers():
        dtls = t.receiver.transport
        if not hasattr(dtls, "_srtp_profiles"):
            return False
        dtls._srtp_profiles = [PROFILE]
        done = True
    return done


def srtp_keys(dtls: Any) -> SrtpKeys | None:
    """Our sending and receiving keys of a connected DTLS transport (RFC 5764 §4.2)."""
    ssl = getattr(dtls, "_ssl", None)
    role = getattr(dtls, "_role", None)
    if ssl is None or role not in ("client", "server"):
        return None
    if ssl.get_selected_srtp_profile() != PROFILE.openssl_profile:
        return None
    view = ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (PROFILE.key_length + PROFILE.salt_length))
    client = PROFILE.get_key_and_salt(view, 0)
    server = PROFILE.get_key_and_salt(view, 1)
    tx, rx = (server, client) if role == "server" else (client, server)
    return SrtpKeys(SUITE, tx, rx)


def announced_ssrc(answer_sdp: str) -> int | None:
    """The SSRC our answer told the browser we send with."""
    m = _SSRC.search(answer_sdp)
    return int(m.group(1)) if m else None


def hand_over(pc: Any, codec: str, media: Any) -> Any | None:
    """Give the connected line's media to ``media`` (a ``MediaEngine`` or ``MediaPool``);
    the new engine session, or None when the line must stay on aiortc's path."""
    if codec not in ("PCMU", "PCMA") or not hasattr(media, "adopt_ice"):
        return None
    audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
    if len(audio) != 1 or pc.localDescription is None:
        return None
    dtls = audio[0].receiver.transport
    ice = getattr(dtls.transport, "_connection", None)
    keys = srtp_keys(dtls)
    ssrc = announced_ssrc(pc.localDescription.sdp)
    if ice is None or keys is None or ssrc is None:
        log.info("browser line stays on aiortc: no SRTP keys or SSRC to hand over")
        return None
    ours = [c for c in ice.local_candidates if c.component == 1]
    if sum(c.type == "host" for c in ours) != 1 or any(c.type not in ("host", "srflx") for c in ours):
        # the browser may move to any checked pair: the engine holds one socket, so it needs
        # every pair to be on it (one host address: webrtc.ice_hosts; no TURN relay)
        log.info("browser line stays on aiortc: more than one local socket in ICE")
        return None
    pair = getattr(ice, "_nominated", {}).get(1)
    protocol = getattr(pair, "protocol", None)
    transport = getattr(protocol, "transport", None)
    if pair is None or pair.local_candidate.type not in ("host", "srflx") or transport is None:
        log.info("browser line stays on aiortc: its ICE pair is relayed or unknown")
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_DGRAM:
        return None
    own = socket.socket(sock.family, socket.SOCK_DGRAM, fileno=os.dup(sock.fileno()))
    try:
        session = media.adopt_ice(own, ssrc, ice.local_username, ice.local_password)
    except Exception:  # the engine closed nothing it did not take: close our duplicate
        own.close()
        log.warning("browser line stays on aiortc: the engine refused its socket", exc_info=True)
        return None
    # from here on the engine owns the socket's traffic
    transport.pause_reading()
    task = getattr(ice, "_query_consent_task", None)
    if task is not None:
        task.cancel()
    session.apply(Negotiated(codec=codec, payload_type=g711.STATIC_PT[codec], dtmf_payload_type=None,
                             remote_addr=pair.remote_addr, remote_direction="sendrecv", ptime=20,
                             media_index=0, proto="UDP/TLS/RTP/SAVPF", srtp=keys), True)
    return session
