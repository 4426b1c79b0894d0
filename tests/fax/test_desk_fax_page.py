"""The desk's fax panel (desk_fax.js) in headless chromium: a fax to DNIS 7000 appears in
Carol's work list; accepting it shows page 1 (fetched with her token), the T.30 facts and
Close, which puts the fax in wrap-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.fax.documents import make_document
from tests.fax.sender import FaxSender
from tests.support.peers import watch
from tests.support.rig import short_ring
from tests.web.browser_rig import CHROMIUM_ARGS, VIEWPORT, PageErrors, chromium_path, playwright_api

T = 30_000  # ms


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    api = playwright_api()
    async with api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            ctx = await browser.new_context(viewport=VIEWPORT)
            yield await ctx.new_page()
        finally:
            await browser.close()


async def test_the_fax_panel_shows_page_one_and_closes_the_fax(
    rig_factory: Any, page: Any, tmp_path: Path
) -> None:
    expect = playwright_api().expect
    rig = await rig_factory(short_ring)
    mount_pages(rig.center.app)
    log = watch(rig)
    errors = PageErrors(page)
    await page.goto(f"{rig.http}/desk")
    await page.fill("#login-username", "1003")
    await page.fill("#login-password", "demo-1003")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    await page.click("#btn-available")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")

    doc = make_document(tmp_path / "order.tif", pages=2)
    assert (await FaxSender(str(doc), ani="441632960005").send(rig.sip, "7000")).ok
    cid = (await log.wait(ev.ContactArrived, channel="fax")).contact_id
    item = page.locator(f'.work-item[data-contact-id="{cid}"]')
    await expect(item).to_have_attribute("data-phase", "offered", timeout=T)
    await item.locator(".work-accept").click()
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
    panel = page.locator("#channel-panel")
    await expect(panel).to_have_attribute("data-contact-id", cid, timeout=T)
    await expect(panel.locator(".fax-facts")).to_contain_text("204x196 dpi", timeout=T)
    await expect(panel.locator(".fax-facts")).to_contain_text("14400 bit/s")
    await page.wait_for_function("() => { const i = document.querySelector('img.fax-page');"
                                 " return i && i.complete && i.naturalWidth === 864; }", timeout=T)
    await panel.get_by_role("button", name="Close fax").click()
    await log.wait(ev.WrapUpStarted, contact_id=cid, agent_id="1003")
    await expect(item).to_have_attribute("data-phase", "wrap_up", timeout=T)
    assert errors.items == []
