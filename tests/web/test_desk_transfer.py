"""A blind transfer from the desk, in a real browser (issue 19, item 9): the picker lists every
queue, the other agents with their state, and a phone number field; a refused target's
error goes away once a transfer succeeds; the desk names the target as people do ("the
support queue", not "queue:support"); the transferring agent gets a wrap-up for their part,
kept on their segment of the record; and when the caller then hangs up in the new queue, the
record's outcome is abandoned (it follows the last segment), not answered."""

from __future__ import annotations

from typing import Any

from browser_rig import playwright_api, watch
from test_desk_page import GRACE, T, carol_available

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.rig import short_ring

pw = playwright_api()
expect = pw.expect


async def test_transfer_gives_the_agent_a_wrap_up_and_the_record_follows_the_caller(
    rig_factory: Any, new_page: Any
) -> None:
    rig = await rig_factory(short_ring)  # nobody staffs support: the caller waits there
    mount_pages(rig.center.app)
    log = watch(rig)
    page, errors = await carol_available(rig, new_page, log)
    await rig.desktop("1002", ready=False)  # signed in, not ready: the picker says so

    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # sales
    cid = (await log.wait(ev.ContactQueued)).contact_id
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
    await expect(page.locator("#controls")).to_be_visible(timeout=T)

    # The picker: all queues, the other agents (not Carol herself) with their state now.
    queues = page.locator("#transfer-queues option")
    await expect(queues).to_have_count(len(rig.center.router.queues), timeout=T)
    assert set(await queues.evaluate_all("os => os.map(o => o.value)")) == {
        f"queue:{q}" for q in rig.center.router.queues}
    agents = page.locator("#transfer-agents option")
    await expect(agents).to_have_count(len(rig.center.router.agents) - 1)
    assert await page.locator("#transfer-agents option[value='agent:1003']").count() == 0
    bob = page.locator("#transfer-agents option[value='agent:1002']")
    await expect(bob).to_have_attribute("data-state", "not_ready")
    await expect(bob).to_contain_text("Not ready")
    shown = await agents.evaluate_all("os => os.map(o => [o.value.slice(6), o.dataset.state])")
    assert {a: s for a, s in shown} == {
        a: str(rig.center.router.agent_state(a)) for a in rig.center.router.agents if a != "1003"}
    # A phone number: the field appears only for that choice.
    await expect(page.locator("#transfer-number")).to_be_hidden()
    await page.select_option("#transfer-target", "number")
    await expect(page.locator("#transfer-number")).to_be_visible()

    # A stale entry (a queue gone since the picker was loaded) is refused by the server.
    await page.evaluate("""() => document.getElementById("transfer-queues").append(
        new Option("nowhere", "queue:nowhere"))""")
    await page.select_option("#transfer-target", "queue:nowhere")
    await expect(page.locator("#transfer-number")).to_be_hidden()
    await page.click("#transfer-form button[type=submit]")
    notice = page.locator("#desk-notice")
    await expect(notice).to_contain_text("no queue", timeout=T)
    errors.items = [e for e in errors.items if not e.endswith("/api/agent/transfer")]  # that 404

    await page.select_option("#transfer-target", "queue:support")
    await page.click("#transfer-form button[type=submit]")
    await log.wait(ev.ContactTransferred, contact_id=cid, target="queue:support")
    await expect(notice).to_be_hidden(timeout=T)
    phase = page.locator("#pop-phase")
    await expect(phase).to_contain_text("the support queue", timeout=T)
    await expect(phase).not_to_contain_text("queue:support")

    await expect(page.locator("#wrapup")).to_be_visible(timeout=T)
    await page.select_option("#wrapup-disposition", "escalated")
    await page.fill("#wrapup-notes", "needs an engineer")
    await page.click("#wrapup-form button[type=submit]")
    done = await log.wait(ev.WrapUpCompleted, contact_id=cid, agent_id="1003")
    assert (done.disposition, done.notes) == ("escalated", "needs an engineer")
    await expect(notice).to_have_text("Wrap-up saved.", timeout=T)

    await call.hangup()  # still waiting in support
    await log.wait(ev.ContactAbandoned, contact_id=cid)
    await log.wait(ev.ContactEnded, contact_id=cid)
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    record = await rig.center.crm.interaction(cid)
    assert record is not None
    assert record["outcome"] == "abandoned"
    assert [s["kind"] for s in record["segments"]][-2:] == ["transfer", "queue"]
    part = next(s for s in record["segments"] if s["kind"] == "agent")
    assert (part["agent_id"], part["disposition"]) == ("1003", "escalated")
    assert part["notes"] == "needs an engineer"
    assert "needs an engineer" in record["notes"]
    assert errors.items == []
