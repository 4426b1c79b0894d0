"""The desk's "Today" card: the agent's own figures from the records (issue 19).

Carol handles one sales call and submits its wrap-up; once the records are written, her
desk shows 1 handled, the average handle time and her time per state, the same figures
``GET /api/agent/today`` computes from the CRM (nothing counted in the page)."""

from __future__ import annotations

import time
from typing import Any

from browser_rig import playwright_api, watch
from test_desk_page import T, carol_available
from test_desk_wrap_up import answered_and_hung_up

from callcenter import events as ev
from callcenter.board_today import local_midnight

pw = playwright_api()
expect = pw.expect


def mmss(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


async def test_today_card_shows_the_agents_own_figures(rig: Any, new_page: Any) -> None:
    log = watch(rig)
    page, errors = await carol_available(rig, new_page, log)
    await expect(page.locator("#today-handled")).to_have_text("0", timeout=T)

    cid = await answered_and_hung_up(rig, log, await rig.caller())
    await page.select_option("#wrapup-disposition", "resolved")
    await page.click("#wrapup-submit")
    await log.wait(ev.WrapUpCompleted, contact_id=cid)
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()

    figures = await rig.center.reports.agent_figures("1003", local_midnight(time.time()), time.time())
    assert figures["handled"] == 1 and figures["aht_s"] > 0
    assert figures["states"]["busy_s"] > 0
    await page.reload()
    await expect(page.locator("#today-handled")).to_have_text("1", timeout=T)
    await expect(page.locator("#today-aht")).to_have_text(mmss(figures["aht_s"]))
    await expect(page.locator("#today-busy")).not_to_have_text("—")

    # The desk's day is the board's: from the server's local midnight.
    mine = (await (await rig.desktop("1003", ready=False)).get("/api/agent/today")).json()
    assert mine["from"] == local_midnight(time.time()) == rig.center.today.day_start
    r = await (await rig.desktop("supervisor")).get("/api/agent/today")
    assert r.status_code == 403  # an agent's own figures: agents only
    assert errors.items == []
