"""Click-to-dial from a customer (issue 19), in a real browser with real phones. Carol calls
Grace by number; while the call is in hand the customer panel edits Grace's details and
offers no Call; once the call is wrapped up the panel keeps Grace as "Last customer" with a
Call button on her number, and that button rings Carol's baresip and then Grace (a SIP user
agent on loopback, through callbacks.dial_uri). Dialling a customer by id follows the
privacy policy: with `lookup: current`, a customer Carol never handled is refused; with
`lookup: any`, the idle panel searches and calls anyone."""

from __future__ import annotations

from typing import Any

from browser_rig import PageErrors, playwright_api, watch
from test_desk_callback import ALAN, _customer
from test_desk_page import GRACE, T, sign_in

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.rig import CustomerPhone

expect = playwright_api().expect


async def dialling_rig(rig_factory: Any, server: dict[str, Any] | None = None) -> tuple[CustomerPhone, Any]:
    """The demo server with a trunk to a customer phone, and Carol's baresip registered."""
    customer, rig = await _customer(rig_factory, server)
    mount_pages(rig.center.app)
    await rig.phone("1003")  # answers automatically
    return customer, rig


async def connected_to(log: Any, number: str, seen: int) -> str:
    """The id of the next outbound call to ``number``, once Carol and the customer talk."""
    await log.wait(ev.CallbackAttempted, number=number, result="answered")
    arrived = [e for e in log.of(ev.ContactArrived, direction="outbound") if e.ani == number][seen]
    await log.wait(ev.ContactConnected, contact_id=arrived.contact_id, agent_id="1003")
    return str(arrived.contact_id)


async def test_the_last_customer_is_called_back_from_the_panel(rig_factory: Any, new_page: Any) -> None:
    customer, rig = await dialling_rig(rig_factory)
    log = watch(rig)
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")
    panel = page.locator("#customer-panel")
    await expect(panel).to_be_hidden()  # lookup: current, no contact yet: nothing to show

    await page.fill("#dial-number", GRACE)
    await page.click("#dial-submit")
    first = await connected_to(log, GRACE, 0)
    await expect(panel).to_have_attribute("data-contact", first, timeout=T)
    await expect(panel.locator("#cp-name")).to_have_text("Grace Hopper", timeout=T)
    grace_point = panel.locator(f'#cp-points li[data-value="{GRACE}"]')
    await expect(grace_point.get_by_role("button", name=f"Remove {GRACE}")).to_be_visible(timeout=T)
    await expect(grace_point.locator(".cp-call")).to_have_count(0)  # busy: no second call

    await (customer.calls.get_nowait()).hangup()
    await log.wait(ev.WrapUpStarted, contact_id=first, agent_id="1003")
    await page.select_option("#wrapup-disposition", index=1)
    await page.click("#wrapup-submit")
    await log.wait(ev.WrapUpCompleted, contact_id=first)

    # No contact in hand: Grace stays as the last customer, to be called back.
    await expect(panel).to_have_attribute("data-contact", "", timeout=T)
    await expect(panel.locator("#cp-title")).to_have_text("Last customer")
    await expect(panel.locator("#cp-name")).to_have_text("Grace Hopper")
    await expect(panel.locator("#cp-add")).to_be_hidden()  # details are edited during a contact
    await expect(panel.locator("#cp-search")).to_be_hidden()  # lookup: current
    await grace_point.get_by_role("button", name=f"Call {GRACE}").click()
    second = await connected_to(log, GRACE, 1)
    assert second != first
    await expect(page.locator("#call-status")).to_have_text("Connected", timeout=T)
    assert customer.calls.qsize() == 1  # Grace's phone rang once more

    carol = await rig.desktop("1003", ready=False)
    alan = await rig.center.crm.customer_by_address("phone", ALAN)
    r = await carol.post("/api/agent/dial", {"customer_id": alan["id"]})
    assert r.status_code == 403, r.text  # never handled Alan: the policy hides his number
    assert customer.calls.qsize() == 1
    assert errors.items == []


async def test_with_lookup_any_the_idle_panel_finds_and_calls_a_customer(
    rig_factory: Any, new_page: Any
) -> None:
    anyone = {"privacy": {"agent": {"lookup": "any", "history": "all", "notes": "own"},
                          "supervisor": {"lookup": "any", "history": "all", "notes": "all"}}}  # fmt: skip
    _phone, rig = await dialling_rig(rig_factory, anyone)
    log = watch(rig)
    page = await new_page()
    errors = PageErrors(page)
    await sign_in(page, rig.http, "1003", "demo-1003")
    panel = page.locator("#customer-panel")
    await expect(panel).to_be_visible(timeout=T)
    await expect(panel.locator("#cp-title")).to_have_text("Customers")

    await page.fill("#cp-q", "alan")
    await page.click("#cp-search button[type=submit]")
    hit = panel.locator('#cp-results li[data-customer]')
    await expect(hit).to_contain_text("Alan Turing", timeout=T)
    await expect(hit.get_by_role("button", name="This is the caller")).to_have_count(0)  # no contact
    await hit.get_by_role("button", name="Open").click()
    await expect(panel.locator("#cp-name")).to_have_text("Alan Turing", timeout=T)
    await panel.get_by_role("button", name=f"Call {ALAN}").click()
    cid = await connected_to(log, ALAN, 0)
    await expect(page.locator("#pop-name")).to_have_text("Alan Turing", timeout=T)
    rec = log.of(ev.ContactArrived, contact_id=cid)[0]
    assert (rec.channel, rec.direction, rec.attributes["dialled_by"]) == ("voice", "outbound", "1003")
    assert errors.items == []
