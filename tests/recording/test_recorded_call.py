"""A recorded, monitored call through the whole server with real peers: our SIP UA as the
customer (500 Hz), baresip as agent 1003 (1100 Hz) and baresip registered as the
supervisor's phone (1700 Hz). Checked: the consent prompt and the IVR's sensitive field
(recording paused, the card number in no log line, event or record), what the customer
hears in listen/whisper/barge, the agent's desk told of whisper/barge, a PCI pause from
the desk, the Ogg Opus attachment (size, SHA-256, duration, channel map; customer left,
agent right, paused intervals silent; the WAV gone), the monitor session in the record,
and playback by a signed link with a Range request (supervisor yes, agent no)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from callcenter import events as ev
from callcenter.center import Center
from callcenter.config import load_config
from tests.monitoring.tones import AGENT_HZ, CUSTOMER_HZ, SUPERVISOR_HZ, Ears, heard, rms, tone
from tests.support import eventually
from tests.support.peers import ROOT, Baresip, make_config_dir, tone_wav, watch
from tests.support.rig import Rig

CARD = "4111111111111111"
SUP_USER, SUP_PASS = "sup-phone", "demo-sup-phone"
PAY_FLOW = """
name: pay
description: A card payment, then sales
steps:
  card:
    title: Gave a card number
    gather:
      name: card
      sensitive: true
      prompt: {en: "Please key your card number, then hash."}
      digits: {min: 12, max: 19, terminator: "#", first_timeout: 15, inter_digit_timeout: 5}
  to_sales:
    title: Queued for sales
    queue: {name: sales, skills: [sales]}
