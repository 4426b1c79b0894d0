"""End to end: a caller through the demo IVR into a queue, to a baresip agent with a
screen-pop on the agent's WebSocket desktop, talk, hang up, wrap up, and the record.

Real components throughout: our SIP server and media engine, baresip softphones
registering with digest auth, SIP callers with RTP, the CTI WebSocket, SQLite CRM.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from callcenter import events as ev
from tests.support.peers import both_media_modes, watch

GRACE = "+441632960001"  # demo VIP customer
ALAN = "+441632960002"  # demo standard customer


def tone(tmp: Path, seconds: float = 30.0) -> Path:
    from tests.support.peers import tone_wav

    return tone_wav(tmp / "caller-voice.wav", seconds, freq=700.0)


def count_frames(media: Any, wanted: int) -> asyncio.Event:
    """An event set once ``wanted`` audio frames have arrived on ``media``."""
    got = asyncio.Event()
    frames = 0

    def on_audio(_frame: bytes) -> None:
        nonlocal frames
        frames += 1
        if frames >= wanted:
            got.set()

    media.on_audio = on_audio
    return got


@both_media_modes
async def test_call_reaches_skilled_agent_with_screen_pop_and_full_record(rig: Any) -> None:
    log = watch(rig)
    phone = await rig.phone("1003")  # Carol: sales
    desk = await rig.desktop("1003")
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # sales, pressed during the greeting (barge-in)
    queued = await log.wait(ev.ContactQueued)
    assert queued.queue == "sales"
    assert queued.priority >= 10  # Grace is VIP

    offer = await desk.wait(lambda m: m["type"] == "offer")
    invite = await phone.wait_event(lambda e: e.get("type") == "CALL_REMOTE_SDP")
    assert offer["customer"]["name"] == "Grace Hopper"
    assert offer["tier"] == "vip"
    assert offer["contact"]["ani"] == GRACE
    assert offer["contact"]["queue"] == "sales"
    assert offer["ivr"]["path"][-2:] == ["departments", "sales"]
    assert "sales" in offer["routing"] and "1003" in offer["routing"]
    assert all(r["id"] != queued.contact_id for r in offer["recent"])
    # The desktop had the screen-pop no later than the INVITE reached the phone.
    assert offer["_received_at"] <= invite["_received_at"]
    assert invite["peerdisplayname"] == "Grace Hopper"
    await phone.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED")
    connected = await log.wait(ev.ContactConnected, agent_id="1003")
    assert connected.contact_id == queued.contact_id

    # Audio both ways: the caller hears the softphone's tone; the softphone gets the caller's.
    player = asyncio.create_task(call.media.play(str(tone(rig.tmp))))
    contact = rig.center.voice.legs[queued.contact_id]
    agent_media = contact.agent_call.media

    heard = count_frames(call.media, 100)  # 2 s of the softphone's audio at the caller
    await asyncio.wait_for(heard.wait(), 20)
    assert call.media.stats.rx_rms > 100  # the tone, not silence
    agent_stats = await agent_media.fetch_stats()  # (a media worker's, when there are any)
    assert agent_stats["rx_packets"] >= 50  # relayed from the softphone...
    assert agent_stats["tx_packets"] > 0  # ...and the caller's audio relayed to it
    player.cancel()

    await call.hangup()
    ended = await log.wait(ev.ContactEnded, contact_id=queued.contact_id)
    assert ended.ended_by == "caller"
    await desk.wait(lambda m: m["type"] == "wrapup")
    r = await desk.post("/api/agent/wrapup", {"disposition": "sale", "notes": "ordered 3 manuals"})
    assert r.status_code == 200, r.text
    await log.wait(ev.WrapUpCompleted, contact_id=queued.contact_id)
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    record = await rig.center.crm.interaction(queued.contact_id)
    assert record["queue"] == "sales"
    assert record["agent_id"] == "1003"
    assert record["disposition"] == "sale"
    for stamp in ("arrived_at", "queued_at", "offered_at", "connected_at", "ended_at", "wrapup_ended_at"):
        assert record[stamp] is not None, stamp
    assert record["ivr_path"]
    assert record["outcome"] == "answered"
