"""The supervisor board's email card in headless chromium: mail sent with smtplib to the
running server's SMTP listener shows as waiting in its queue with the oldest wait counting
on; an overdue first response is highlighted; nothing wider than a laptop's or a phone's
screen."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_email_desk import short_queues
from test_email_intake import mail, send

from callcenter.center import Center
from callcenter.config import load_config
from tests.support.peers import ROOT, make_config_dir
from tests.support.rig import Rig
from tests.web.browser_rig import (
    CHROMIUM_ARGS,
    PageErrors,
    chromium_path,
    playwright_api,
    supervisor_signed_in,
)

T = 30_000  # ms: the bound of every wait on a page
RED = "rgb(194, 55, 43)"  # common.css --bad


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The demo server; support's first response is due within the hour, sales' after 1 s
    (so a sales email is overdue almost at once)."""

    def edit(server: dict[str, Any]) -> None:
        targets = {"support": 1800, "sales": 1}
        for mb in server["email"]["mailboxes"]:
            mb["first_response_s"] = targets[mb["queue"]]

    d = make_config_dir(tmp_path, short_queues, server_edit=edit)
    center = Center(load_config(d), flows_dir=ROOT / "ivr_flows")
    await center.start()
    r = Rig(tmp_path, center)
    try:
        yield r
    finally:
        await r.close()
        await center.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api().async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)], ids=["laptop", "phone"])
async def test_email_card_waiting_oldest_and_overdue(rig: Rig, browser: Any, width: int, height: int) -> None:
    expect = playwright_api().expect
    assert rig.center.email is not None and rig.center.email.smtp is not None
    port = rig.center.email.smtp.port
    ctx = await browser.new_context(viewport={"width": width, "height": height})
    page = await ctx.new_page()
    errors = PageErrors(page)
    try:
        await supervisor_signed_in(page, rig.http)
        support = page.locator('#email-queues tr[data-queue="support"]')
        sales = page.locator('#email-queues tr[data-queue="sales"]')
        await expect(support.locator(".waiting")).to_have_text("0", timeout=T)  # listed while quiet
        await expect(support.locator(".oldest")).to_have_text("—")

        await send(port, mail("ada@example.com", "Printer", "on fire", msgid="sup1@example.com"))
        await send(
            port,
            mail("alan@example.com", "Invoice", "wrong total", msgid="sup2@example.com"),
            mail_from="alan@example.com",
        )
        await send(
            port,
            mail(
                "grace@example.com", "Prices", "list", msgid="sal1@example.com", to="sales@callcenter.local"
            ),
            rcpt=["sales@callcenter.local"],
            mail_from="grace@example.com",
        )

        await expect(support.locator(".waiting")).to_have_text("2", timeout=T)
        await expect(support.locator(".due")).to_have_text("2", timeout=T)
        await expect(support.locator(".overdue")).to_have_attribute("data-breach", "no")
        oldest = support.locator(".oldest")
        await expect(oldest).to_have_text(re.compile(r"^\d+:\d\d$"), timeout=T)
        first = await oldest.text_content()
        await expect(oldest).not_to_have_text(first or "", timeout=T)  # counts on between fetches

        await expect(sales.locator(".waiting")).to_have_text("1", timeout=T)
        overdue = sales.locator(".overdue")
        await expect(overdue).to_have_text("1", timeout=T)
        await expect(overdue).to_have_attribute("data-breach", "yes")
        await expect(overdue).to_have_css("color", RED)
        await expect(support.locator(".overdue")).not_to_have_css("color", RED)

        # the server's figures, which the card shows
        figures = {q["queue"]: q for q in rig.center.email.channel.figures()}
        assert (figures["support"]["waiting"], figures["sales"]["overdue"]) == (2, 1)
        await page.locator("#email-channel").scroll_into_view_if_needed()
        shots = ROOT / "test-artifacts" / f"supervisor-email-{width}x{height}"
        shots.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(shots / "email-card.png"), full_page=True)
        # a phone scrolls down, not sideways
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        assert errors.items == []
    finally:
        await ctx.close()
