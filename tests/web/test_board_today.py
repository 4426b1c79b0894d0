"""The supervisor board's figures for today, live from the stream, in a real browser at a
laptop's and a phone's viewport: callers in the IVR per queue, offered/answered/abandoned
and service level since local midnight, per agent the current contact, handled, AHT and an
occupancy that moves without polling; the routing decision log filtered by agent and kind.
The same counts are read back from the CRM records (what a restarted server seeds from)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_rig import PageErrors, artifacts, playwright_api, supervisor_signed_in, watch

from callcenter import events as ev
from callcenter.board_today import TodayFigures, local_midnight
from tests.support import eventually
from tests.support.rig import short_ring

pw = playwright_api()
expect = pw.expect

ALAN = "+441632960002"  # demo customer, standard tier
T = 30_000  # ms


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)], ids=["laptop", "phone"])
async def test_today_figures_live_on_the_board(
    rig_factory: Any, browser: Any, width: int, height: int
) -> None:
    rig = await rig_factory(short_ring)
    log = watch(rig)
    ctx = await browser.new_context(viewport={"width": width, "height": height})
    page = await ctx.new_page()
    errors = PageErrors(page)
    polled: list[str] = []

    async def refuse(route: Any) -> None:  # the board must live on the stream alone
        polled.append(route.request.url)
        await route.abort()

    shots = artifacts(f"supervisor-today-{width}x{height}")
    try:
        await supervisor_signed_in(page, rig.http)
        await page.route("**/api/supervisor/snapshot", refuse)
        sales = page.locator('#queue-rows tr[data-queue="sales"]')
        general = page.locator('#queue-rows tr[data-queue="general"]')
        await expect(sales.locator(".c-today")).to_have_text("0 / 0 / 0", timeout=T)

        # A caller listens to the menu: in the IVR of the main service, whose queue is general.
        await rig.phone("1003")
        await rig.desktop("1003")
        caller = await rig.caller()
        call = await caller.call("5000", rig.sip, ani=ALAN)
        await log.wait(ev.PromptPlayed, step="departments")
        await expect(general.locator(".c-ivr")).to_have_text("1", timeout=T)

        # Sales, answered by Carol: offered and answered today; her row shows the call.
        call.media.send_dtmf("3")
        connected = await log.wait(ev.ContactConnected, agent_id="1003")
        await expect(general.locator(".c-ivr")).to_have_text("0", timeout=T)
        await expect(sales.locator(".c-today")).to_have_text("1 / 1 / 0", timeout=T)
        await expect(sales.locator(".c-sltoday")).to_have_text("100.0%")
        carol = page.locator('#agent-rows tr[data-agent="1003"]')
        await expect(carol.locator(".c-contact")).to_have_text(f"{ALAN} · sales · Connected", timeout=T)
        # Busy all day so far (available only for the moments before the call): occupancy
        # counts on from the pushed figures, no message needed.
        occupancy = carol.locator(".c-occupancy")
        await expect(occupancy).to_have_text(re.compile(r"\d+\.\d%"), timeout=T)
        first = await occupancy.inner_text()
        await expect(occupancy).not_to_have_text(first, timeout=T)
        await page.screenshot(path=str(shots / "1-connected.png"), full_page=True)

        # The caller hangs up; Carol wraps up: handled 1 today, with an AHT.
        await call.hangup()
        await log.wait(ev.WrapUpStarted, agent_id="1003")
        await expect(carol.locator(".c-contact")).to_have_text("Wrap-up", timeout=T)
        desk = rig.desktops[0]
        r = await desk.post("/api/agent/wrapup", {"disposition": "sale", "contact_id": connected.contact_id})
        assert r.status_code == 200, r.text
        await log.wait(ev.WrapUpCompleted, agent_id="1003")
        await expect(carol.locator(".c-handled")).to_have_text("1", timeout=T)
        await expect(carol.locator(".c-aht")).not_to_have_text("—")
        await expect(carol.locator(".c-contact")).to_have_text("—")

        # Carol goes not ready; a second caller gives up waiting: abandoned, service level down.
        r = await desk.post("/api/agent/state", {"state": "not_ready", "reason": "break"})
        assert r.status_code == 200, r.text
        second = await (await rig.caller()).call("5000", rig.sip, ani=ALAN)
        second.media.send_dtmf("3")
        await log.wait(ev.ContactQueued, queue="sales")
        await expect(sales.locator(".c-waiting")).to_have_text("1", timeout=T)
        await second.hangup()
        await log.wait(ev.ContactAbandoned)
        await expect(sales.locator(".c-today")).to_have_text("2 / 1 / 1", timeout=T)
        await expect(sales.locator(".c-sltoday")).to_have_text("50.0%")
        await expect(sales.locator(".c-sltoday")).to_have_attribute("data-breach", "yes")

        # The wallboard tile says the same.
        await page.click("#btn-wallboard")
        tile = page.locator('.tile[data-queue="sales"]')
        await expect(tile.locator(".t-counts")).to_have_text("today: offered 2 · answered 1 · abandoned 1")
        await expect(tile.locator(".t-sl")).to_have_text("50.0% / 90%")
        await expect(page.locator('.tile[data-queue="general"] .t-ivr')).to_have_text("0")
        await page.screenshot(path=str(shots / "2-wallboard.png"), full_page=True)
        await page.click("#btn-wallboard")

        # The decision log: collapsed, filtered by agent and kind.
        box = page.locator("#decisions-box")
        assert await box.get_attribute("open") is None
        await box.locator("summary").click()
        await page.select_option("#decision-agent", "1003")
        items = page.locator("#decisions li[data-kind]")
        await expect(items.first).to_be_visible()
        for text in await items.all_inner_texts():
            assert "agent 1003" in text
        kinds = await page.locator("#decision-kind option").evaluate_all("os => os.map(o => o.value)")
        kind = next(k for k in kinds if k)
        await page.select_option("#decision-kind", kind)
        for item in await items.all():
            assert await item.get_attribute("data-kind") == kind
        await expect(page.locator("#decision-count")).to_contain_text(" of ")
        await box.scroll_into_view_if_needed()
        await page.screenshot(path=str(shots / "3-decisions.png"), full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        assert polled == []
        assert errors.items == []
    finally:
        await ctx.close()

    # What a restarted server would start from: the day's records give the same counts.
    async def recorded() -> bool:
        return len(await rig.center.crm.search_interactions(queue="sales")) == 2

    await eventually(recorded, timeout=20)
    await rig.center.crm_events.flush()
    queues = rig.center.cfg.routing.queues
    target = {name: q.service_level.seconds for name, q in queues.items()}
    fresh = TodayFigures(lambda _m: None, queues, target.__getitem__, lambda _s: None, {})
    assert fresh.day_start == local_midnight(connected.ts)
    await rig.center.reports.seed_today(fresh)
    seeded = fresh.view()
    counts = ("offered", "answered", "abandoned", "service_level")
    assert {k: seeded["queues"]["sales"][k] for k in counts} == {
        "offered": 2, "answered": 1, "abandoned": 1, "service_level": 50.0}  # fmt: skip
    assert seeded["agents"]["1003"]["handled"] == 1
    assert seeded["agents"]["1003"]["working_s"] > 0
