"""Desk presence (issue 19, items 5 and 4), in a real browser: the desk says when no phone
is registered; a reload reconnects within the grace period and the agent stays Available;
closing the page leaves the agent Not ready (``disconnected``) once ``desk.presence_grace_s``
has passed without a desk."""

from __future__ import annotations

from typing import Any

from browser_rig import playwright_api, watch
from test_desk_page import T, carol_available

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.polling import eventually

pw = playwright_api()
expect = pw.expect

GRACE_S = 2


async def test_a_closed_desk_makes_the_agent_not_ready_and_a_reload_does_not(
    rig_factory: Any, new_page: Any
) -> None:
    rig = await rig_factory(server_patch={"desk": {"presence_grace_s": GRACE_S}})
    mount_pages(rig.center.app)
    log = watch(rig)
    counts: list[int] = []  # the hub's count of 1003's open desks, change by change
    hub, presence = rig.center.hub, rig.center.presence
    hub.on_desks = lambda agent, n: (counts.append(n) if agent == "1003" else None,
                                     presence.desks_changed(agent, n))  # fmt: skip
    page, errors = await carol_available(rig, new_page, log, phone=False)
    warning = page.locator("#phone-warning")  # Available, but no call can reach her: the desk says so
    await expect(warning).to_be_visible(timeout=T)
    await expect(warning).to_contain_text("Your phone is not registered")
    await rig.phone("1003")
    await expect(warning).to_be_hidden(timeout=T)

    await page.reload()  # the desk goes away and comes back within the grace period
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    await eventually(lambda: counts[-2:] == [0, 1], 10, what="desk closed, then back")
    assert "1003" not in presence._timers  # the pending change was called off
    assert str(rig.center.router.agent_state("1003")) == "available"
    await expect(page.locator("#state")).to_have_attribute("data-state", "available")

    await page.close()  # the browser goes away for good
    gone = await log.wait(ev.AgentStateChanged, agent_id="1003", reason="disconnected", timeout=GRACE_S + 30)
    assert (gone.old, gone.new) == ("available", "not_ready")
    assert counts[-1] == 0
    assert errors.items == []
