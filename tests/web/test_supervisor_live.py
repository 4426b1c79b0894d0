"""The supervisor board live from the stream alone, in a real browser (issue 19, items 3, 4
and 11): the REST snapshot is refused for the whole test, so queue figures can only come
from the pushed ``queues`` messages; the longest wait counts up on the page between pushes;
a busy agent's "In state" counts from when they became busy, after a reload too; an agent
without a registered phone shows "Available — no phone" until the phone registers."""

from __future__ import annotations

import time
from typing import Any

from browser_rig import PageErrors, artifacts, playwright_api, supervisor_signed_in, watch

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.rig import short_ring

pw = playwright_api()
expect = pw.expect

ALAN = "+441632960002"  # demo customer, standard tier
T = 30_000  # ms


def seconds(text: str) -> int:
    """ "1:05" → 65, "1:02:05" → 3725 (the page's duration format)."""
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


async def test_board_is_live_from_the_stream(rig_factory: Any, new_page: Any) -> None:
    rig = await rig_factory(short_ring)
    mount_pages(rig.center.app)
    log = watch(rig)
    page = await new_page()
    errors = PageErrors(page)
    polled: list[str] = []

    async def refuse(route: Any) -> None:
        polled.append(route.request.url)
        await route.abort()

    await page.route("**/api/supervisor/snapshot", refuse)
    await supervisor_signed_in(page, rig.http)

    # No phone: Available, but not for calls, and the board says so until the phone registers.
    await rig.desktop("1002")
    bob = page.locator('#agent-rows tr[data-agent="1002"]')
    await expect(bob.locator(".c-state")).to_have_text("Available — no phone", timeout=T)
    await rig.phone("1002")
    await expect(bob.locator(".c-state")).to_have_text("Available", timeout=T)

    # Carol goes available; a caller listens to the greeting and the menu, then picks sales.
    await rig.phone("1003")
    await rig.desktop("1003")
    available = await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=ALAN)
    await log.wait(ev.PromptPlayed, step="departments")
    call.media.send_dtmf("3")
    busy = await log.wait(ev.AgentStateChanged, agent_id="1003", new="busy")
    assert busy.ts - available.ts > 2  # the IVR took that long: the two counts differ clearly

    snap = next(a for a in rig.center.supervisor_snapshot()["agents"] if a["agent_id"] == "1003")
    assert abs(snap["in_state_s"] - (time.time() - busy.ts)) < 1.0  # since busy, not since available

    await page.reload()  # the board is rebuilt from the stream's snapshot
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    carol = page.locator('#agent-rows tr[data-agent="1003"]')
    await expect(carol.locator(".c-state")).to_have_text("Busy", timeout=T)
    shown = seconds(await carol.locator(".c-time").inner_text())
    assert shown <= time.time() - busy.ts + 1.5
    assert shown < time.time() - available.ts - 1

    # A second caller waits for sales: the queue row comes from the stream, and its longest
    # wait counts up on the page between pushes.
    waiting = await rig.caller()
    second = await waiting.call("5000", rig.sip, ani=ALAN)
    second.media.send_dtmf("3")
    sales = page.locator('#queue-rows tr[data-queue="sales"]')
    await expect(sales.locator(".c-waiting")).to_have_text("1", timeout=T)
    longest = sales.locator(".c-longest")
    before = seconds(await longest.inner_text())
    await expect(longest).not_to_have_text(await longest.inner_text(), timeout=T)
    assert seconds(await longest.inner_text()) > before

    await second.hangup()
    await call.hangup()
    await expect(sales.locator(".c-waiting")).to_have_text("0", timeout=T)
    await expect(sales.locator(".c-longest")).to_have_text("—")
    assert polled == []  # nothing was polled
    await page.screenshot(path=str(artifacts("supervisor-live") / "board.png"), full_page=True)
    assert errors.items == []
