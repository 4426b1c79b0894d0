"""A supervisor monitors a call with the browser phone of the supervisor page (issue 16: "the
supervisor uses their SIP phone or the browser phone").

Real peers: our SIP UA as the customer (500 Hz), baresip as agent 1003 (1100 Hz), and headless
chromium on the supervisor page whose fake microphone is the supervisor's 1700 Hz tone. The
page's phone registers the supervisor's SIP user (agents.yaml supervisors: sip) through the
gateway; Listen on the Calls in progress card makes the server call it, the page answers by
itself (the monitor INVITE asks for auto-answer), chromium's inbound RTP carries audio, the
customer hears only the agent; Barge brings the browser's 1700 Hz to the customer (so its
absence in listen is the mix, not a dead microphone); Stop ends the session and the line
stays registered. A supervisor without a SIP account gets no line (4401)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
import yaml

from callcenter import events as ev
from callcenter.center import Center
from callcenter.config import load_config
from callcenter.web.pages import mount_pages
from callcenter.web.tokens import ws_subprotocols
from tests.monitoring.tones import AGENT_HZ, CUSTOMER_HZ, SUPERVISOR_HZ, Ears, band_shares, heard, tone
from tests.recording.test_recorded_call import CARD, SUP_USER, phone_with_tone, recorded_config
from tests.support import eventually
from tests.support.peers import watch
from tests.support.rig import Rig
from tests.web.browser_rig import PageErrors, playwright_api, supervisor_signed_in
from tests.webrtc.conftest import chromium_with_mic, loopback_ice

expect = playwright_api().expect
T = 30_000


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    d, flows = recorded_config(tmp_path, 1)
    server = yaml.safe_load((d / "server.yaml").read_text())
    loopback_ice(server)
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    center = Center(load_config(d), flows_dir=flows)
    await center.start()
    mount_pages(center.app)
    r = Rig(tmp_path, center)
    yield r
    await r.close()
    await center.stop()


@pytest.fixture
async def supervisor_browser(tmp_path: Path) -> AsyncIterator[Any]:
    async with chromium_with_mic(tmp_path, freq=SUPERVISOR_HZ) as page:
        yield page


def supervisor_share(pcm: bytes) -> float:
    """The supervisor's tone's share of what the customer heard. Chromium's audio processing
    (noise suppression, gain control: the page asks for plain ``audio: true``) brings the fake
    microphone's steady tone down by about 20 dB, so a barge is about 1 % of the customer's
    audio next to the agent's tone, and nothing (spectral leakage, < 1e-5) without one."""
    return band_shares(pcm, (SUPERVISOR_HZ,))[SUPERVISOR_HZ]


async def inbound(page: Any) -> dict[str, Any]:
    return await page.evaluate("window.DeskPhone.inboundAudio()")


async def test_supervisor_listens_and_barges_with_the_browser_phone(
    rig: Rig, supervisor_browser: Any
) -> None:
    page = supervisor_browser
    log = watch(rig)
    errors = PageErrors(page)
    await phone_with_tone(rig, "1003", "demo-1003", AGENT_HZ)
    await rig.desktop("1003")  # available

    # the supervisor page's phone: Browser phone registers the supervisor's SIP user
    await supervisor_signed_in(page, rig.http)
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "off", timeout=T)
    await page.check("#phone-mode-browser")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
    (binding,) = await rig.center.registrar.contacts(SUP_USER)
    assert binding.user_agent == "callcenter browser phone"
    assert await page.locator("#phone-hold, #phone-transfer, #phone-keypad").count() == 0  # no call controls

    caller = await rig.caller()
    call = await caller.call("5050", rig.sip)
    ears = Ears()
    call.media.on_audio = ears
    talking = asyncio.ensure_future(call.media.play(tone(CUSTOMER_HZ, 1.0), loop=True))
    try:
        await log.wait(ev.RecordingPaused, paused=True, by="ivr")  # the pay flow's card prompt
        call.media.send_dtmf(CARD + "#")
        cid = (await log.wait(ev.ContactConnected, agent_id="1003", timeout=40)).contact_id

        # Listen from the card: the server calls the browser phone, which answers by itself
        row = page.locator(f'#live-call-rows tr[data-contact="{cid}"]')
        await expect(row).to_be_visible(timeout=T)
        await row.locator(".c-listen").click()
        await expect(row).to_have_attribute("data-monitor", "active", timeout=T)
        await expect(page.locator("#phone-state")).to_have_attribute("data-state", "in_call", timeout=T)
        first = await inbound(page)

        async def browser_hears() -> bool:
            now = await inbound(page)
            return now["packetsReceived"] > first["packetsReceived"] + 50 and \
                now["totalAudioEnergy"] > first["totalAudioEnergy"] + 0.1

        await eventually(browser_hears, 20, what="the supervisor's browser receives the call's audio")
        listened = await ears.next()  # listen: the customer does not hear the supervisor
        assert heard(listened) == {AGENT_HZ} and supervisor_share(listened) < 1e-4

        # Barge: the browser's microphone (1700 Hz) now reaches the customer
        await row.locator(".c-barge").click()
        await expect(row).to_have_attribute("data-mode", "barge", timeout=T)
        await ears.expect(lambda pcm: supervisor_share(pcm) > 1e-3, what="the customer hears the barge")

        await row.locator(".c-stop").click()
        monitored = await log.wait(ev.MonitorSession, contact_id=cid)
        assert [m["mode"] for m in monitored.modes] == ["listen", "barge"] and monitored.result == "ended"
        await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
        after = await ears.next()
        assert heard(after) == {AGENT_HZ} and supervisor_share(after) < 1e-4
        assert call.is_active  # monitoring ended, the call goes on
    finally:
        talking.cancel()
    assert errors.items == []


async def test_a_supervisor_without_a_sip_account_gets_no_browser_line(phone_rig: Any) -> None:
    """The demo supervisor has no SIP account, so monitoring has nothing to ring: the phone
    socket closes with 4401, as for no token (the test above registers one that has)."""
    url = phone_rig.http.replace("http:", "ws:") + "/api/phone/ws"
    sup = await phone_rig.desktop("supervisor")
    async with websockets.connect(url, subprotocols=ws_subprotocols(sup.token)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4401
