"""What the interaction record and the log say about a contact (issue 19, item 13), through
real calls: the echo test and a hang-up in the IVR are not abandons; a hang-up from the desk
is the agent's; signing in again leaves the agent not ready; an agent's queues are those
their skills serve; one INFO line per contact at its start and at its end."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from callcenter import events as ev
from tests.support.peers import watch

GRACE = "+441632960001"


async def _record(rig: Any, cid: str) -> dict[str, Any]:
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    record = await rig.center.crm.interaction(cid)
    assert record is not None
    return dict(record)


async def test_echo_test_is_self_served_and_an_ivr_hang_up_ended_in_ivr(
    rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callcenter.contacts.core")
    log = watch(rig)
    caller = await rig.caller()

    echo = await caller.call("600", rig.sip, ani=GRACE)
    echo_cid = (await log.wait(ev.ContactArrived, dnis="600")).contact_id
    await echo.hangup()
    assert (await log.wait(ev.ContactEnded, contact_id=echo_cid)).ended_by == "caller"
    assert (await _record(rig, echo_cid))["outcome"] == "self_served"

    ivr = await caller.call("5000", rig.sip, ani=GRACE)
    ivr_cid = (await log.wait(ev.ContactArrived, dnis="5000")).contact_id
    await log.wait(ev.PromptPlayed, contact_id=ivr_cid)
    await ivr.hangup()
    await log.wait(ev.ContactEnded, contact_id=ivr_cid)
    record = await _record(rig, ivr_cid)
    assert record["outcome"] == "ended_in_ivr"
    assert record["queued_at"] is None

    lines = [r.getMessage() for r in caplog.records if r.name == "callcenter.contacts.core"]
    for cid in (echo_cid, ivr_cid):
        mine = [line for line in lines if cid in line]
        assert len(mine) == 2, mine  # one at the start, one at the end
        assert "arrived: voice from +441632960001" in mine[0]
        assert "ended:" in mine[1]


async def test_desk_hang_up_is_the_agents(rig: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="callcenter.contacts.core")
    log = watch(rig)
    await rig.phone("1003")
    desk = await rig.desktop("1003")
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # sales
    cid = (await log.wait(ev.ContactQueued)).contact_id
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")

    r = await desk.post("/api/agent/hangup")
    assert r.status_code == 200, r.text
    ended = await log.wait(ev.ContactEnded, contact_id=cid)
    assert ended.ended_by == "agent"
    assert (await log.wait(ev.WrapUpStarted, contact_id=cid)).ended_by == "agent"
    record = await _record(rig, cid)
    assert record["attributes"]["ended_by"] == "agent"
    assert record["outcome"] == "answered"
    lines = [r.getMessage() for r in caplog.records]
    end_line = [line for line in lines if cid in line and "ended:" in line]
    assert len(end_line) == 1 and "answered" in end_line[0] and "by agent" in end_line[0]


async def test_signing_in_again_leaves_the_agent_not_ready(rig: Any) -> None:
    log = watch(rig)
    first = await rig.desktop("1003")  # signs in and goes available
    assert str(rig.center.router.agent_state("1003")) == "available"
    await rig.desktop("1003", ready=False)  # a second sign-in
    changed = await log.wait(ev.AgentStateChanged, agent_id="1003", new="not_ready")
    assert changed.reason == "login"
    me = (await first.get("/api/agent/me")).json()
    assert (me["state"], me["reason"]) == ("not_ready", "login")


async def test_an_agents_queues_are_those_their_skills_serve(rig: Any) -> None:
    desk = await rig.desktop("1003", ready=False)  # sales 7, billing 5, technical 4, fax 5
    me = (await desk.get("/api/agent/me")).json()
    assert sorted(me["queues"]) == ["backoffice", "general", "sales"]  # billing needs 6, support technical 5
    assert sorted(me["transfer_queues"]) == sorted(rig.center.router.queues)
