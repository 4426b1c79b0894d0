"""Call recording and supervisor monitoring from the pages, in Chromium (issue 16).

Real peers: our SIP UA as the customer (500 Hz), baresip as agent 1003 (1100 Hz) and baresip
registered as the supervisor's own SIP phone (1700 Hz). From the supervisor page: Listen on a
live call, switch to Whisper (the agent's desk says so, the customer still hears only the
agent), Stop; the monitor session is in the record; the call's recording plays in the record
view through a signed link fetched with a Range request answered 206, and the agent's own
requests for it (and for the list of calls to monitor) are refused. From the desk: an
on-demand recording started by the agent, the periodic beep heard by the customer only once
recording runs, and a PCI pause/resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import yaml
from browser_rig import PageErrors, playwright_api, supervisor_signed_in, watch
from test_desk_page import sign_in

from callcenter import events as ev
from callcenter.center import Center
from callcenter.config import load_config
from callcenter.recording.service import BEEP_HZ
from callcenter.web.pages import mount_pages
from tests.monitoring.tones import AGENT_HZ, CUSTOMER_HZ, SUPERVISOR_HZ, Ears, band_shares, heard, tone
from tests.recording.test_recorded_call import (
    CARD,
    SUP_PASS,
    SUP_USER,
    phone_with_tone,
    recorded_config,
)
from tests.support import eventually
from tests.support.rig import Rig

expect = playwright_api().expect
T = 30_000  # ms


async def started_rig(tmp: Path, recording: dict[str, Any] | None = None) -> Rig:
    d, flows = recorded_config(tmp, 1)
    if recording is not None:
        (d / "recording.yaml").write_text(yaml.safe_dump(recording))
    center = Center(load_config(d), flows_dir=flows)
    await center.start()
    mount_pages(center.app)
    return Rig(tmp, center)


@pytest.fixture
async def rigs() -> AsyncIterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for r in made:
        await r.close()
        await r.center.stop()


async def connected_call(rig: Rig, log: Any) -> tuple[Any, Ears, str, asyncio.Future[Any]]:
    """A customer through the pay flow (the card keyed) to agent 1003, talking at 500 Hz:
    the call, what it hears, the contact id, and the talking (cancel it to stop)."""
    caller = await rig.caller()
    call = await caller.call("5050", rig.sip)
    ears = Ears()
    call.media.on_audio = ears
    talking = asyncio.ensure_future(call.media.play(tone(CUSTOMER_HZ, 1.0), loop=True))
    await log.wait(ev.RecordingPaused, paused=True, by="ivr")  # the sensitive field's prompt
    call.media.send_dtmf(CARD + "#")
    connected = await log.wait(ev.ContactConnected, agent_id="1003", timeout=40)
    return call, ears, connected.contact_id, talking


async def desk_of_carol(rig: Rig, new_page: Any, log: Any) -> Any:
    page = await new_page()
    await sign_in(page, rig.http, "1003", "demo-1003")
    await page.click("#btn-available")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="available")
    return page


async def test_supervisor_monitors_and_plays_back_from_the_page(
    rigs: list[Rig], new_page: Any, tmp_path: Path
) -> None:
    rig = await started_rig(tmp_path)
    rigs.append(rig)
    log = watch(rig)
    await phone_with_tone(rig, "1003", "demo-1003", AGENT_HZ)
    await phone_with_tone(rig, SUP_USER, SUP_PASS, SUPERVISOR_HZ)  # the supervisor's own SIP phone
    desk = await desk_of_carol(rig, new_page, log)
    board = await new_page()
    errors = PageErrors(board)
    await supervisor_signed_in(board, rig.http)

    call, ears, cid, talking = await connected_call(rig, log)
    row = board.locator(f'#live-call-rows tr[data-contact="{cid}"]')
    await expect(row).to_be_visible(timeout=T)
    await expect(row.locator("td").nth(2)).to_have_text("1003")

    # Listen: the server calls the supervisor's phone, which answers; the desk shows nothing
    await row.locator(".c-listen").click()
    await expect(row).to_have_attribute("data-monitor", "active", timeout=T)
    await expect(row).to_have_attribute("data-mode", "listen")
    await expect(row.locator(".c-listen")).to_have_attribute("aria-pressed", "true")
    await expect(row.locator(".c-status")).to_have_text("Listening")
    (session,) = rig.center.app.state.monitoring.list()
    assert session["supervisor"] == "supervisor" and session["mode"] == "listen"
    assert heard(await ears.next()) == {AGENT_HZ}
    badge = desk.locator("#monitor-status")
    await expect(desk.locator("#call-audio")).to_be_visible(timeout=T)
    await expect(badge).to_be_hidden()  # listen is not shown (recording.yaml monitor_show_listen)

    # Whisper, switched during the session: the agent's desk says so; the customer does not hear it
    await row.locator(".c-whisper").click()
    await expect(row).to_have_attribute("data-mode", "whisper", timeout=T)
    await expect(badge).to_have_text("Supervisor supervisor is whispering to you", timeout=T)
    await expect(badge).to_have_attribute("data-mode", "whisper")
    assert heard(await ears.next()) == {AGENT_HZ}
    assert rig.center.app.state.monitoring.list()[0]["mode"] == "whisper"

    await row.locator(".c-stop").click()
    monitored = await log.wait(ev.MonitorSession, contact_id=cid)
    assert [m["mode"] for m in monitored.modes] == ["listen", "whisper"]
    assert monitored.supervisor == "supervisor" and monitored.result == "ended"
    await expect(row).to_have_attribute("data-monitor", "", timeout=T)
    await expect(badge).to_be_hidden(timeout=T)
    assert rig.center.app.state.monitoring.list() == []

    talking.cancel()
    await call.hangup()
    added = await log.wait(ev.AttachmentAdded, contact_id=cid, timeout=60)
    att = added.attachment

    # The record view: the monitor session in the timeline, the recording in an <audio>
    sup_api = await rig.desktop("supervisor")
    await eventually(lambda: record_has_recording(sup_api, cid), timeout=20, interval=0.1)
    await board.click("#search-form button[type=submit]")
    def playback(r: Any) -> bool:
        return urlsplit(r.url).path.startswith("/recordings/")

    async with board.expect_response(playback, timeout=T) as fetched:
        await board.click(f'#search-rows tr[data-id="{cid}"]')
    media = await fetched.value
    assert media.status == 206
    assert (await media.request.all_headers()).get("range", "").startswith("bytes=")
    total = int((await media.all_headers())["content-range"].rsplit("/", 1)[1])
    assert total == att["size"]
    await expect(board.locator('#record-timeline li[data-type="MonitorSession"]')).to_have_count(1)
    player = board.locator(f'#record-recordings audio[data-recording="{att["id"]}"]')
    await expect(player).to_have_count(1)
    await eventually(lambda: player.evaluate("a => a.readyState >= 1 && a.duration > 1"), timeout=20,
                     what="the browser read the recording's length")  # fmt: skip
    assert errors.items == []

    # Unauthorised: the agent asking for a link, and a link with a forged signature
    src = await player.get_attribute("src")
    refused = await desk.evaluate(
        """async ([id, src]) => {
             const token = JSON.parse(sessionStorage.getItem("callcenter.session")).token;
             const link = await fetch(`/api/recordings/${id}/link`,
               { method: "POST", headers: { Authorization: `Bearer ${token}` } });
             const forged = await fetch(src.replace("sig=", "sig=0"), { headers: { Range: "bytes=0-99" } });
             const unsigned = await fetch(src.split("?")[0], { headers: { Range: "bytes=0-99" } });
             const auth = { headers: { Authorization: `Bearer ${token}` } };
             const calls = await fetch("/api/monitor/calls", auth);
             return [link.status, forged.status, unsigned.status, calls.status];
           }""",
        [att["id"], src],
    )
    assert refused[0] == 403 and refused[1] == 403 and refused[2] in (403, 422) and refused[3] == 403


async def record_has_recording(desk: Any, cid: str) -> bool:
    r = await desk.get(f"/api/interactions/{cid}")
    rec = r.json().get("record") or {} if r.status_code == 200 else {}
    return any(a.get("kind") == "call_recording" for a in rec.get("attachments", []))


def beeps(frames: list[bytes]) -> int:
    """200 ms windows of what the customer heard in which the beep's tone dominates."""
    n = 0
    for i in range(0, len(frames) - 10, 10):
        if band_shares(b"".join(frames[i : i + 10]), (BEEP_HZ,))[BEEP_HZ] > 0.3:
            n += 1
    return n


