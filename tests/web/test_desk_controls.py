"""The desk's call timer, RONA countdown and button states as a real call moves (issue 19).

Carol's baresip rings without answering: the page counts down to the offer's RONA deadline
(the epoch the server sends, no later than the queue's reservation timeout), Available and
the call buttons are disabled; once she answers, hold/transfer/hang-up are enabled and the
call timer runs; after the caller hangs up only the wrap-up submit applies.
"""

from __future__ import annotations

import time
from typing import Any

from browser_rig import PageErrors, artifacts, playwright_api, watch
from test_desk_page import GRACE, T, sign_in

from callcenter import events as ev

pw = playwright_api()
expect = pw.expect

CALL_BUTTONS = ("#btn-hold", "#btn-hangup", "#transfer-submit")


async def test_countdown_timer_and_buttons_follow_the_call(rig: Any, new_page: Any) -> None:
    log = watch(rig)
    phone = await rig.phone("1003", answer="manual")
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")
    await page.click("#btn-available")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    await expect(page.locator("#btn-available")).to_be_disabled(timeout=T)
    await expect(page.locator("#wrapup-submit")).to_be_disabled()

    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # sales
    offered = await log.wait(ev.AgentOffered, agent_id="1003")
    cid = offered.contact_id
    incoming = await phone.wait_event(lambda e: e.get("type") == "CALL_INCOMING")

    # Ringing: the countdown is drawn from the server's RONA deadline.
    countdown = page.locator("#ring-countdown")
    await expect(countdown).to_be_visible(timeout=T)
    contact = rig.center.core.contacts[cid]
    rona = rig.center.cfg.routing.queues[contact.queue].reservation_timeout_s
    server_deadline = contact.ring_deadline()
    assert server_deadline is not None
    shown_deadline = float(await countdown.get_attribute("data-deadline"))
    assert abs(shown_deadline - server_deadline) < 0.5  # one deadline, converted once per message
    assert shown_deadline - time.time() <= rona
    assert 0 <= int(await countdown.get_attribute("data-seconds")) <= rona
    await expect(countdown).to_contain_text("Answer within")
    await expect(page.locator("#btn-available")).to_be_disabled()
    for button in CALL_BUTTONS:
        await expect(page.locator(button)).to_be_disabled()

    # Answered: the call buttons apply, the countdown is gone, the call timer runs.
    await phone.command("accept", incoming["id"])
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
    await expect(page.locator("#controls")).to_be_visible(timeout=T)
    await expect(countdown).to_be_hidden()
    await expect(page.locator("#call-time")).to_contain_text("On the call", timeout=T)
    for button in CALL_BUTTONS:
        await expect(page.locator(button)).to_be_enabled()
    await expect(page.locator("#btn-available")).to_be_disabled()
    await expect(page.locator("#wrapup-submit")).to_be_disabled()
    await page.set_viewport_size({"width": 1366, "height": 768})
    await page.screenshot(path=str(artifacts("desk-call") / "1366x768.png"))
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=str(artifacts("desk-call") / "390x844.png"), full_page=True)

    # The caller hangs up: only the wrap-up submit applies.
    await call.hangup()
    await log.wait(ev.WrapUpStarted, contact_id=cid)
    await expect(page.locator("#wrapup-submit")).to_be_enabled(timeout=T)
    for button in CALL_BUTTONS:
        await expect(page.locator(button)).to_be_disabled()
    await expect(page.locator("#call-time")).to_have_text("")
    await page.select_option("#wrapup-disposition", "resolved")
    await page.click("#wrapup-submit")
    await log.wait(ev.WrapUpCompleted, contact_id=cid)
    await expect(page.locator("#wrapup-submit")).to_be_disabled(timeout=T)
    assert errors.items == []
