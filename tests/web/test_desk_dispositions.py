"""Wrap-up dispositions come from the contact's queue (queues.yaml ``dispositions``), in a real
browser (issue 19): the desk offers that queue's list, and the server refuses any other (422),
in the submitted wrap-up and in a draft, losing nothing: the form stays open and a valid
choice is then saved."""

from __future__ import annotations

from typing import Any

from browser_rig import playwright_api, watch
from test_desk_page import T, carol_available
from test_desk_wrap_up import answered_and_hung_up

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.rig import short_ring

pw = playwright_api()
expect = pw.expect

SALES = ["order_placed", "quote_sent", "no_sale"]

# A request with the page's own session, as the desk makes it.
SEND = """async ([method, path, body]) => {
  const session = JSON.parse(sessionStorage.getItem("callcenter.session"));
  const r = await fetch(path, { method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${session.token}` },
    body: JSON.stringify(body) });
  return [r.status, await r.text()];
}"""


def sales_list(queues: dict[str, Any]) -> None:
    short_ring(queues)
    queues["queues"]["sales"]["dispositions"] = SALES


async def test_the_desk_offers_the_queues_dispositions_and_the_server_refuses_others(
    rig_factory: Any, new_page: Any
) -> None:
    rig = await rig_factory(sales_list)
    mount_pages(rig.center.app)
    log = watch(rig)
    page, errors = await carol_available(rig, new_page, log)

    cid = await answered_and_hung_up(rig, log, await rig.caller())  # a sales call

    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    options = page.locator("#wrapup-disposition option")
    await expect(options).to_have_count(len(SALES) + 1, timeout=T)
    assert await options.evaluate_all("os => os.map(o => o.value)") == ["", *SALES]
    await expect(options.nth(1)).to_have_text("Order placed")

    # "resolved" is in the default list, not in sales': refused, and the wrap-up stays open.
    status, text = await page.evaluate(SEND, ["POST", "/api/agent/wrapup", {"disposition": "resolved"}])
    assert status == 422 and "order_placed" in text, text
    status, text = await page.evaluate(
        SEND, ["PUT", "/api/agent/wrapup/draft", {"contact_id": cid, "disposition": "resolved", "notes": ""}])
    assert status == 422, text
    errors.items = [e for e in errors.items if not e.startswith("HTTP 422")]  # those two
    assert not log.of(ev.WrapUpCompleted, contact_id=cid)
    assert rig.center.core.wrap_ups["1003"].contact_id == cid

    await page.select_option("#wrapup-disposition", "quote_sent")
    await page.fill("#wrapup-notes", "sent the quote")
    await page.click("#wrapup-submit")
    done = await log.wait(ev.WrapUpCompleted, contact_id=cid)
    assert (done.disposition, done.notes) == ("quote_sent", "sent the quote")
    await expect(page.locator("#desk-notice")).to_have_text("Wrap-up saved.", timeout=T)
    assert errors.items == []
