"""Adds the browser phone to a ``Center`` (callcenter/center.py): build, start, close."""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.webrtc.api import phone_router
from callcenter.webrtc.gateway import BrowserPhones, owner
from callcenter.webrtc.line import ice_servers

if TYPE_CHECKING:
    from callcenter.center import Center


def install_webrtc(center: Center) -> BrowserPhones | None:
    """The gateway and ``/api/phone/*``; None when ``webrtc.enabled`` is false."""
    s = center.cfg.server
    cfg = s.webrtc
    if not cfg.enabled:
        return None
    turn = cfg.turn
    servers = ice_servers(turn.url if turn else None, turn.username if turn else None,
                          turn.credential if turn else None)  # fmt: skip
    client: dict[str, list[dict[str, str]]] = {"ice_servers": []}
    if cfg.stun_url:
        from aiortc import RTCIceServer

        servers.append(RTCIceServer(urls=cfg.stun_url))
        client["ice_servers"].append({"urls": cfg.stun_url})
    if turn is not None:
        client["ice_servers"].append({"urls": turn.url, "username": turn.username,
                                      "credential": turn.credential})
    lines = {a.id: a.sip.username for a in center.cfg.agent_secrets.values()}
    # supervisors with a SIP account: the supervisor page's browser phone, which monitoring rings
    lines.update({owner("supervisor", u.username): u.sip.username
                  for u in center.cfg.supervisors.values() if u.sip is not None})  # fmt: skip
    phones = BrowserPhones(
        center.registrar,
        lines,
        # loopback: the gateway shares the host with the SIP process and its media engine
        host="127.0.0.1",
        ice_hosts=[str(h) for h in cfg.ice_hosts],
        ice_servers=servers,
        binding_ttl_s=cfg.binding_ttl_s,
        media_timeout_s=float(s.sip.session.media_timeout_s),
        media=center.media if cfg.lean_media else None,
    )
    center.app.include_router(phone_router(phones, client))
    center.app.state.phones = phones
    return phones
