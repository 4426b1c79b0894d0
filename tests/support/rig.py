"""The whole server (``Center``) in the test's event loop, on private ports and files, and
the real peers a test adds to it; shared by the callpath and web tests.

A folder gets the ``rig_factory`` fixture by importing it into its conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from callcenter.center import Center
from callcenter.config import load_config
from callcenter.sip.calls import Call
from tests.support.peers import ROOT, Baresip, Caller, Desktop, make_config_dir


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

    async def phone(self, agent: str, answer: str = "auto", **options: Any) -> Baresip:
        """A baresip softphone for ``agent``, returned once our registrar has its binding
        (``options``: Baresip's, e.g. ``tls_ca`` to register over our TLS listener)."""
        registered = asyncio.Event()

        def on_change(user: str, is_registered: bool) -> None:
            if user == agent and is_registered:
                registered.set()

        self.center.registrar.on_change(on_change)
        registrar = self.sip
        if options.get("tls_ca"):
            registrar = ("127.0.0.1", self.center.transport.get("tls").local[1])
        p = Baresip(self.tmp / f"baresip-{agent}", agent, f"demo-{agent}", registrar,
                    answer=answer, **options)
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

    async def caller(self, srtp: str = "off") -> Caller:
        c = Caller(srtp)
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
        server_edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> Rig:
        cfg = load_config(make_config_dir(tmp_path, patch, server_patch, media_workers, server_edit))
        center = Center(cfg, flows_dir=ROOT / "ivr_flows")
        await center.start()
        rig = Rig(tmp_path, center)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()
        await rig.center.stop()


def short_ring(queues: dict[str, Any]) -> None:
    """Ring 2 s before RONA, and no automatic end of wrap-up, so tests need no long waits."""
    for q in queues["queues"].values():
        q["reservation_timeout_s"] = 2
        q["wrap_up_s"] = 600
        q.pop("escalation", None)
        q["preferred_agent_timeout_s"] = 0


class CustomerPhone:
    """The phone a callback reaches: answers, or rejects with ``status``."""

    def __init__(self, caller: Caller, reject: int | None = None) -> None:
        self.caller = caller
        self.reject = reject
        self.calls: asyncio.Queue[Call] = asyncio.Queue()
        self.pick_up = asyncio.Event()  # clear it to keep the phone ringing until set
        self.pick_up.set()
        caller.ua.on_call = self._incoming

    @property
    def port(self) -> int:
        return self.caller.transport.get("udp").local[1]

    async def _incoming(self, call: Call) -> None:
        await self.calls.put(call)
        if self.reject is not None:
            await call.reject(self.reject)
            return
        await call.ringing()
        await self.pick_up.wait()
        await call.answer()
        await call.ended.wait()


async def callback_rig(
    rig_factory: Any, phone: CustomerPhone, media_workers: int = 1, server: dict[str, Any] | None = None,
    **callbacks: Any,
) -> Any:
    """The demo server whose trunk (``callbacks.dial_uri``) reaches ``phone``; ``server``: more
    top-level server.yaml sections."""
    settings = {"dial_uri": f"sip:{{digits}}@127.0.0.1:{phone.port}", "ring_s": 10} | callbacks
    return await rig_factory(short_ring, server_patch={
        "queueing": {"announce_every_s": 30, "offer_options_after_s": 0}, "callbacks": settings,
        **(server or {})}, media_workers=media_workers)  # fmt: skip
