"""Wrap-up notes stay with their contact (issue 19, items 1 and 2), in a real browser.

The agent types notes on call A and lets wrap-up time run out: the desk shows the countdown,
then says time ran out; A's record holds A's notes (autosaved server-side) with the
timed-out flag. Call B then starts with an empty form, and B's record has none of A's notes.
"""

from __future__ import annotations

from typing import Any

from browser_rig import playwright_api, watch
from test_desk_page import GRACE, T, carol_available

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.polling import eventually
from tests.support.rig import short_ring

pw = playwright_api()
expect = pw.expect

WRAP_UP_S = 10  # long enough for the page to autosave what the test types, short for a test
NOTES_A = "customer A wants the blue manual"


def short_wrap_up(queues: dict[str, Any]) -> None:
    short_ring(queues)
    for q in queues["queues"].values():
        q["wrap_up_s"] = WRAP_UP_S


async def answered_and_hung_up(rig: Any, log: Any, caller: Any) -> str:
    """A caller for sales (3) is answered by baresip and hangs up; returns the contact id."""
    seen = len(log.of(ev.ContactQueued))
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")
    await eventually(lambda: len(log.of(ev.ContactQueued)) > seen, 30, what="queued")
    cid = log.of(ev.ContactQueued)[-1].contact_id
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
    await call.hangup()
    await log.wait(ev.WrapUpStarted, contact_id=cid)
    return str(cid)


async def test_notes_typed_before_a_wrap_up_timeout_stay_on_their_contact(
    rig_factory: Any, new_page: Any
) -> None:
    rig = await rig_factory(short_wrap_up)
    mount_pages(rig.center.app)
    log = watch(rig)
    page, errors = await carol_available(rig, new_page, log)
    caller = await rig.caller()

    # Call A: notes typed, then wrap-up time runs out.
    cid_a = await answered_and_hung_up(rig, log, caller)
    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    await expect(page.locator("#wrapup-countdown")).to_contain_text("Wrap-up ends in", timeout=T)
    await page.fill("#wrapup-notes", NOTES_A)
    await expect(page.locator("#wrapup-saved")).to_have_text("Draft saved", timeout=T)
    assert rig.center.core.drafts["1003"].notes == NOTES_A
    done_a = await log.wait(ev.WrapUpCompleted, contact_id=cid_a, timeout=WRAP_UP_S + 30)
    assert done_a.timed_out and done_a.notes == NOTES_A
    await expect(page.locator("#desk-notice")).to_contain_text("Wrap-up time ran out", timeout=T)
    await expect(page.locator("#wrapup")).to_be_hidden()
    await log.wait(ev.AgentStateChanged, agent_id="1003", old="wrap_up", new="available")

    # Call B: the form is empty; submitting it saves nothing of A's.
    cid_b = await answered_and_hung_up(rig, log, caller)
    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    await expect(page.locator("#wrapup-notes")).to_have_value("")
    await page.select_option("#wrapup-disposition", "resolved")
    await page.click("#wrapup-form button[type=submit]")
    done_b = await log.wait(ev.WrapUpCompleted, contact_id=cid_b)
    assert (done_b.notes, done_b.timed_out) == ("", False)

    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    record_a = await rig.center.crm.interaction(cid_a)
    record_b = await rig.center.crm.interaction(cid_b)
    assert record_a is not None and record_b is not None
    assert record_a["notes"] == NOTES_A
    assert record_a["attributes"]["wrap_up_timed_out"] is True
    assert record_b["notes"] == "" and record_b["disposition"] == "resolved"
    assert errors.items == []
