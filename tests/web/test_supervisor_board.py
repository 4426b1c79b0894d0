"""The supervisor board's wallboard, alerts, bulk state change and interaction search, in a
real browser at a laptop's and a phone's viewport, with screenshots kept as test artifacts
(test-artifacts/, git-ignored)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_rig import PageErrors, artifacts, playwright_api, supervisor_signed_in, watch

from callcenter import events as ev
from tests.support import eventually
from tests.support.rig import short_ring

pw = playwright_api()
expect = pw.expect

ALAN = "+441632960002"  # demo standard customer
T = 30_000  # ms
# Low wait thresholds so one waiting caller crosses both within seconds.
BOARD = {"thresholds": {"service_level_warn": 80, "service_level_alarm": 70,
                        "longest_wait_warn_s": 1, "longest_wait_alarm_s": 3}}  # fmt: skip
RED = "rgb(194, 55, 43)"  # common.css --bad


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)], ids=["laptop", "phone"])
async def test_wallboard_alerts_bulk_change_and_search(
    rig_factory: Any, browser: Any, width: int, height: int
) -> None:
    rig = await rig_factory(short_ring, server_patch={"board": BOARD})
    log = watch(rig)
    ctx = await browser.new_context(viewport={"width": width, "height": height})
    page = await ctx.new_page()
    errors = PageErrors(page)
    shots = artifacts(f"supervisor-board-{width}x{height}")
    try:
        await supervisor_signed_in(page, rig.http)

        # Bulk: two available agents selected and put on Not ready in one go.
        await rig.desktop("1002")
        await rig.desktop("1003")
        rows = [page.locator(f'#agent-rows tr[data-agent="{a}"]') for a in ("1002", "1003")]
        for row in rows:
            await expect(row).to_have_attribute("data-state", "available", timeout=T)
            await row.locator(".c-pick").check()
        await expect(page.locator("#bulk-count")).to_have_text("2 selected")
        await page.select_option("#bulk-state", "not_ready")
        await page.fill("#bulk-reason", "meeting")
        await page.click("#bulk-apply")
        for agent, row in zip(("1002", "1003"), rows, strict=True):
            await log.wait(ev.AgentStateChanged, agent_id=agent, new="not_ready", reason="meeting")
            assert str(rig.center.router.agent_state(agent)) == "not_ready"
            await expect(row.locator(".c-state")).to_have_text("Not ready", timeout=T)
        await expect(page.locator("#bulk-count")).to_have_text("0 selected")
        await expect(page.locator("#agents thead")).to_contain_text("Occupancy")
        await page.screenshot(path=str(shots / "1-bulk.png"), full_page=True)

        # Wallboard: a caller waits in sales with nobody available; the tile goes amber,
        # then red as the longest wait counts past the thresholds, and the banner says why.
        await page.click("#btn-wallboard")
        await expect(page).to_have_url(re.compile(r"wallboard=1"))
        await expect(page.locator("#agents")).to_be_hidden()
        tile = page.locator('.tile[data-queue="sales"]')
        await expect(tile).to_be_visible(timeout=T)
        await expect(tile).to_have_attribute("data-level", "ok")
        caller = await rig.caller()
        call = await caller.call("5000", rig.sip, ani=ALAN)
        call.media.send_dtmf("3")
        queued = await log.wait(ev.ContactQueued)
        await expect(tile.locator(".t-waiting")).to_have_text("1", timeout=T)
        await expect(tile).to_have_attribute("data-level", "alarm", timeout=T)
        await expect(tile.locator(".t-longest")).to_have_attribute("data-level", "alarm")
        assert await tile.evaluate("n => getComputedStyle(n).borderTopColor") == RED
        alerts = page.locator("#alerts")
        await expect(alerts).to_be_visible()
        await expect(alerts).to_contain_text("sales: longest wait")
        await expect(alerts).to_have_attribute("data-level", "alarm")
        await page.screenshot(path=str(shots / "2-wallboard-alarm.png"), full_page=True)

        await call.hangup()  # abandoned: the wait alert clears, service level (0%) alarms instead
        await log.wait(ev.ContactAbandoned, contact_id=queued.contact_id)
        await expect(tile.locator(".t-waiting")).to_have_text("0", timeout=T)
        await expect(alerts).not_to_contain_text("longest wait", timeout=T)
        await expect(alerts).to_contain_text("sales: service level 0.0%")
        await expect(tile.locator(".t-counts")).to_contain_text("abandoned 1")

        # Search and record view: the abandoned call's record, once the CRM has it.
        await page.click("#btn-wallboard")
        await expect(page.locator("#agents")).to_be_visible()

        async def recorded() -> bool:
            return bool(await rig.center.crm.search_interactions(queue="sales"))

        await eventually(recorded, timeout=20)
        await page.fill("#search-form input[name=queue]", "sales")
        await page.click("#search-form button[type=submit]")
        hit = page.locator(f'#search-rows tr[data-id="{queued.contact_id}"]')
        await expect(hit).to_be_visible(timeout=T)
        await hit.click()
        outcome = page.locator('#record-fields dd[data-field="outcome"]')
        await expect(outcome).to_have_text("Abandoned", timeout=T)
        await expect(page.locator('#record-timeline li[data-type="ContactAbandoned"]')).to_be_visible()
        await page.locator("#record").scroll_into_view_if_needed()
        await page.screenshot(path=str(shots / "3-record.png"), full_page=True)
        # Nothing wider than the viewport (a phone scrolls down, not sideways).
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        assert errors.items == []
    finally:
        await ctx.close()
