"""The whole server (``Center``) in the test's event loop, on private ports and files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from peers import ROOT, Baresip, Caller, Desktop, make_config_dir

from callcenter.center import Center
from callcenter.config import load_config


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

    async def make(
        patch: Callable[[dict[str, Any]], None] | None = None,
        server_patch: dict[str, Any] | None = None,
        media_workers: int = 1,
    ) -> Rig:
        cfg = load_config(make_config_dir(tmp_path, patch, server_patch, media_workers))
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
async def rig(request: pytest.FixtureRequest, rig_factory: Callable[..., Any]) -> Rig:
    """The demo server; ``@pytest.mark.parametrize("rig", [1, 2], indirect=True)`` runs a
    test with media in the server process and with two media worker processes."""
    return await rig_factory(media_workers=getattr(request, "param", 1))
