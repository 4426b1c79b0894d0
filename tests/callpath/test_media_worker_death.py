"""A media worker process dies (issue 20's soak): the calls it carried end at once and their
records close as failed, the agent alerted for one is freed, calls on the other worker go on,
and a new call goes to the surviving worker. A fault in the ring/talk path ends the contact
too, never leaving it half-open."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from test_call_cases import SALES, dial, record
from test_call_path import ALAN, GRACE

from callcenter import events as ev
from routing.model import AgentState
from tests.support import eventually
from tests.support.peers import watch
from tests.support.rig import short_ring


def agent_available(rig: Any, agent: str) -> bool:
    return rig.center.router.agents[agent].state is AgentState.AVAILABLE


async def test_a_killed_worker_ends_its_calls_as_failed_and_frees_the_ringing_agent(rig_factory: Any) -> None:
    rig = await rig_factory(short_ring, media_workers=2)
    log = watch(rig)
    phone = await rig.phone("1003", answer="manual")
    await rig.desktop("1003")
    call, queued = await dial(rig, log, GRACE, SALES)
    cid = queued.contact_id
    await phone.wait_event(lambda e: e.get("type") == "CALL_INCOMING")
    victim = rig.center.voice.legs[cid].call.media.worker
    other = await (await rig.caller()).call("600", rig.sip, ani=ALAN)  # the echo test, elsewhere
    assert other.media is not None
    survivor = next(w for w in rig.center.media.workers if w is not victim)
    assert any(s for s in survivor.sessions.values())  # the echo call lives on the other worker

    assert victim._proc is not None and victim._proc.pid is not None
    os.kill(victim._proc.pid, signal.SIGKILL)
    late = await (await rig.caller()).call("600", rig.sip, ani=GRACE)  # right after: no 503
    assert late.is_active

    await call.ended.wait()
    assert call.end_reason == "remote_bye"  # the caller was told, not left in silence
    ended = await log.wait(ev.ContactEnded, contact_id=cid)
    assert (ended.reason, ended.ended_by) == ("media_failed", "system")
    assert not log.of(ev.ContactAbandoned, contact_id=cid)
    await phone.wait_event(lambda e: e.get("type") == "CALL_CLOSED")  # the ringing leg cancelled
    await eventually(lambda: agent_available(rig, "1003"))
    rec = await record(rig, cid)
    assert (rec["status"], rec["outcome"], rec["end_reason"]) == ("ended", "failed", "media_failed")
    assert len(log.of(ev.ContactEnded, contact_id=cid)) == 1
    assert other.is_active and late.is_active  # calls on the surviving worker untouched
    await other.hangup()
    await late.hangup()


async def test_a_queued_call_on_a_killed_worker_fails_and_the_next_caller_reaches_the_agent(
    rig_factory: Any,
) -> None:
    """The soak's case: queued with no agent ready at the kill, then an agent gets ready: the
    dead call is already over (not offered), and a new caller is connected on the survivor."""
    rig = await rig_factory(short_ring, media_workers=2)
    log = watch(rig)
    await rig.phone("1003")
    desk = await rig.desktop("1003", ready=False)
    call, queued = await dial(rig, log, GRACE, SALES)
    cid = queued.contact_id
    victim = rig.center.voice.legs[cid].call.media.worker
    assert victim._proc is not None and victim._proc.pid is not None
    os.kill(victim._proc.pid, signal.SIGKILL)
    await call.ended.wait()
    assert (await log.wait(ev.ContactEnded, contact_id=cid)).reason == "media_failed"

    r = await desk.post("/api/agent/state", {"state": "available"})
    assert r.status_code == 200, r.text
    late, again = await dial(rig, log, ALAN, SALES)
    connected = await log.wait(ev.ContactConnected, contact_id=again.contact_id)
    assert connected.agent_id == "1003"
    assert rig.center.voice.legs[again.contact_id].call.media.worker is not victim
    assert not log.of(ev.AgentOffered, contact_id=cid)
    rec = await record(rig, cid)
    assert (rec["status"], rec["outcome"], rec["end_reason"]) == ("ended", "failed", "media_failed")
    await late.hangup()
    await log.wait(ev.ContactEnded, contact_id=again.contact_id)


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_a_fault_while_connecting_the_agent_still_ends_the_contact(
    rig_factory: Any, media_workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await rig_factory(short_ring, media_workers=media_workers)

    def broken_talk(*_args: Any) -> None:
        raise ValueError("bridged legs must live on the same media worker")

    monkeypatch.setattr(rig.center.voice, "talk", broken_talk)
    log = watch(rig)
    phone = await rig.phone("1003")
    await rig.desktop("1003")
    call, queued = await dial(rig, log, GRACE, SALES)
    cid = queued.contact_id
    ended = await log.wait(ev.ContactEnded, contact_id=cid)
    assert (ended.reason, ended.ended_by) == ("channel_error", "system")
    await call.ended.wait()  # BYE to the caller
    await phone.wait_event(lambda e: e.get("type") == "CALL_CLOSED")
    await eventually(lambda: agent_available(rig, "1003"))
    rec = await record(rig, cid)
    assert (rec["status"], rec["outcome"]) == ("ended", "failed")
    assert len(log.of(ev.ContactEnded, contact_id=cid)) == 1
