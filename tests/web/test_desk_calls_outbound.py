"""Click-to-dial from the desk (issue 19), with real phones: Carol types a number and clicks
Call; her baresip rings and answers first, then the server dials the customer (a SIP user
agent of ours on loopback, through callbacks.dial_uri); they talk; the record is a voice
contact, direction outbound, answered by Carol. Then a call to a customer by id over HTTP,
and the refusals (busy, no trunk)."""

from __future__ import annotations

from typing import Any

from browser_rig import PageErrors, playwright_api, watch
from test_desk_callback import _customer
from test_desk_page import GRACE, T, sign_in

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.polling import eventually

expect = playwright_api().expect


async def test_click_to_dial_rings_the_agent_then_the_customer(rig_factory: Any, new_page: Any) -> None:
    customer, rig = await _customer(rig_factory)
    mount_pages(rig.center.app)
    log = watch(rig)
    await rig.phone("1003")  # answers automatically
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")  # not ready: dialling makes her available

    await page.fill("#dial-number", GRACE)
    await page.click("#dial-submit")
    arrived = await log.wait(ev.ContactArrived, channel="voice", direction="outbound")
    cid = arrived.contact_id
    await log.wait(ev.AgentOffered, contact_id=cid, agent_id="1003")
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
    attempt = await log.wait(ev.CallbackAttempted, contact_id=cid)
    assert (attempt.result, attempt.number) == ("answered", GRACE)
    await expect(page.locator("#call-status")).to_have_text("Connected", timeout=T)
    await expect(page.locator("#pop-name")).to_have_text("Grace Hopper", timeout=T)  # the screen-pop

    carol = await rig.desktop("1003", ready=False)
    busy = await carol.post("/api/agent/dial", {"number": GRACE})
    assert busy.status_code == 409 and "current contacts" in busy.json()["detail"]
    leg = customer.calls.get_nowait()
    await leg.hangup()
    await log.wait(ev.WrapUpStarted, contact_id=cid, agent_id="1003")
    r = await carol.post("/api/agent/wrapup", {"disposition": "sale", "notes": "called Grace"})
    assert r.status_code == 200, r.text

    async def record() -> Any:
        rec = await rig.center.crm.interaction(cid)
        return rec if rec is not None and rec["disposition"] == "sale" else None

    rec = await eventually(record, 20, what="the outbound call's record")
    assert (rec["channel"], rec["direction"], rec["outcome"], rec["agent_id"]) == (
        "voice", "outbound", "answered", "1003")  # fmt: skip
    assert rec["ani"] == GRACE

    # By customer id: the customer's phone number is dialled.
    grace = await rig.center.crm.customer_by_address("phone", GRACE)
    r = await carol.post("/api/agent/dial", {"customer_id": grace["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["number"] == GRACE
    second = r.json()["contact_id"]
    await log.wait(ev.ContactConnected, contact_id=second, agent_id="1003")
    assert errors.items == []


async def test_click_to_dial_needs_a_trunk(rig_factory: Any) -> None:
    rig = await rig_factory()  # no callbacks.dial_uri
    await rig.phone("1003")
    carol = await rig.desktop("1003")
    r = await carol.post("/api/agent/dial", {"number": GRACE})
    assert r.status_code == 409 and "dial_uri" in r.json()["detail"]
    assert (await carol.post("/api/agent/dial", {"number": "not a number"})).status_code == 422
