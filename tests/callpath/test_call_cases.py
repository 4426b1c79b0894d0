"""The call path's other cases: RONA, abandons, hold, blind transfer, VIP overtaking,
agents without a phone, and the supervisor's live numbers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_call_path import ALAN, GRACE, tone

from callcenter import events as ev
from tests.support.peers import EventLog, both_media_modes, watch
from tests.support.rig import short_ring

SALES, SUPPORT, OPERATOR = "3", "2", "4"


@pytest.fixture
async def rig(rig_factory: Any) -> Any:
    return await rig_factory(short_ring)


async def dial(rig: Any, log: EventLog, ani: str, digit: str) -> tuple[Any, ev.ContactQueued]:
    """A caller through the main menu, pressing ``digit``; returns once the contact is queued."""
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=ani)
    arrived = await log.wait(ev.ContactArrived, attributes={"sip_call_id": call.call_id,
                                                            "display": "Test Caller"})  # fmt: skip
    call.media.send_dtmf(digit)
    queued = await log.wait(ev.ContactQueued, contact_id=arrived.contact_id)
    return call, queued


async def record(rig: Any, contact_id: str) -> dict[str, Any]:
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    rec = await rig.center.crm.interaction(contact_id)
    assert rec is not None
    return rec


async def test_rona_sets_agent_not_ready_and_requeues_the_caller(rig: Any) -> None:
    log = watch(rig)
    phone = await rig.phone("1003", answer="manual")
    desk = await rig.desktop("1003")
    call, queued = await dial(rig, log, GRACE, SALES)
    await phone.wait_event(lambda e: e.get("type") == "CALL_INCOMING")
    rejected = await log.wait(ev.OfferRejected, contact_id=queued.contact_id)
    assert rejected.reason == "rona"
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="not_ready", reason="rona")
    await phone.wait_event(lambda e: e.get("type") == "CALL_CLOSED")  # the ringing leg was cancelled
    assert call.is_active  # the caller never noticed beyond waiting
    assert rig.center.router.position(queued.contact_id) == 1  # back in place

    # Ready again: offered again, and this time the agent answers.
    n = len(phone.events)
    r = await desk.post("/api/agent/state", {"state": "available"})
    assert r.status_code == 200
    incoming = await phone.wait_event(lambda e: e.get("type") == "CALL_INCOMING", start=n)
    await phone.command("accept", incoming["id"])
    connected = await log.wait(ev.ContactConnected, contact_id=queued.contact_id)
    assert connected.agent_id == "1003"
    await call.hangup()
    await log.wait(ev.ContactEnded, contact_id=queued.contact_id)
    rec = await record(rig, queued.contact_id)
    assert rec["outcome"] == "answered"


async def test_abandon_while_queued(rig: Any) -> None:
    log = watch(rig)
    await rig.phone("1003")
    await rig.desktop("1003", ready=False)  # logged in, not ready: nobody to take the call
    call, queued = await dial(rig, log, ALAN, SALES)
    assert rig.center.router.position(queued.contact_id) == 1
    await call.hangup()
    abandoned = await log.wait(ev.ContactAbandoned, contact_id=queued.contact_id)
    assert abandoned.where == "queue"
    assert abandoned.waited_s >= 0
    assert rig.center.router.queue_stats("sales").waiting == 0
    rec = await record(rig, queued.contact_id)
    assert rec["outcome"] == "abandoned"
    assert not log.of(ev.AgentOffered, contact_id=queued.contact_id)


async def test_abandon_while_ringing_cancels_the_agent_leg(rig: Any) -> None:
    log = watch(rig)
    phone = await rig.phone("1003", answer="manual")
    await rig.desktop("1003")
    call, queued = await dial(rig, log, ALAN, SALES)
    await phone.wait_event(lambda e: e.get("type") == "CALL_INCOMING")
    await call.hangup()
    abandoned = await log.wait(ev.ContactAbandoned, contact_id=queued.contact_id)
    assert abandoned.where == "ringing"
    await phone.wait_event(lambda e: e.get("type") == "CALL_CLOSED")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    rec = await record(rig, queued.contact_id)
    assert rec["outcome"] == "abandoned"


@both_media_modes
async def test_hold_and_unhold_from_the_desktop(rig: Any) -> None:
    log = watch(rig)
    await rig.phone("1003")
    desk = await rig.desktop("1003")
    call, queued = await dial(rig, log, ALAN, SALES)
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id)
    contact = rig.center.voice.legs[queued.contact_id]
    assert contact.call.media.bridged_to is contact.agent_call.media

    r = await desk.post("/api/agent/hold", {"on_hold": True})
    assert r.status_code == 200, r.text
    held = await log.wait(ev.ContactHeld, contact_id=queued.contact_id, on_hold=True)
    assert held.agent_id == "1003"
    assert contact.call.media.bridged_to is None  # the agent no longer hears the caller
    assert contact.call.media.playing  # ...who hears music instead
    assert contact.call.local_hold  # the caller's phone accepted our re-INVITE (a=sendonly)
    assert call.on_hold  # ...as the caller's side saw it

    r = await desk.post("/api/agent/hold", {"on_hold": False})
    assert r.status_code == 200
    await log.wait(ev.ContactHeld, contact_id=queued.contact_id, on_hold=False)
    assert contact.call.media.bridged_to is contact.agent_call.media
    assert not contact.call.local_hold and not call.on_hold
    await call.hangup()
    await log.wait(ev.ContactEnded, contact_id=queued.contact_id)
    rec = await record(rig, queued.contact_id)
    assert rec["hold_s"] is not None and rec["hold_s"] > 0


async def test_blind_transfer_to_another_queue(rig: Any) -> None:
    log = watch(rig)
    await rig.phone("1003")
    await rig.phone("1002")
    carol = await rig.desktop("1003")
    bob = await rig.desktop("1002")
    call, queued = await dial(rig, log, GRACE, SALES)
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id, agent_id="1003")

    r = await carol.post("/api/agent/transfer", {"target": "queue:support"})
    assert r.status_code == 200, r.text
    moved = await log.wait(ev.ContactTransferred, contact_id=queued.contact_id)
    assert (moved.from_agent, moved.target) == ("1003", "queue:support")
    await bob.wait(lambda m: m["type"] == "offer" and m["contact"]["contact_id"] == queued.contact_id)
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id, agent_id="1002")
    assert call.is_active
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    await call.hangup()
    await log.wait(ev.ContactEnded, contact_id=queued.contact_id)
    rec = await record(rig, queued.contact_id)
    agents = [s.get("agent_id") for s in rec["segments"] if s.get("agent_id")]
    assert agents[:1] == ["1003"] and agents[-1] == "1002"
    assert rec["agent_id"] == "1002"


async def test_vip_overtakes_a_standard_caller(rig: Any) -> None:
    log = watch(rig)
    await rig.phone("1001")
    alice = await rig.desktop("1001", ready=False)
    _, standard = await dial(rig, log, ALAN, OPERATOR)
    _, vip = await dial(rig, log, GRACE, OPERATOR)
    assert vip.priority > standard.priority
    assert rig.center.router.position(vip.contact_id) == 1  # ahead though it came second
    r = await alice.post("/api/agent/state", {"state": "available"})
    assert r.status_code == 200
    offered = await log.wait(ev.AgentOffered, agent_id="1001")
    assert offered.contact_id == vip.contact_id


async def test_agent_without_a_registered_phone_is_not_offered_calls(rig: Any) -> None:
    log = watch(rig)
    await rig.desktop("1002")  # ready, but no softphone
    await rig.phone("1003")
    await rig.desktop("1003")
    _, queued = await dial(rig, log, ALAN, OPERATOR)
    offered = await log.wait(ev.AgentOffered, contact_id=queued.contact_id)
    assert offered.agent_id == "1003"
    assert not log.of(ev.AgentOffered, agent_id="1002")


async def test_supervisor_sees_the_numbers_the_test_can_compute(rig: Any) -> None:
    log = watch(rig)
    sup = await rig.desktop("supervisor")
    await rig.phone("1003")
    await rig.desktop("1003")
    answered_call, answered = await dial(rig, log, GRACE, SALES)
    await log.wait(ev.ContactConnected, contact_id=answered.contact_id)
    # A second caller waits (Carol is busy) and gives up.
    gone_call, gone = await dial(rig, log, ALAN, SALES)
    await gone_call.hangup()
    await log.wait(ev.ContactAbandoned, contact_id=gone.contact_id)
    await sup.wait(lambda m: m["type"] == "decision" and m["task_id"] == answered.contact_id
                   and m["kind"] == "offer" and "1003" in m["explanation"])  # fmt: skip
    await sup.wait(lambda m: m["type"] == "agent_state" and m["agent_id"] == "1003" and m["state"] == "busy")

    # The stream carries the queue figures too (throttled), matching what the test did.
    live = await sup.wait(lambda m: m["type"] == "queues" and any(
        q["queue"] == "sales" and q["abandoned"] == 1 and q["answered"] == 1 for q in m["queues"]))
    assert next(q for q in live["queues"] if q["queue"] == "sales")["waiting"] == 0
    r = await sup.get("/api/supervisor/snapshot")
    assert r.status_code == 200
    sales = next(q for q in r.json()["queues"] if q["queue"] == "sales")
    assert sales["answered"] == 1
    assert sales["abandoned"] == 1
    assert sales["abandon_rate"] == pytest.approx(50.0)
    assert sales["waiting"] == 0
    carol = next(a for a in r.json()["agents"] if a["agent_id"] == "1003")
    assert carol["state"] == "busy" and carol["contact_id"] == answered.contact_id
    metrics = (await sup.get("/metrics")).text
    assert 'callcenter_queue_abandoned{queue="sales"} 1.0' in metrics
    assert 'callcenter_agent_state{agent="1003",state="busy"} 1.0' in metrics
    await answered_call.hangup()


@pytest.fixture
async def options_rig(request: pytest.FixtureRequest, rig_factory: Any) -> Any:
    """Callers are offered voicemail/callback as soon as they are queued."""
    return await rig_factory(short_ring, server_patch={"queueing": {"announce_every_s": 30,
                                                                    "offer_options_after_s": 0}},
                             media_workers=getattr(request, "param", 1))  # fmt: skip


@pytest.mark.parametrize("options_rig", [1, 2], indirect=True, ids=["media1", "media2"])
async def test_waiting_caller_leaves_a_voicemail_instead(options_rig: Any) -> None:
    rig = options_rig
    log = watch(rig)
    call, queued = await dial(rig, log, ALAN, SALES)  # nobody logged in: the caller waits
    call.media.send_dtmf("1")
    # Speak for a moment, then hang up: the message is kept.
    player = asyncio.create_task(call.media.play(str(tone(rig.tmp, 3.0))))
    await player
    await call.hangup()
    message = await log.wait(ev.VoicemailRecorded, contact_id=queued.contact_id)
    assert message.size > 44 and len(message.sha256) == 64 and message.duration_s > 0
    rec = await record(rig, queued.contact_id)
    assert rec["outcome"] == "voicemail"
    assert any(a["kind"] == "recording" for a in rec["attachments"])
    assert rig.center.router.queue_stats("sales").waiting == 0


async def test_waiting_caller_asks_for_a_call_back(options_rig: Any) -> None:
    rig = options_rig
    log = watch(rig)
    call, queued = await dial(rig, log, ALAN, SALES)
    call.media.send_dtmf("2")
    asked = await log.wait(ev.CallbackRequested, contact_id=queued.contact_id)
    assert asked.number == ALAN
    await asyncio.wait_for(call.ended.wait(), 30)  # the server says goodbye and hangs up
    await log.wait(ev.ContactEnded, contact_id=queued.contact_id)
    rec = await record(rig, queued.contact_id)
    assert rec["outcome"] == "callback_requested"
    assert rec["callback_number"] == ALAN


async def test_agent_hangs_up_from_the_desktop(rig: Any) -> None:
    log = watch(rig)
    await rig.phone("1003")
    desk = await rig.desktop("1003")
    call, queued = await dial(rig, log, GRACE, SALES)
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id)
    r = await desk.post("/api/agent/hangup")
    assert r.status_code == 200, r.text
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.end_reason == "remote_bye"  # the server sent the caller a BYE
    ended = await log.wait(ev.ContactEnded, contact_id=queued.contact_id)
    assert ended.ended_by in ("agent", "system")
    await desk.wait(lambda m: m["type"] == "wrapup")
    await rig.center.bus.drain()
    assert len(log.of(ev.ContactEnded, contact_id=queued.contact_id)) == 1
    r = await desk.post("/api/agent/hangup")
    assert r.status_code == 409  # nothing left to hang up


async def test_agent_phone_transfers_by_refer_to_a_queue(rig: Any) -> None:
    log = watch(rig)
    carol_phone = await rig.phone("1003")
    await rig.phone("1002")
    await rig.desktop("1003")
    await rig.desktop("1002")
    call, queued = await dial(rig, log, ALAN, SALES)
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id, agent_id="1003")
    host, port = rig.sip
    await carol_phone.command("transfer", f"sip:support@{host}:{port}")  # the phone's own REFER
    moved = await log.wait(ev.ContactTransferred, contact_id=queued.contact_id)
    assert (moved.from_agent, moved.target) == ("1003", "queue:support")
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id, agent_id="1002")
    assert call.is_active


@both_media_modes
async def test_blind_transfer_to_a_number(rig: Any) -> None:
    log = watch(rig)
    await rig.phone("1003")
    carol = await rig.desktop("1003")
    call, queued = await dial(rig, log, GRACE, SALES)
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id)
    host, port = rig.sip
    target = f"sip:600@{host}:{port}"  # our own echo test stands in for an outside number
    r = await carol.post("/api/agent/transfer", {"target": target})
    assert r.status_code == 200, r.text
    moved = await log.wait(ev.ContactTransferred, contact_id=queued.contact_id)
    assert moved.target == target
    await carol.wait(lambda m: m["type"] == "wrapup" and m["contact_id"] == queued.contact_id)
    echo = await log.wait(ev.ContactArrived, dnis="600")  # the transferred leg reached the number
    assert call.is_active
    await call.hangup()
    await log.wait(ev.ContactEnded, contact_id=queued.contact_id)
    await log.wait(ev.ContactEnded, contact_id=echo.contact_id)  # the far leg ended with it