async def test_on_demand_recording_from_the_desk_with_beep(
    rigs: list[Rig], new_page: Any, tmp_path: Path
) -> None:
    rig = await started_rig(tmp_path, {"services": {"pay": "on_demand"}, "beep_every_s": 1.0})
    rigs.append(rig)
    log = watch(rig)
    await phone_with_tone(rig, "1003", "demo-1003", AGENT_HZ)
    desk = await desk_of_carol(rig, new_page, log)
    errors = PageErrors(desk)
    call, ears, cid, talking = await connected_call(rig, log)

    status = desk.locator("#recording-status")
    await expect(status).to_have_text("Not recorded", timeout=T)
    await expect(desk.locator("#btn-record")).to_be_visible()
    assert rig.center.app.state.recording.state(cid) == {"recording": False}
    await ears.next(150)  # 3 s of the call unrecorded: no beep
    before = len(ears.frames)
    assert beeps(ears.frames[-150:]) == 0 and heard(b"".join(ears.frames[-50:])) == {AGENT_HZ}

    await desk.click("#btn-record")
    await expect(status).to_have_text("Recording", timeout=T)
    await expect(status).to_have_attribute("data-recording", "yes")
    assert rig.center.app.state.recording.state(cid)["recording"] is True
    await eventually(lambda: beeps(ears.frames[before:]) >= 2, timeout=20, what="two beeps once recording")

    await desk.click("#btn-record-pause")
    await expect(status).to_have_text("Recording paused", timeout=T)
    paused = await log.wait(ev.RecordingPaused, contact_id=cid, paused=True, by="1003")
    assert paused.reason == "pci"
    await ears.next(25)
    await desk.click("#btn-record-pause")
    await expect(status).to_have_text("Recording", timeout=T)
    await log.wait(ev.RecordingPaused, contact_id=cid, paused=False, by="1003")

    talking.cancel()
    await call.hangup()
    added = await log.wait(ev.AttachmentAdded, contact_id=cid, timeout=60)
    assert len(added.attachment["paused"]) == 1 and added.attachment["agents"] == ["1003"]
    assert errors.items == []

    # the API answers for a call that is over, and where there is no recording to control
    carol = await rig.desktop("1003")
    r = await carol.post(f"/api/contacts/{cid}/recording", {"action": "start"})
    assert r.status_code == 404 and "no live contact" in r.text
    # asking for its state just as it ended is not an error for the desk, and tells nothing
    r = await carol.get(f"/api/contacts/{cid}/recording")
    assert r.status_code == 200 and r.json() == {"recording": False, "policy": "never", "live": False}


