"""The agent desk page in a real browser, through a real call.

An agent signs in on /desk and goes available; a caller (Grace Hopper, VIP) dials the
main line and presses 3 for sales; the page shows the screen-pop; the agent's baresip
softphone answers; the agent holds and unholds from the page; the caller hangs up; the
agent submits the wrap-up form, and the CRM's interaction record carries it.
"""

from __future__ import annotations

import re
from typing import Any

from browser_rig import PageErrors, artifacts, playwright_api, watch

from callcenter import events as ev

pw = playwright_api()
expect = pw.expect

GRACE = "+441632960001"  # demo VIP customer
T = 30_000  # ms: the upper bound of every wait on the page


async def sign_in(page: Any, base: str, user: str, password: str) -> None:
    await page.goto(f"{base}/desk")
    await page.fill("#login-username", user)
    await page.fill("#login-password", password)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=T)


async def carol_available(rig: Any, new_page: Any, log: Any, *, phone: bool = True) -> tuple[Any, PageErrors]:
    """Carol (1003, sales; her baresip registered unless ``phone`` is False) signed in on
    /desk and Available; returns her page and its error watch."""
    if phone:
        await rig.phone("1003")
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")
    await page.click("#btn-available")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    return page, errors


async def test_agent_desk_through_a_whole_call(rig: Any, new_page: Any) -> None:
    log = watch(rig)
    phone = await rig.phone("1003")  # Carol: sales; baresip answers automatically
    page = await new_page()
    errors = PageErrors(page)

    await sign_in(page, rig.http, "1003", "demo-1003")
    state = page.locator("#state")
    await expect(state).to_have_attribute("data-state", "not_ready", timeout=T)  # signed in, not ready
    await expect(page.locator("#who")).to_have_text("Carol Clark (1003)", timeout=T)
    await page.click("#btn-available")
    await expect(state).to_have_text("Available", timeout=T)
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    assert str(rig.center.router.agent_state("1003")) == "available"

    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # sales
    queued = await log.wait(ev.ContactQueued)
    cid = queued.contact_id

    # The screen-pop.
    await expect(page.locator("#pop-name")).to_have_text("Grace Hopper", timeout=T)
    tier = page.locator("#pop-tier")
    await expect(tier).to_be_visible()
    await expect(tier).to_have_text("VIP")
    await expect(tier).to_have_attribute("data-tier", "vip")
    await expect(page.locator("#pop-ani")).to_have_text(GRACE)
    await expect(page.locator("#pop-queue")).to_have_text("sales")
    await expect(page.locator("#pop-service")).not_to_have_text("—")
    await expect(page.locator("#pop-id")).to_have_text(cid)
    # The IVR path in the flows' step titles (ids stay in data-steps); "Why you" in a sentence.
    ivr_path = page.locator("#pop-ivr-path")
    await expect(ivr_path).to_contain_text("Department menu → Chose sales")
    await expect(ivr_path).to_have_attribute("data-steps", re.compile(r"\bdepartments sales\b"))
    await expect(page.locator("#pop-why")).to_have_text(
        "You have skills sales at level 7 and english at level 9; you were the only agent who could take it.")
    await expect(page.locator("#pop-routing")).to_contain_text("1003")
    await expect(page.locator("#pop-recent tr").first).to_be_visible()

    # baresip answers: the page shows the call controls.
    await phone.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED")
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
    await expect(page.locator("#controls")).to_be_visible(timeout=T)
    await expect(page.locator("#call-status")).to_have_text("Connected")
    await expect(state).to_have_attribute("data-state", "busy", timeout=T)

    # A reload mid-call keeps the session and rebuilds the desk from the stream's snapshot.
    why = await page.locator("#pop-routing").inner_text()
    recent = await page.locator("#pop-recent").inner_text()
    assert "1003" in why and recent
    await page.reload()
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    await expect(page.locator("#pop-name")).to_have_text("Grace Hopper", timeout=T)
    await expect(page.locator("#pop-tier")).to_have_text("VIP")
    await expect(page.locator("#controls")).to_be_visible()
    # "Why you" and the recent interactions come back too, as they were before the reload.
    await expect(page.locator("#pop-routing")).to_have_text(why)
    await expect(page.locator("#pop-why")).to_contain_text("You have skills sales at level 7")
    await expect(page.locator("#pop-ivr-path")).to_contain_text("Department menu → Chose sales")
    await expect(page.locator("#pop-recent")).to_have_text(recent)
    await expect(state).to_have_attribute("data-state", "busy")

    hold = page.locator("#btn-hold")
    await hold.click()
    await log.wait(ev.ContactHeld, contact_id=cid, on_hold=True)
    await expect(hold).to_have_text("Unhold", timeout=T)
    await expect(page.locator("#call-status")).to_have_text("On hold")
    await hold.click()
    await log.wait(ev.ContactHeld, contact_id=cid, on_hold=False)
    await expect(hold).to_have_text("Hold", timeout=T)
    await expect(page.locator("#call-status")).to_have_text("Connected")
    assert [e.on_hold for e in log.of(ev.ContactHeld, contact_id=cid)] == [True, False]
    assert all(e.agent_id == "1003" for e in log.of(ev.ContactHeld, contact_id=cid))

    # The caller hangs up: the wrap-up form replaces the call controls.
    await call.hangup()
    ended = await log.wait(ev.ContactEnded, contact_id=cid)
    assert ended.ended_by == "caller"
    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    await expect(page.locator("#controls")).to_be_hidden()
    await page.select_option("#wrapup-disposition", "sale")
    await page.fill("#wrapup-notes", "ordered 3 manuals <b>not bold</b>")
    await page.click("#wrapup-form button[type=submit]")
    done = await log.wait(ev.WrapUpCompleted, contact_id=cid)
    assert (done.agent_id, done.disposition) == ("1003", "sale")
    await expect(page.locator("#desk-notice")).to_have_text("Wrap-up saved.", timeout=T)
    await expect(page.locator("#wrapup")).to_be_hidden()

    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    record = await rig.center.crm.interaction(cid)
    assert record is not None
    assert record["disposition"] == "sale"
    assert "ordered 3 manuals <b>not bold</b>" in record["notes"]
    assert record["agent_id"] == "1003"
    assert record["queue"] == "sales"
    assert record["outcome"] == "answered"

    await page.screenshot(path=str(artifacts("desk-whole-call") / "desk.png"), full_page=True)
    assert errors.items == []
