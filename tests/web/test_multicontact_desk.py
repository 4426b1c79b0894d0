"""The desk's work list in a real browser: two contacts of the test-only memo channel are
offered to Carol at once; she accepts one and declines the other from the list, the memo's
own panel (desk_memo.js, loaded through /desk/channels.json) shows it and replies, End puts
it in wrap-up, and the per-contact wrap-up form saves its draft and submits to the record."""

from __future__ import annotations

from typing import Any

from browser_rig import playwright_api, watch
from memo_channel import memo_queues, wire_memo
from test_desk_page import T, carol_available

from callcenter import events as ev
from callcenter.web.pages import mount_pages

expect = playwright_api().expect


async def test_work_list_accept_decline_end_and_wrap_up(rig_factory: Any, new_page: Any) -> None:
    rig = await rig_factory(memo_queues)
    mount_pages(rig.center.app)
    memo = wire_memo(rig.center)
    log = watch(rig)
    page, errors = await carol_available(rig, new_page, log, phone=False)

    m1 = await memo.arrive("sales", "my parcel is late")
    m2 = await memo.arrive("sales", "wrong size", ani="ian@example.com")
    item1 = page.locator(f'.work-item[data-contact-id="{m1.contact_id}"]')
    item2 = page.locator(f'.work-item[data-contact-id="{m2.contact_id}"]')
    await expect(item1).to_have_attribute("data-phase", "offered", timeout=T)
    await expect(item2).to_have_attribute("data-phase", "offered", timeout=T)
    await expect(item1.locator(".work-timer")).to_contain_text("Accept within", timeout=T)
    await expect(page.locator("#pop")).to_have_attribute("data-phase", "idle")  # the call panel is the call's

    await item2.locator(".work-decline").click()
    assert (await log.wait(ev.OfferRejected, contact_id=m2.contact_id)).reason == "declined"
    await expect(item2).to_have_count(0, timeout=T)

    await item1.locator(".work-accept").click()
    await log.wait(ev.ContactConnected, contact_id=m1.contact_id, agent_id="1003")
    await expect(item1).to_have_attribute("data-phase", "connected", timeout=T)
    panel = page.locator("#channel-panel")
    await expect(panel).to_have_attribute("data-contact-id", m1.contact_id, timeout=T)
    await expect(panel.locator(".memo-text")).to_have_text("memo from grace@example.com", timeout=T)
    await expect(panel.locator(".memo-lines li")).to_have_text(["grace@example.com: my parcel is late"])

    await panel.locator(".memo-reply").click()  # the channel's own route, from its panel
    reply = await log.wait(ev.ContactMessage, contact_id=m1.contact_id, direction="out")
    assert (reply.author, reply.text) == ("1003", "on it")
    await expect(page.locator("body")).to_have_attribute("data-memo-replies", "1", timeout=T)  # onEvent
    await expect(panel.locator(".memo-lines li")).to_have_count(2, timeout=T)

    await item1.locator(".work-end").click()
    await log.wait(ev.WrapUpStarted, contact_id=m1.contact_id, agent_id="1003")
    await expect(item1).to_have_attribute("data-phase", "wrap_up", timeout=T)
    form = page.locator("#task-wrapup-form")
    await expect(form).to_be_visible(timeout=T)
    await expect(page.locator("#wrapup")).to_be_hidden()  # the call's wrap-up form stays closed
    await page.select_option("#task-wrapup-disposition", "sale")
    await page.fill("#task-wrapup-notes", "sent a new parcel")
    await expect(page.locator("#task-wrapup-saved")).to_have_text("Draft saved", timeout=T)
    draft = next(d for c, d in rig.center.core.wrap_up_contacts("1003") if c.contact_id == m1.contact_id)
    assert (draft.disposition, draft.notes) == ("sale", "sent a new parcel")
    await page.click("#task-wrapup-submit")
    done = await log.wait(ev.WrapUpCompleted, contact_id=m1.contact_id)
    assert (done.disposition, done.notes, done.timed_out) == ("sale", "sent a new parcel", False)
    await expect(item1).to_have_count(0, timeout=T)
    await expect(page.locator("#worklist-empty")).to_be_visible(timeout=T)
    await expect(panel).to_be_hidden()
    assert errors.items == []
