"""A SIPp caller (not our own UA) through the demo IVR: it presses 3 with RFC 4733 events
from a capture, reaches a baresip agent with a screen-pop, talks, and hangs up.

The capture writer and the caller scenario are the call-path benchmark's
(bench/call_path.py, bench/call_path/caller_uac.xml), so test and benchmark drive the
server the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from test_call_path import GRACE

from bench.loopback import write_dtmf_pcap
from callcenter import events as ev
from tests.support import ROOT, free_port, require_tool
from tests.support.peers import both_media_modes, watch


@both_media_modes
async def test_sipp_caller_presses_3_and_reaches_sales(rig: Any, tmp_path: Path) -> None:
    import socket

    sipp = require_tool("sipp")
    log = watch(rig)
    await rig.phone("1003")
    desk = await rig.desktop("1003")
    pcap = write_dtmf_pcap(tmp_path / "press3.pcap", digit_event=3)
    scenario = (ROOT / "bench" / "call_path" / "caller_uac.xml").read_text()
    (tmp_path / "caller.xml").write_text(scenario.replace("@PCAP@", str(pcap)).replace("@ANI@", GRACE))
    host, port = rig.sip
    proc = await asyncio.create_subprocess_exec(
        sipp, f"{host}:{port}", "-sf", str(tmp_path / "caller.xml"), "-s", "5000", "-m", "1",
        "-d", "4000", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
        "-mp", str(free_port(socket.SOCK_DGRAM) & ~1), "-nostdin", "-timeout", "50s", "-timeout_error",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        digit = await log.wait(ev.IvrInputCollected, step="departments")
        assert (digit.value, digit.how) == ("3", "dtmf")
        offer = await desk.wait(lambda m: m["type"] == "offer")
        assert offer["customer"]["name"] == "Grace Hopper"
        connected = await log.wait(ev.ContactConnected, agent_id="1003")
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, (out + err).decode(errors="replace")[-2000:]
        ended = await log.wait(ev.ContactEnded, contact_id=connected.contact_id)
        assert ended.ended_by == "caller"  # SIPp's BYE after its -d pause
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
