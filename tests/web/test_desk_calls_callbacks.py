"""The desk's callback worklist (issue 19), in a real browser with real phones: two callers ask
to be called back while Carol is Not ready; her desk lists both, oldest first; she takes the
newer one; her baresip rings and answers, the server dials that customer (a SIP user agent on
loopback answers) and they are connected; the older request still waits in the list."""

from __future__ import annotations

from typing import Any

from browser_rig import PageErrors, playwright_api, watch
from test_desk_callback import ALAN, _customer
from test_desk_page import GRACE, T, sign_in

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.polling import eventually

expect = playwright_api().expect


async def ask_for_callback(rig: Any, log: Any, ani: str) -> str:
    seen = len(log.of(ev.ContactQueued))
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=ani)
    call.media.send_dtmf("3")  # sales
    await eventually(lambda: len(log.of(ev.ContactQueued)) > seen, 30, what="queued")
    cid = str(log.of(ev.ContactQueued)[seen].contact_id)
    call.media.send_dtmf("2")  # call me back
    await log.wait(ev.CallbackRequested, contact_id=cid)
    assert await call.wait_ended(30)
    return cid


async def test_agent_takes_a_chosen_callback_from_the_worklist(rig_factory: Any, new_page: Any) -> None:
    customer, rig = await _customer(rig_factory)
    mount_pages(rig.center.app)
    log = watch(rig)
    await rig.phone("1003")  # answers automatically
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")  # not ready: routing offers her nothing

    older = await ask_for_callback(rig, log, ALAN)
    newer = await ask_for_callback(rig, log, GRACE)
    await page.click("#callbacks-refresh")
    items = page.locator("#callback-items .callback-item")
    await expect(items).to_have_count(2, timeout=T)
    assert await items.evaluate_all("els => els.map((e) => e.dataset.contactId)") == [older, newer]
    await expect(items.nth(1)).to_contain_text("Grace", timeout=T)

    await items.nth(1).locator(".callback-take").click()
    offered = await log.wait(ev.AgentOffered, agent_id="1003")
    assert offered.contact_id == newer  # the one she chose, not the oldest
    await log.wait(ev.ContactConnected, contact_id=newer, agent_id="1003")
    attempt = await log.wait(ev.CallbackAttempted, contact_id=newer)
    assert (attempt.result, attempt.number) == ("answered", GRACE)
    await expect(page.locator("#call-status")).to_have_text("Connected", timeout=T)
    await page.click("#callbacks-refresh")
    await expect(items).to_have_count(1, timeout=T)
    await expect(items.first).to_have_attribute("data-contact-id", older)
    assert log.of(ev.AgentOffered, contact_id=older) == []
    leg = customer.calls.get_nowait()
    await leg.hangup()
    await log.wait(ev.WrapUpStarted, contact_id=newer, agent_id="1003")
    assert errors.items == []
