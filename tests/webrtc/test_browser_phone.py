"""The desk's browser phone end to end (issue 15): headless chromium with a fake microphone
(a 440 Hz tone) signs in to the desk, switches to the browser phone and registers; a caller
(our SIP UA with real RTP) goes through the IVR into the sales queue; the agent answers in
the browser; audio flows both ways (the caller hears the browser's 440 Hz tone, the
browser's inbound RTP carries the caller's 1 kHz tone with energy); hold stops and resume
restarts the agent's audio; hang-up and transfer from the phone panel end the agent leg."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callcenter import events as ev
from tests.support.peers import tone_wav, watch
from tests.support.polling import eventually
from tests.web.browser_rig import PageErrors, playwright_api

GRACE = "+441632960001"
MIC_HZ = 440.0  # conftest.py: the fake microphone's tone
T = 30_000
expect = playwright_api().expect


async def sign_in_browser_phone(page: Any, rig: Any, log: Any) -> None:
    await page.goto(f"{rig.http}/desk")
    await page.fill("#login-username", "1003")
    await page.fill("#login-password", "demo-1003")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "off", timeout=T)
    await page.check("#phone-mode-browser")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
    await log.wait(ev.AgentDeviceChanged, agent_id="1003", softphone=True)
    await page.click("#btn-available")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")


def dominant_hz(pcm: bytes) -> float:
    a = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(a * np.hanning(a.size)))
    return float(np.argmax(spectrum) * 8000 / a.size)


class Ear:
    """What the caller hears after the connect: the 20 ms PCM frames its leg received."""

    def __init__(self, media: Any) -> None:
        self.frames: list[bytes] = []
        media.on_audio = self.frames.append

    def loud(self, since: int = 0) -> bytes:
        frames = self.frames[since:]
        level = [np.sqrt(np.mean(np.frombuffer(f, "<i2").astype(np.float64) ** 2)) for f in frames]
        return b"".join(f for f, lv in zip(frames, level, strict=True) if lv > 300)


async def inbound(page: Any) -> dict[str, Any]:
    return await page.evaluate("window.DeskPhone.inboundAudio()")


async def ring_and_answer(page: Any, rig: Any, log: Any, tmp_path: Path) -> tuple[Any, str]:
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # the IVR's sales option
    offered = await log.wait(ev.AgentOffered, agent_id="1003")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=T)
    await expect(page.locator("#phone-caller")).to_contain_text(GRACE)
    await expect(page.locator("#pop-ani")).to_have_text(GRACE, timeout=T)  # the desk's screen-pop
    await page.click("#phone-answer")
    await log.wait(ev.ContactConnected, contact_id=offered.contact_id, agent_id="1003")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "in_call", timeout=T)
    return call, offered.contact_id


@pytest.mark.parametrize("phone_rig", [1, 2, "aiortc"], indirect=True, ids=["media1", "media2", "aiortc"])
async def test_browser_phone_call_audio_hold_hangup(
    phone_rig: Any, phone_browser: Any, tmp_path: Path
) -> None:
    rig, page = phone_rig, phone_browser
    log = watch(rig)
    errors = PageErrors(page)
    await sign_in_browser_phone(page, rig, log)
    bindings = await rig.center.registrar.contacts("1003")
    assert bindings and bindings[0].user_agent == "callcenter browser phone"
    # G.711: once DTLS is up the line's SRTP is the media engine's (or a worker's), not aiortc's
    line = rig.center.phones.sessions["1003"].line
    lean = rig.center.cfg.server.webrtc.lean_media
    assert (line.lean is not None) == lean

    async def consent_answered() -> bool:  # chromium's STUN consent checks, answered by the engine
        return (await line.lean.fetch_stats()).get("stun_answered", 0) >= 1

    if lean:
        await eventually(consent_answered, 20, what="the engine answers chromium's consent checks")

    call, cid = await ring_and_answer(page, rig, log, tmp_path)
    ear = Ear(call.media)
    play = call.media.play(str(tone_wav(tmp_path / "caller.wav", 30.0, 1000.0)), loop=True)
    caller_tone = asyncio.ensure_future(play)  # the caller keeps talking (1 kHz)
    try:
        # browser → caller: the fake microphone's 440 Hz reaches the caller's ear
        await eventually(lambda: len(ear.loud()) >= 320 * 25, 20, what="the caller hears the browser")
        assert abs(dominant_hz(ear.loud()[-320 * 25:]) - MIC_HZ) < 20
        # caller → browser: inbound RTP in chromium with audio energy
        first = await inbound(page)

        async def browser_hears() -> bool:
            now = await inbound(page)
            return now["packetsReceived"] > first["packetsReceived"] + 50 and \
                now["totalAudioEnergy"] > first["totalAudioEnergy"] + 0.1

        await eventually(browser_hears, 20, what="chromium receives the caller's audio")

        # hold from the phone panel: the agent leg stops carrying the caller's audio
        await page.click("#phone-hold")
        await log.wait(ev.ContactHeld, contact_id=cid, on_hold=True)
        await expect(page.locator("#phone-state")).to_have_text("On hold", timeout=T)
        async def leg_rx() -> int:  # the gateway's leg: in the engine (or a worker) or aiortc's
            stats = await rig.center.phones.sessions["1003"].call.media.fetch_stats()
            return int(stats["rx_packets"])

        held_at = await leg_rx()
        await page.click("#phone-hold")
        await log.wait(ev.ContactHeld, contact_id=cid, on_hold=False)

        async def resumed() -> bool:
            return await leg_rx() > held_at + 50

        await eventually(resumed, 20, what="audio again after resume")

        # hang up in the browser: BYE to the caller, the contact ends by the agent
        await page.click("#phone-hangup")
        ended = await log.wait(ev.ContactEnded, contact_id=cid)
        assert ended.ended_by == "agent"
        assert await call.wait_ended(10)
        await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
        if lean:
            assert (await line.lean.fetch_stats())["rx_srtp_failed"] == 0
    finally:
        caller_tone.cancel()
    assert errors.items == []


async def test_browser_phone_transfer_to_a_queue(phone_rig: Any, phone_browser: Any, tmp_path: Path) -> None:
    """Transfer from the phone panel: the caller moves to the support queue (nobody staffs it,
    so the caller waits there), the browser's leg ends, the agent gets a wrap-up and the
    line stays registered for the next call."""
    rig, page = phone_rig, phone_browser
    log = watch(rig)
    await sign_in_browser_phone(page, rig, log)
    call, cid = await ring_and_answer(page, rig, log, tmp_path)
    await page.fill("#phone-transfer-target", "queue:support")
    await page.click("#phone-transfer button[type=submit]")
    moved = await log.wait(ev.ContactTransferred, contact_id=cid)
    assert moved.from_agent == "1003" and moved.target == "queue:support"
    await log.wait(ev.WrapUpStarted, agent_id="1003")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
    assert call.is_active  # the caller stayed on the line, waiting in the new queue
    assert "1003" in rig.center.phones.sessions and rig.center.phones.sessions["1003"].call is None


async def test_decline_and_unanswered_ring_go_back_to_routing(
    short_ring_rig: Any, phone_browser: Any
) -> None:
    """Decline in the browser refuses the offer (routing does not offer that contact to her
    again, she stays available); the next caller's ring nobody answers ends as RONA, as with
    a SIP phone (the short ring of tests/support/rig.py), and the panel stops ringing."""
    rig, page = short_ring_rig, phone_browser
    log = watch(rig)
    await sign_in_browser_phone(page, rig, log)
    caller = await rig.caller()
    first = await caller.call("5000", rig.sip, ani=GRACE)
    first.media.send_dtmf("3")
    offered = await log.wait(ev.AgentOffered, agent_id="1003")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=T)
    await page.click("#phone-decline")
    declined = await log.wait(ev.OfferRejected, agent_id="1003")
    assert declined.contact_id == offered.contact_id
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
    # A second caller is offered to her; nobody answers this time: RONA.
    second = await caller.call("5000", rig.sip, ani="+441632960999")
    second.media.send_dtmf("3")
    again = await eventually(lambda: [o for o in log.of(ev.AgentOffered, agent_id="1003")
                                      if o.contact_id != offered.contact_id], 30, what="the second offer")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "ringing", timeout=T)
    rona = await log.wait(ev.OfferRejected, agent_id="1003", contact_id=again[0].contact_id)
    assert rona.reason == "rona"
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
    assert first.is_active and second.is_active  # both still waiting in the queue


async def test_phone_socket_needs_an_agent_token(phone_rig: Any) -> None:
    import websockets

    from callcenter.web.tokens import ws_subprotocols

    url = phone_rig.http.replace("http:", "ws:") + "/api/phone/ws"
    for protocols in (ws_subprotocols("not-a-token"), None):
        async with websockets.connect(url, subprotocols=protocols) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4401
    desk = await phone_rig.desktop("1003", ready=False)
    async with websockets.connect(url, subprotocols=ws_subprotocols(desk.token)) as ws:
        await ws.send("{not json")
        assert "not a JSON object" in await ws.recv()
        await ws.send('{"type": "offer", "sdp": "v=0 garbage"}')
        assert "offer refused" in await ws.recv()
    assert not await phone_rig.center.registrar.is_registered("1003")


async def test_phone_choice_is_per_login(phone_rig: Any, phone_browser: Any) -> None:
    """Switching to "SIP phone" takes the browser's line off the registrar (the agent has no
    voice device until a SIP phone registers); after a log-out the next login starts on
    "SIP phone" again, whatever the last one chose."""
    rig, page = phone_rig, phone_browser
    log = watch(rig)
    await sign_in_browser_phone(page, rig, log)
    assert await rig.center.registrar.is_registered("1003")
    await page.check("#phone-mode-sip")
    await log.wait(ev.AgentDeviceChanged, agent_id="1003", softphone=False)
    assert not await rig.center.registrar.is_registered("1003")
    await expect(page.locator("#phone-browser")).to_be_hidden()
    await page.check("#phone-mode-browser")
    await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
    await page.click("#btn-logout")
    await eventually(lambda: "1003" not in rig.center.phones.sessions, 20, what="the line closed at log-out")
    await page.fill("#login-username", "1003")
    await page.fill("#login-password", "demo-1003")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    await expect(page.locator("#phone-mode-sip")).to_be_checked()
    assert not await rig.center.registrar.is_registered("1003")
