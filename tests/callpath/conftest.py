"""The whole server (``Center``) in the test's event loop, on private ports and files."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import Baresip, Caller, Desktop

from callcenter.center import Center
from callcenter.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def free_sip_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free SIP port")


def make_config_dir(tmp: Path, patch: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """The demo config with private ports and files, plus optional edits to queues.yaml."""
    d = tmp / "config"
    shutil.copytree(ROOT / "config", d)
    server = yaml.safe_load((d / "server.yaml").read_text())
    sip_port = free_sip_port()
    server["sip"]["listen"] = [{"transport": "udp", "host": "127.0.0.1", "port": sip_port},
                               {"transport": "tcp", "host": "127.0.0.1", "port": sip_port}]  # fmt: skip
    rtp = random.randrange(50000, 60000) & ~1
    server["rtp"].update(port_min=rtp, port_max=rtp + 399)
    server["http"]["port"] = 0
    server["data_dir"] = str(tmp / "var")
    server["database"]["url"] = f"sqlite+aiosqlite:///{tmp}/crm.db"
    server["crm"]["files_dir"] = str(tmp / "files")
    # The TTS cache is shared between tests on purpose: prompts render once per run.
    server["speech"]["tts_cache_dir"] = str(ROOT / "var" / "test-tts-cache")
    server["logging"]["format"] = "text"
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    if patch is not None:
        queues = yaml.safe_load((d / "queues.yaml").read_text())
        patch(queues)
        (d / "queues.yaml").write_text(yaml.safe_dump(queues))
    return d


class Rig:
    """A started Center plus the peers a test creates; everything is stopped at the end."""

    def __init__(self, tmp: Path, center: Center) -> None:
        self.tmp = tmp
        self.center = center
        self.phones: list[Baresip] = []
        self.desktops: list[Desktop] = []
        self.callers: list[Caller] = []

    @property
    def sip(self) -> tuple[str, int]:
        listen = self.center.cfg.server.sip.listen[0]
        return listen.host, listen.port

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.center.http_port}"

    async def phone(self, agent: str, answer: str = "auto") -> Baresip:
        """A baresip softphone for ``agent``, returned once our registrar has its binding."""
        registered = asyncio.Event()

        def on_change(user: str, is_registered: bool) -> None:
            if user == agent and is_registered:
                registered.set()

        self.center.registrar.on_change(on_change)
        p = Baresip(self.tmp / f"baresip-{agent}", agent, f"demo-{agent}", self.sip, answer=answer)
        self.phones.append(p)
        await p.start()
        await asyncio.wait_for(registered.wait(), 20)
        return p

    async def desktop(self, agent: str, *, ready: bool = True) -> Desktop:
        password = "demo-supervisor" if agent == "supervisor" else f"demo-{agent}"
        d = Desktop(self.http, agent, password)
        self.desktops.append(d)
        await d.login()
        if ready and agent != "supervisor":
            r = await d.post("/api/agent/state", {"state": "available"})
            assert r.status_code == 200, r.text
        return d

    async def caller(self) -> Caller:
        c = Caller()
        self.callers.append(c)
        await c.start()
        return c

    async def close(self) -> None:
        for c in self.callers:
            await c.stop()
        for d in self.desktops:
            await d.close()
        for p in self.phones:
            await p.stop()


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    rigs: list[Rig] = []

    async def make(patch: Callable[[dict[str, Any]], None] | None = None) -> Rig:
        cfg = load_config(make_config_dir(tmp_path, patch))
        center = Center(cfg, flows_dir=ROOT / "ivr_flows")
        await center.start()
        rig = Rig(tmp_path, center)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()
        await rig.center.stop()


@pytest.fixture
async def rig(rig_factory: Callable[..., Any]) -> Rig:
    return await rig_factory()
