"""The desk's keypad sends RFC 4733 digits to the customer's leg (issue 19).

Carol answers a call on her baresip; she presses 4, 2, * and # on the desk's keypad; the
customer's phone (our test UA, the far end an IVR or a bank's system would be) receives
exactly those digits as RFC 4733 events. The endpoint refuses what a keypad cannot send.
"""

from __future__ import annotations

import asyncio
from typing import Any

from browser_rig import playwright_api, watch
from test_desk_page import GRACE, T, carol_available

from callcenter import events as ev

pw = playwright_api()
expect = pw.expect


async def test_keypad_digits_reach_the_far_end(rig: Any, new_page: Any) -> None:
    log = watch(rig)
    page, errors = await carol_available(rig, new_page, log)
    keys = page.locator("#keypad button")
    await expect(keys.first).to_be_disabled(timeout=T)  # no call yet

    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # sales
    connected = await log.wait(ev.ContactConnected, agent_id="1003")
    await expect(page.locator("#controls")).to_be_visible(timeout=T)
    received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    call.media.on_dtmf = lambda digit, how: received.put_nowait((digit, how))

    for digit in "42*#":
        await page.click(f"#keypad button[data-digit='{digit}']")
    await expect(page.locator("#keypad-sent")).to_have_text("42*#", timeout=T)
    got = [await asyncio.wait_for(received.get(), 10) for _ in range(4)]
    assert got == [(d, "rfc4733") for d in "42*#"]

    desk = await rig.desktop("1003", ready=False)
    for bad in ("", "12a", "1" * 33):
        r = await desk.post("/api/agent/dtmf", {"digits": bad})
        assert r.status_code == 422, (bad, r.text)
    assert received.empty()

    await call.hangup()
    await log.wait(ev.WrapUpStarted, contact_id=connected.contact_id)
    await expect(keys.first).to_be_disabled(timeout=T)
    r = await desk.post("/api/agent/dtmf", {"digits": "1"})
    assert r.status_code == 409, r.text  # no connected call: nothing to send it on
    assert errors.items == []