"""


def recorded_config(tmp: Path, media_workers: int) -> tuple[Path, Path]:
    d = make_config_dir(tmp, media_workers=media_workers)
    services = yaml.safe_load((d / "services.yaml").read_text())
    services["services"]["pay"] = {"dnis": ["5050"], "flow": "pay", "hours": None, "default_queue": "sales"}
    (d / "services.yaml").write_text(yaml.safe_dump(services))
    agents = yaml.safe_load((d / "agents.yaml").read_text())
    material = f"{SUP_USER}:callcenter.local:{SUP_PASS}".encode()
    agents["supervisors"][0]["sip"] = {"username": SUP_USER, "ha1_md5": hashlib.md5(material).hexdigest(),
                                       "ha1_sha256": hashlib.sha256(material).hexdigest()}  # fmt: skip
    (d / "agents.yaml").write_text(yaml.safe_dump(agents))
    (d / "recording.yaml").write_text(yaml.safe_dump({
        "services": {"pay": "always"}, "consent_services": ["pay"], "retention_days": 30}))
    flows = tmp / "flows"
    shutil.copytree(ROOT / "ivr_flows", flows)
    (flows / "pay.yaml").write_text(PAY_FLOW)
    return d, flows


@pytest.fixture(params=[1, 2], ids=["media1", "media2"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    d, flows = recorded_config(tmp_path, request.param)
    center = Center(load_config(d), flows_dir=flows)
    await center.start()
    r = Rig(tmp_path, center)
    yield r
    await r.close()
    await center.stop()


async def phone_with_tone(rig: Rig, user: str, password: str, hz: float) -> Baresip:
    registered = asyncio.Event()
    rig.center.registrar.on_change(lambda u, ok: registered.set() if u == user and ok else None)
    p = Baresip(rig.tmp / f"baresip-{user}", user, password, rig.sip)
    rig.phones.append(p)
    await p.start()
    tone_wav(p.workdir / "talk.wav", freq=hz)  # aufile opens it when a call's audio starts
    await asyncio.wait_for(registered.wait(), 20)
    return p


def decode(path: Path, out: Path) -> np.ndarray:
    subprocess.run(["opusdec", "--quiet", "--rate", "8000", str(path), str(out)], check=True)
    with wave.open(str(out)) as w:
        assert w.getnchannels() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


async def test_recorded_and_monitored_call(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    log = watch(rig)
    await phone_with_tone(rig, "1003", "demo-1003", AGENT_HZ)
    await phone_with_tone(rig, SUP_USER, SUP_PASS, SUPERVISOR_HZ)
    agent_desk = await rig.desktop("1003")
    sup_desk = await rig.desktop("supervisor")
    caller = await rig.caller()
    call = await caller.call("5050", rig.sip)
    ears = Ears()
    call.media.on_audio = ears
    talking = asyncio.ensure_future(call.media.play(tone(CUSTOMER_HZ, 1.0), loop=True))

    # the IVR pauses the recording for the sensitive field; the card number is keyed then
    paused = await log.wait(ev.RecordingPaused, paused=True)
    assert paused.by == "ivr"
    call.media.send_dtmf(CARD + "#")
    collected = await log.wait(ev.IvrInputCollected, name="card")
    assert collected.sensitive and collected.value == "" and collected.matched
    await log.wait(ev.RecordingPaused, paused=False)
    connected = await log.wait(ev.ContactConnected, agent_id="1003", timeout=40)
    cid = connected.contact_id
    assert heard(await ears.next()) == {AGENT_HZ}

    # a supervisor on a connected call: listen, barge, whisper, from the supervisor's phone
    r = await agent_desk.post("/api/monitor", {"contact_id": cid, "mode": "listen"})
    assert r.status_code == 403  # only supervisors may monitor
    r = await sup_desk.post("/api/monitor", {"contact_id": cid, "mode": "listen"})
    assert r.status_code == 202, r.text
    sid = r.json()["id"]

    async def active() -> bool:
        sessions = (await sup_desk.get("/api/monitor")).json()
        return any(s["id"] == sid and s["state"] == "active" for s in sessions)

    await eventually(active, timeout=20, interval=0.05)  # the supervisor's phone answers by itself
    assert heard(await ears.next()) == {AGENT_HZ}  # listen: the customer hears no supervisor
    r = await sup_desk.http.put(f"/api/monitor/{sid}", json={"mode": "barge"})
    assert r.status_code == 200, r.text
    assert heard(await ears.next()) == {AGENT_HZ, SUPERVISOR_HZ}
    await agent_desk.wait(lambda m: m.get("type") == "monitor" and m.get("mode") == "barge")
    r = await sup_desk.http.put(f"/api/monitor/{sid}", json={"mode": "whisper"})
    assert heard(await ears.next()) == {AGENT_HZ}  # whisper: for the agent only
    await agent_desk.wait(lambda m: m.get("type") == "monitor" and m.get("mode") == "whisper")
    r = await sup_desk.http.delete(f"/api/monitor/{sid}")
    assert r.status_code == 200
    await log.wait(ev.MonitorSession, contact_id=cid)

    # a PCI pause from the desk, then resume
    r = await agent_desk.post(f"/api/contacts/{cid}/recording", {"action": "pause"})
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    await ears.next(40)
    r = await agent_desk.post(f"/api/contacts/{cid}/recording", {"action": "resume"})
    assert r.json()["paused"] is False
    await ears.next(40)
    talking.cancel()
    await call.hangup()

    added = await log.wait(ev.AttachmentAdded, contact_id=cid, timeout=60)
    att = added.attachment
    files_dir = Path(rig.center.cfg.server.crm.files_dir)
    stored = files_dir / att["path"]
    assert att["format"] == "opus" and att["content_type"] == "audio/ogg"
    assert att["channels"] == {"left": "customer", "right": "agent"}
    data = stored.read_bytes()
    assert att["size"] == len(data) and att["sha256"] == hashlib.sha256(data).hexdigest()
    assert not list(rig.center.cfg.recording.directory.glob("*.wav"))  # removed once verified
    assert len(att["paused"]) == 2  # the IVR's sensitive field, the desk's pause
    pcm = decode(stored, rig.tmp / "back.wav")
    assert abs(len(pcm) / 8000 - att["duration_s"]) < 0.1
    left, right = pcm[:, 0], pcm[:, 1]
    for a, b in att["paused"]:
        inner = slice(int(8000 * (a + 0.1)), int(8000 * (b - 0.1)))
        assert b - a > 0.3 and rms(left[inner]) < 30 and rms(right[inner]) < 30
    desk_pause_end = att["paused"][1][1]
    after = slice(int(8000 * (desk_pause_end + 0.2)), int(8000 * (desk_pause_end + 0.7)))
    assert heard(left[after]) == {CUSTOMER_HZ} and heard(right[after]) == {AGENT_HZ}

    # the record: the recording, the monitor session, and no card number anywhere
    async def recorded() -> dict[str, Any] | None:
        r = await sup_desk.get(f"/api/interactions/{cid}")
        rec = r.json().get("record") or {} if r.status_code == 200 else {}
        return rec if any(a.get("kind") == "call_recording" for a in rec.get("attachments", [])) else None

    record = await eventually(recorded, timeout=20, interval=0.05)
    (session,) = record["attributes"]["monitoring"]
    assert session["supervisor"] == "supervisor" and session["agent_id"] == "1003"
    assert [m["mode"] for m in session["modes"]] == ["listen", "barge", "whisper"]
    assert CARD not in str(record) and CARD not in caplog.text
    assert all(CARD not in str(e) for e in log.events)

    # playback: a signed link for the supervisor, served with ranges; agents are refused
    r = await agent_desk.post(f"/api/recordings/{att['id']}/link")
    assert r.status_code == 403
    r = await sup_desk.post(f"/api/recordings/{att['id']}/link")
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    r = await sup_desk.http.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = await sup_desk.http.get(url.replace("sig=", "sig=0"))
    assert r.status_code == 403
