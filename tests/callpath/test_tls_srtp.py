"""The server with a TLS listener and mandatory SRTP, and baresip (libre's TLS, its srtp
module with mediaenc=srtp-mand) as the agent's phone: it registers over TLS, calls the
echo test over TLS, and is reached over its TLS connection for a queued call. Audio is
checked by its energy after decryption; certificates come from the test."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from callcenter import events as ev
from callcenter.sip.transport import TlsTransport
from tests.support import eventually
from tests.support.certs import Pki, make_pki
from tests.support.peers import watch
from tests.support.ports import free_port
from tests.support.rig import Rig, short_ring


async def tls_rig(rig_factory: Any, pki: Pki, media_workers: int = 1) -> Rig:
    tls_port = free_port()

    def edit(server: dict[str, Any]) -> None:
        server["sip"]["listen"].append({"transport": "tls", "host": "127.0.0.1", "port": tls_port})
        server["sip"]["tls"] = {"cert_file": str(pki.cert), "key_file": str(pki.key), "ca_file": str(pki.ca)}
        server["rtp"]["srtp"] = "mandatory"

    return await rig_factory(short_ring, server_edit=edit, media_workers=media_workers)


def server_leg(rig: Rig) -> Any:
    calls = list(rig.center.ua.calls.values())
    return calls[0] if len(calls) == 1 else None


async def test_baresip_registers_and_calls_over_tls_with_srtp(rig_factory: Any, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    rig = await tls_rig(rig_factory, pki)
    phone = await rig.phone("1001", tls_ca=pki.ca, mediaenc="srtp-mand")
    [binding] = await rig.center.registrar.contacts("1001")
    assert binding.transport == "tls"

    tls_port = rig.center.transport.get("tls").local[1]
    await phone.command("dial", f"sip:600@127.0.0.1:{tls_port};transport=tls")
    await phone.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED")
    await eventually(lambda: server_leg(rig) is not None)
    leg = server_leg(rig)
    assert isinstance(leg.transport, TlsTransport)
    assert "RTP/SAVP" in (leg.request.body or b"").decode()  # baresip offered SRTP...

    async def heard() -> bool:
        stats = await leg.media.fetch_stats()
        # ...and its tone arrives decrypted: energy, no authentication failures
        return stats["rx_packets"] >= 50 and stats["rx_rms"] > 1000 and stats["rx_srtp_failed"] == 0

    await eventually(heard, timeout=20)
    assert (await leg.media.fetch_stats())["tx_packets"] > 0  # the echo service answers
    await phone.command("hangup")
    await eventually(lambda: not rig.center.ua.calls)


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_a_queued_call_reaches_the_agent_over_its_tls_connection(
    rig_factory: Any, tmp_path: Path, media_workers: int
) -> None:
    pki = make_pki(tmp_path / "pki")
    rig = await tls_rig(rig_factory, pki, media_workers)  # 2: SRTP runs in media workers
    log = watch(rig)
    phone = await rig.phone("1003", tls_ca=pki.ca, mediaenc="srtp-mand")
    await rig.desktop("1003")
    tls = rig.center.transport.get("tls")
    assert isinstance(tls, TlsTransport)
    connections = len(tls.connections)
    caller = await rig.caller(srtp="mandatory")
    call = await caller.call("5000", rig.sip)
    call.media.send_dtmf("3")  # sales: Carol
    queued = await log.wait(ev.ContactQueued)
    await phone.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED")
    await log.wait(ev.ContactConnected, agent_id="1003")
    agent_leg = rig.center.voice.legs[queued.contact_id].agent_call
    assert isinstance(agent_leg.transport, TlsTransport)
    assert len(tls.connections) == connections  # over the phone's own connection, no new one
    assert "RTP/SAVP" in (agent_leg.request.body or b"").decode()  # our offer to it
    # the softphone's tone, decrypted on the agent leg and re-encrypted to the caller
    await eventually(lambda: call.media.stats.rx_packets >= 50 and call.media.stats.rx_rms > 1000,
                     timeout=20)
    assert call.media.stats.rx_srtp_failed == 0
    await call.hangup()
    await log.wait(ev.ContactEnded)
    await asyncio.wait_for(phone.wait_event(lambda e: e.get("type") == "CALL_CLOSED"), 10)
