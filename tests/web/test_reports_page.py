"""The reports page in a real browser: a supervisor signs in, today's recorded contacts
appear in the queue and agent tables and in the charts (uPlot from node_modules, drawn:
the chart boxes say how many series and points are on the canvas), the CSV download holds
what the API returns, the what-if form runs the simulator; and the live board draws its
short history charts."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx
from browser_rig import PageErrors, playwright_api

from callcenter.web.pages import VENDOR
from tests.support import unavailable

pw = playwright_api()
expect = pw.expect
T = 30_000  # ms


def _ev(seq: list[int], type_: str, cid: str, ts: float, **fields: Any) -> dict[str, Any]:
    seq[0] += 1
    return {"type": type_, "event_id": f"rp{seq[0]:06d}", "contact_id": cid, "ts": ts, **fields}


def todays_calls() -> list[dict[str, Any]]:
    """Three billing calls in today's first two half hours (UTC): one answered in 10 s by
    1001, one answered after 60 s by 1001, one abandoned after 30 s; 1001's states."""
    day = time.time() // 86_400 * 86_400
    seq = [0]
    out: list[dict[str, Any]] = []
    calls = (("r1", day + 60, 10, 120), ("r2", day + 300, 60, 90), ("r3", day + 1900, 30, None))
    for cid, t, wait, talk in calls:
        out += [_ev(seq, "ContactArrived", cid, t, channel="voice", direction="inbound", ani="+441632960001"),
                _ev(seq, "ContactQueued", cid, t, queue="billing", priority=0)]  # fmt: skip
        if talk is None:
            out += [_ev(seq, "ContactAbandoned", cid, t + wait, waited_s=float(wait), where="queue"),
                    _ev(seq, "ContactEnded", cid, t + wait, reason="hangup", ended_by="caller")]  # fmt: skip
        else:
            end = t + wait + talk
            out += [_ev(seq, "ContactConnected", cid, t + wait, agent_id="1001"),
                    _ev(seq, "ContactEnded", cid, end, reason="hangup", ended_by="caller")]  # fmt: skip
    out += [_ev(seq, "AgentStateChanged", "", day + 30, agent_id="1001", old="offline", new="available"),
            _ev(seq, "AgentStateChanged", "", day + 70, agent_id="1001", old="available", new="busy"),
            _ev(seq, "AgentStateChanged", "", day + 190, agent_id="1001", old="busy", new="not_ready",
                reason="lunch")]  # fmt: skip
    return out


async def sign_in(page: Any) -> None:
    await page.fill("#login-username", "supervisor")
    await page.fill("#login-password", "demo-supervisor")
    await page.click("#login-form button[type=submit]")


async def test_reports_page_tables_charts_csv_and_what_if(rig: Any, new_page: Any, tmp_path: Path) -> None:
    if not VENDOR["uplot"].is_dir():
        unavailable("uPlot in node_modules", "npm ci --omit=dev (the bootstrap runs it)")
    await rig.center.crm.apply_events(todays_calls())
    page = await new_page()
    errors = PageErrors(page)
    await page.goto(f"{rig.http}/reports")
    await sign_in(page)

    rows = page.locator('#queue-rows tr[data-queue="billing"]')
    await expect(rows).to_have_count(2, timeout=T)  # two half hours
    await expect(page.locator("#queue-total td").nth(1)).to_have_text("3")  # offered
    await expect(page.locator("#sl-formula")).to_contain_text("answered within threshold")
    await expect(page.locator('#agent-rows tr[data-agent="1001"] td').nth(2)).to_have_text("2")

    state = page.locator('#state-rows tr[data-agent="1001"] td')
    await expect(state.nth(2)).to_have_text("0:40")  # available 30 → 70
    await expect(state.nth(4)).to_have_text("2:00")  # busy 70 → 190
    await expect(state.nth(7)).to_have_text("75.0%")  # occupancy 120 / 160
    await expect(page.locator("#reason-rows td").nth(1)).to_have_text("lunch")

    volume = page.locator("#chart-volume")
    await expect(volume).to_have_attribute("data-drawn", "yes", timeout=T)
    assert await volume.get_attribute("data-series") == "3"  # offered, answered, abandoned
    assert await volume.get_attribute("data-points") == "2"
    assert await volume.locator("canvas").count() == 1
    sl = page.locator("#chart-sl")
    await expect(sl).to_have_attribute("data-drawn", "yes", timeout=T)
    assert await sl.get_attribute("data-series") == "2"  # service level and its target
    # What the canvas holds: uPlot's own data arrays, read back from the chart object.
    drawn = await volume.evaluate("box => box.chart.data.map((s) => Array.from(s))")
    assert drawn[1:] == [[2, 1], [2, 0], [0, 1]]  # offered, answered, abandoned per half hour

    async with page.expect_download() as info:
        await page.click("#csv-queues")
    download = await info.value
    saved = tmp_path / "queues.csv"
    await download.save_as(saved)
    token = await page.evaluate("JSON.parse(sessionStorage.getItem('callcenter.session')).token")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    query = {"from": day, "to": day, "interval": 1800}
    async with httpx.AsyncClient(base_url=rig.http, headers={"Authorization": f"Bearer {token}"}) as client:
        api = (await client.get("/api/reports/queues", params=query)).json()
    table = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(table) == len(api["rows"]) == 2
    for line, row in zip(table, api["rows"], strict=True):
        assert line == {k: "" if v is None else str(v) for k, v in row.items()}
    assert download.suggested_filename.startswith("queues-") and download.suggested_filename.endswith(".csv")

    async with page.expect_download() as info:
        await page.click("#csv-states")
    states_csv = await (await info.value).path()
    lines = list(csv.DictReader(io.StringIO(Path(states_csv).read_text())))
    assert [(r["agent_id"], float(r["busy_s"])) for r in lines] == [("1001", 120.0)]

    await page.fill("#w-agents", "14")
    await page.click("#btn-whatif")
    await expect(page.locator("#w-other")).to_have_text("88.8%", timeout=T)  # Erlang C, 14 agents
    await expect(page.locator("#chart-whatif")).to_have_attribute("data-drawn", "yes", timeout=T)

    await page.select_option("#w-mode", "replay")
    await page.fill("#w-agents", "")
    await page.click("#btn-whatif")
    await expect(page.locator("#w-other-label")).to_have_text("Recorded", timeout=T)
    await expect(page.locator("#w-other")).to_have_text("33.3%", timeout=T)  # 1 within / (2 + 1)
    assert errors.items == []


async def test_live_board_draws_its_history(rig: Any, new_page: Any) -> None:
    if not VENDOR["uplot"].is_dir():
        unavailable("uPlot in node_modules", "npm ci --omit=dev")
    rig.center.reports.sample()  # a second sample beside the one taken at start
    page = await new_page()
    errors = PageErrors(page)
    await page.goto(f"{rig.http}/supervisor")
    await sign_in(page)
    waiting = page.locator("#chart-waiting")
    await expect(waiting).to_have_attribute("data-drawn", "yes", timeout=T)
    queues = len(rig.center.router.queues)
    assert await waiting.get_attribute("data-series") == str(queues)
    assert int(await waiting.get_attribute("data-points") or 0) >= 2
    await expect(page.locator("#chart-live-sl")).to_have_attribute("data-drawn", "yes")
    assert errors.items == []
