"""``callcenter serve`` as a real process: starts, answers calls and HTTP, and on
SIGTERM sends BYE to active calls and exits cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.peers import ROOT, Caller, make_config_dir


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_serve_answers_then_sigterm_byes_active_calls(tmp_path: Path, media_workers: int) -> None:
    """With media workers, SIGTERM goes to the whole process group (as a terminal's Ctrl-C
    or a service manager does): the workers must outlive it until the calls are ended."""
    cfg = make_config_dir(tmp_path, media_workers=media_workers)
    server = yaml.safe_load((cfg / "server.yaml").read_text())
    server["logging"]["format"] = "json"  # structured lines: the test reads the start-up record
    (cfg / "server.yaml").write_text(yaml.safe_dump(server))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcenter.cli", "serve", "--config", str(cfg),
        "--flows", str(ROOT / "ivr_flows"),
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    lines: list[dict] = []

    async def started() -> dict:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            lines.append(line)
            if line.get("msg") == "callcenter started":
                return line
        raise AssertionError("server exited before start-up:\n" + "\n".join(map(str, lines)))

    caller = Caller()
    try:
        info = await asyncio.wait_for(started(), 60)
        assert info["media_workers"] == (media_workers if media_workers > 1 else 0)
        host, port = info["http"].rsplit(":", 1)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json()["ok"] is True
            assert "callcenter_queue_waiting" in (await http.get("/metrics")).text
            assert (await http.get("/openapi.json")).json()["info"]["title"] == "callcenter CTI API"
        sip_host, sip_port = info["sip"][0].split(":", 1)[1].rsplit(":", 1)
        await caller.start()
        call = await caller.call("600", (sip_host, int(sip_port)))  # the echo test
        assert call.is_active
        echoed: asyncio.Queue[str] = asyncio.Queue()
        call.media.on_dtmf = lambda digit, _how: echoed.put_nowait(digit)
        call.media.send_dtmf("7")  # cuts the prompt short, and comes back as a tone
        assert await asyncio.wait_for(echoed.get(), 10) == "7"
        drain = asyncio.create_task(_drain(proc))
        if media_workers > 1:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(call.ended.wait(), 20)
        assert call.end_reason == "remote_bye"  # the server hung up on us, politely
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await drain
        await asyncio.wait_for(_group_gone(proc.pid), 10)  # no media worker left behind
    finally:
        await caller.stop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


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


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stderr is not None
    async for _ in proc.stderr:
        pass
