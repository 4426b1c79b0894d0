"""The agent desk through a callback, in a real browser: the caller asks to be called back
and hangs up; the agent goes available; the desk says it is a callback, then that the
customer is being dialled; the customer's phone answers and the desk shows the call."""

from __future__ import annotations

from typing import Any

from browser_rig import PageErrors, playwright_api, watch
from test_desk_page import T, sign_in

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.peers import Caller
from tests.support.rig import CustomerPhone, callback_rig

pw = playwright_api()
expect = pw.expect

ALAN = "+441632960002"  # demo customer Alan Turing


async def test_desk_shows_a_callback_being_dialled(rig_factory: Any, new_page: Any) -> None:
    customer, rig = await _customer(rig_factory)
    mount_pages(rig.center.app)
    log = watch(rig)
    await rig.phone("1003")
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")  # signed in not ready: the caller waits

    caller_side = await rig.caller()
    call = await caller_side.call("5000", rig.sip, ani=ALAN)
    call.media.send_dtmf("3")  # sales
    queued = await log.wait(ev.ContactQueued)
    call.media.send_dtmf("2")  # call me back
    await log.wait(ev.CallbackRequested, contact_id=queued.contact_id)
    assert await call.wait_ended(30)

    customer.pick_up.clear()  # the customer's phone rings until the desk has shown it
    await page.click("#btn-available")
    phase = page.locator("#pop-phase")
    await expect(page.locator("#pop-name")).to_have_text("Alan Turing", timeout=T)
    await expect(phase).to_contain_text(f"Calling the customer back on {ALAN}", timeout=T)
    customer.pick_up.set()
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id, agent_id="1003")
    await expect(page.locator("#call-status")).to_have_text("Connected", timeout=T)
    leg = customer.calls.get_nowait()
    await leg.hangup()
    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    assert errors.items == []


async def _customer(rig_factory: Any, server: dict[str, Any] | None = None) -> tuple[CustomerPhone, Any]:
    """The demo server with a trunk to a customer's phone (a SIP UA of ours on loopback);
    ``server``: more server.yaml sections."""
    caller = Caller()
    await caller.start()
    phone = CustomerPhone(caller)
    rig = await callback_rig(rig_factory, phone, server=server)
    rig.callers.append(caller)  # stopped with the rig
    return phone, rig