def test_beep_is_distinct_from_the_parties_tones() -> None:
    """The beep test above counts windows where 1400 Hz dominates: no party's tone may pass."""
    for hz in (CUSTOMER_HZ, AGENT_HZ, SUPERVISOR_HZ):
        assert beeps([tone(hz, 0.02)] * 30) == 0
    pcm = (3000 * np.sin(2 * np.pi * BEEP_HZ * np.arange(1600) / 8000)).astype("<i2").tobytes()
    assert beeps([pcm[i : i + 320] for i in range(0, 1600, 320)] * 3) >= 1


async def test_desk_hears_of_a_supervisors_pause_live(rigs: list[Rig], new_page: Any, tmp_path: Path) -> None:
    """A supervisor pauses and resumes the call's recording through the API: the agent's desk
    shows it from its stream, without a reload and without asking the server again."""
    rig = await started_rig(tmp_path)
    rigs.append(rig)
    log = watch(rig)
    await phone_with_tone(rig, "1003", "demo-1003", AGENT_HZ)
    desk = await desk_of_carol(rig, new_page, log)
    errors = PageErrors(desk)
    call, _ears, cid, talking = await connected_call(rig, log)
    status = desk.locator("#recording-status")
    await expect(status).to_have_text("Recording", timeout=T)
    await desk.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
    asked: list[str] = []
    desk.on("request", lambda r: asked.append(r.url) if "/recording" in urlsplit(r.url).path else None)

    supervisor = await rig.desktop("supervisor")
    r = await supervisor.post(f"/api/contacts/{cid}/recording", {"action": "pause"})
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    await expect(status).to_have_text("Recording paused", timeout=T)
    await expect(status).to_have_attribute("data-recording", "paused")
    await expect(desk.locator("#btn-record-pause")).to_have_text("Resume recording")
    paused = await log.wait(ev.RecordingPaused, contact_id=cid, paused=True, by="api:supervisor")
    assert paused.reason == "pci"

    r = await supervisor.post(f"/api/contacts/{cid}/recording", {"action": "resume"})
    assert r.status_code == 200 and r.json()["paused"] is False, r.text
    await expect(status).to_have_text("Recording", timeout=T)
    await expect(desk.locator("#btn-record-pause")).to_have_text("Pause recording")
    assert await desk.evaluate("window.__sameDocument === true")
    assert asked == []  # told by the stream, not by asking
    talking.cancel()
    await call.hangup()
    assert errors.items == []
