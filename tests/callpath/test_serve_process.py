"""``callcenter serve`` as a real process: starts, answers calls and HTTP, and on
SIGTERM sends BYE to active calls and exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.peers import Caller, make_config_dir
from tests.support.serve_process import serve


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_serve_answers_then_sigterm_byes_active_calls(tmp_path: Path, media_workers: int) -> None:
    """With media workers, SIGTERM goes to the whole process group (as a terminal's Ctrl-C
    or a service manager does): the workers must outlive it until the calls are ended."""
    cfg = make_config_dir(tmp_path, media_workers=media_workers)
    served = await serve(cfg, tmp_path)
    proc = served.proc
    caller = Caller()
    try:
        info = served.info
        assert info["media_workers"] == (media_workers if media_workers > 1 else 0)
        async with httpx.AsyncClient(base_url=served.http) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json()["ok"] is True
            assert "callcenter_queue_waiting" in (await http.get("/metrics")).text
            assert (await http.get("/openapi.json")).json()["info"]["title"] == "callcenter CTI API"
        await caller.start()
        call = await caller.call("600", served.sip)  # the echo test
        assert call.is_active
        echoed: asyncio.Queue[str] = asyncio.Queue()
        call.media.on_dtmf = lambda digit, _how: echoed.put_nowait(digit)
        call.media.send_dtmf("7")  # cuts the prompt short, and comes back as a tone
        assert await asyncio.wait_for(echoed.get(), 10) == "7"
        if media_workers > 1:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(call.ended.wait(), 20)
        assert call.end_reason == "remote_bye"  # the server hung up on us, politely
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await asyncio.wait_for(_group_gone(proc.pid), 10)  # no media worker left behind
    finally:
        await caller.stop()
        await served.stop()  # kills it if still running; ends reading its log


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies excluded: an orphan's exit status
    waits for init here, which is not ours to reap)."""
    live = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(d.name))
    return live


async def _group_gone(pgid: int) -> None:
    """Until no process of the group runs (the multiprocessing resource tracker exits on
    its own once it reads EOF from the server, a moment after the server has exited)."""
    while _live_members(pgid):
        await asyncio.sleep(0.05)
