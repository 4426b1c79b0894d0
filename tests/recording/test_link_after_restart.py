"""A playback link given before a server restart still plays after it: the key that signs
links is ``<data_dir>/recording-link.key`` (created once, mode 0600), not a per-process
secret. Real peers: our SIP UA as the customer, baresip as agent 1003; a recorded call
through the pay flow, its link fetched with a Range request (206) before and after the
Center is stopped and a new one started on the same config (as
tests/callpath/test_no_phone_agents.py::test_registrations_survive_a_restart does)."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from callcenter import events as ev
from callcenter.center import Center
from callcenter.config import load_config
from callcenter.recording.wiring import LINK_KEY_FILE
from tests.monitoring.tones import AGENT_HZ, CUSTOMER_HZ, tone
from tests.recording.test_recorded_call import CARD, phone_with_tone, recorded_config
from tests.support.peers import watch
from tests.support.rig import Rig


@pytest.fixture
async def rig_flows(tmp_path: Path) -> AsyncIterator[tuple[Rig, Path]]:
    """The rig and its flows directory (the restart needs it); stops whichever Center the
    rig holds at the end."""
    d, flows = recorded_config(tmp_path, 1)
    center = Center(load_config(d), flows_dir=flows)
    await center.start()
    r = Rig(tmp_path, center)
    yield r, flows
    await r.close()
    await r.center.stop()


async def ranged(base: str, url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base) as http:
        return await http.get(url, headers={"Range": "bytes=10-109"})


async def test_a_playback_link_survives_a_restart(rig_flows: tuple[Rig, Path]) -> None:
    rig, flows = rig_flows
    log = watch(rig)
    await phone_with_tone(rig, "1003", "demo-1003", AGENT_HZ)
    await rig.desktop("1003")
    caller = await rig.caller()
    call = await caller.call("5050", rig.sip)
    talking = asyncio.ensure_future(call.media.play(tone(CUSTOMER_HZ, 1.0), loop=True))
    try:
        await log.wait(ev.RecordingPaused, paused=True, by="ivr")
        call.media.send_dtmf(CARD + "#")
        cid = (await log.wait(ev.ContactConnected, agent_id="1003", timeout=40)).contact_id
        await log.wait(ev.RecordingPaused, paused=False, by="ivr")
    finally:
        talking.cancel()
    await call.hangup()
    att = (await log.wait(ev.AttachmentAdded, contact_id=cid, timeout=60)).attachment
    data = (Path(rig.center.cfg.server.crm.files_dir) / att["path"]).read_bytes()

    key_file = rig.center.data_dir / LINK_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    sup = await rig.desktop("supervisor")
    r = await sup.post(f"/api/recordings/{att['id']}/link")
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    before = await ranged(rig.http, url)
    assert before.status_code == 206 and before.content == data[10:110]

    cfg = rig.center.cfg
    await rig.center.stop()
    rig.center = Center(cfg, flows_dir=flows)  # the fixture stops this one
    await rig.center.start()
    assert key_file.read_bytes() == key  # kept, not made again

    after = await ranged(rig.http, url)  # the same link, to the new process
    assert after.status_code == 206 and after.content == data[10:110]
    assert after.headers["content-range"] == f"bytes 10-109/{len(data)}"
    forged = await ranged(rig.http, url.replace("sig=", "sig=0"))
    assert forged.status_code == 403
