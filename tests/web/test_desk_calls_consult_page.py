"""Mute, a warm transfer and a conference clicked in the desk page in a real browser (issue 19).

Carol's phone is baresip (playing 1100 Hz), Bob's phone and "a number" (reached through
``callbacks.dial_uri``) are SIP user agents of ours (1700 Hz), the customer is our UA (500 Hz)
and keeps what it hears. Carol mutes and unmutes, consults Bob and completes the transfer;
on a second call she consults a number, joins the conference and leaves it. Each step is
checked on the page (buttons enabled only when they apply, the state shown), in the
customer's ears, and finally in the records."""

from __future__ import annotations

from typing import Any

from browser_rig import PageErrors, playwright_api, watch
from test_desk_calls_consult import OTHER, TonePhone, customer_to_carol, record_of, tone_phone
from test_desk_page import T, sign_in

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.monitoring.tones import AGENT_HZ, CUSTOMER_HZ, SUPERVISOR_HZ, heard, rms
from tests.support.peers import Caller, tone_wav
from tests.support.rig import callback_rig

expect = playwright_api().expect
A, X = AGENT_HZ, SUPERVISOR_HZ


async def test_warm_transfer_and_conference_from_the_page(rig_factory: Any, new_page: Any) -> None:
    number_caller = Caller()
    await number_caller.start()
    number = TonePhone(number_caller, X)
    rig = await callback_rig(rig_factory, number)
    rig.callers.append(number_caller)
    mount_pages(rig.center.app)
    log = watch(rig)
    carol_phone = await rig.phone("1003")
    tone_wav(carol_phone.workdir / "talk.wav", freq=A)  # aufile opens it when a call's audio starts
    bob = await tone_phone(rig, X, agent="1002")
    bob_desk = await rig.desktop("1002", ready=False)
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")
    await page.click("#btn-available")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    mute, consult = page.locator("#btn-mute"), page.locator("#consult-submit")
    await expect(mute).to_be_disabled()  # no call yet

    call, ears, cid = await customer_to_carol(rig, log)
    await expect(page.locator("#controls")).to_be_visible(timeout=T)
    await expect(mute).to_be_enabled(timeout=T)
    await ears.expect(lambda w: heard(w) == {A})

    # Mute from the page: the desk shows it, the customer hears nothing of Carol; then unmute.
    await mute.click()
    await expect(page.locator("#mute-status")).to_be_visible(timeout=T)
    await expect(mute).to_have_text("Unmute")
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await ears.expect(lambda w: rms(w) < 50)
    await mute.click()
    await expect(page.locator("#mute-status")).to_be_hidden(timeout=T)
    await ears.expect(lambda w: heard(w) == {A})

    # The picker says who has a phone; consult Bob, then complete the transfer.
    await expect(page.locator("#transfer-agents option[value='agent:1002']")).to_have_attribute(
        "data-phone", "yes", timeout=T)
    await page.select_option("#transfer-target", "agent:1002")
    await consult.click()
    status = page.locator("#consult-status")
    await expect(status).to_contain_text("Talking to", timeout=T)
    await expect(status).to_contain_text("1002")
    await expect(page.locator("#consult-conference")).to_be_enabled()
    await expect(page.locator("#transfer-submit")).to_be_disabled()
    await expect(page.locator("#btn-hold")).to_be_disabled()
    await expect(consult).to_be_disabled()
    await bob.ears.expect(lambda w: heard(w) == {A})
    await page.click("#consult-complete")
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1002")
    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    await expect(page.locator("#consult")).to_be_hidden()
    await ears.expect(lambda w: heard(w) == {X})
    await page.select_option("#wrapup-disposition", "escalated")
    await page.fill("#wrapup-notes", "handed to Bob")
    await page.click("#wrapup-form button[type=submit]")
    await log.wait(ev.WrapUpCompleted, contact_id=cid, agent_id="1003")
    await call.hangup()
    await bob_desk.post("/api/agent/wrapup", {"disposition": "resolved", "notes": ""})

    # A second caller: consult a number, conference, leave.
    call2, ears2, cid2 = await customer_to_carol(rig, log)
    await expect(consult).to_be_enabled(timeout=T)
    await page.select_option("#transfer-target", "number")
    await page.fill("#transfer-number", OTHER)
    await consult.click()
    await expect(status).to_contain_text(f"Talking to {OTHER}", timeout=T)
    await page.click("#consult-conference")
    await expect(status).to_contain_text("Conference with", timeout=T)
    await expect(page.locator("#consult-complete")).to_have_text("Leave conference")
    await expect(page.locator("#consult-conference")).to_be_disabled()
    await ears2.expect(lambda w: heard(w) == {A, X})
    await number.ears.expect(lambda w: heard(w) == {CUSTOMER_HZ, A})
    await page.click("#consult-complete")
    await log.wait(ev.WrapUpStarted, contact_id=cid2, agent_id="1003")
    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    await ears2.expect(lambda w: heard(w) == {X})
    await page.select_option("#wrapup-disposition", "escalated")
    await page.click("#wrapup-form button[type=submit]")
    await log.wait(ev.WrapUpCompleted, contact_id=cid2, agent_id="1003")
    await call2.hangup()

    first = await record_of(rig, cid, lambda r: r["ended_at"] is not None)
    assert [(c["target"], c["result"]) for c in first["attributes"]["consultations"]] == [
        ("agent:1002", "completed")]
    assert [s["agent_id"] for s in first["segments"] if s["kind"] == "agent"] == ["1003", "1002"]
    second = await record_of(rig, cid2, lambda r: r["ended_at"] is not None)
    (conf,) = second["attributes"]["consultations"]
    assert (conf["result"], conf["participants"]) == (
        "conference_left", ["customer", "agent:1003", f"number:{OTHER}"])
    assert errors.items == []
