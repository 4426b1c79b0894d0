"""Fixtures for the web channel tests: the whole server (``Center``) with webchat.yaml, agents
and services edited per test, a customer WebSocket client, and headless chromium.

The browser is Debian's chromium driven by Playwright in the test's own event loop (as in
tests/web), so a test can click in the customer's page and the agent's desk and await the
server's events without threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
import yaml

from callcenter.center import Center
from callcenter.config import load_config
from tests.support import unavailable
from tests.support.peers import ROOT, make_config_dir
from tests.support.rig import Rig

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]  # fmt: skip


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def short_queues(queues: dict[str, Any]) -> None:
    """Offers wait 30 s for Accept, wrap-up does not end by itself, no escalation."""
    for q in queues["queues"].values():
        q["reservation_timeout_s"] = 30
        q["wrap_up_s"] = 600
        q.pop("escalation", None)
        q["preferred_agent_timeout_s"] = 0


@pytest.fixture
async def chat_rig(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await chat_rig(webchat=..., agents=..., services=...)``: a started server; each
    keyword is a function editing that YAML file's data before the server loads it."""
    rigs: list[Rig] = []

    async def make(*, webchat: Callable[[dict[str, Any]], None] | None = None,
                   agents: Callable[[dict[str, Any]], None] | None = None,
                   services: Callable[[dict[str, Any]], None] | None = None,
                   server: Callable[[dict[str, Any]], None] | None = None) -> Rig:  # fmt: skip
        d = make_config_dir(tmp_path / f"rig{len(rigs)}", short_queues, server_edit=server)
        for name, change in (("webchat.yaml", webchat), ("agents.yaml", agents), ("services.yaml", services)):
            if change is not None:
                edit_yaml(d / name, change)
        center = Center(load_config(d), flows_dir=ROOT / "ivr_flows")
        await center.start()
        rig = Rig(tmp_path, center)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()
        await rig.center.stop()


class Customer:
    """A customer's WebSocket (what the widget does), with every message it received."""

    def __init__(self, url: str, origin: str | None = None) -> None:
        self.url = url
        self.origin = origin
        self.messages: list[dict[str, Any]] = []
        self.token = ""
        self._ws: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def connect(self, token: str = "", last_seq: int = 0) -> dict[str, Any]:
        headers = {"Origin": self.origin} if self.origin else None
        self._ws = await websockets.connect(self.url, additional_headers=headers)
        self._pump = asyncio.create_task(self._read())
        start = len(self.messages)
        await self.send(type="hello", token=token, last_seq=last_seq)
        welcome = await self.wait(lambda m: m["type"] in ("welcome", "error"), start=start)
        self.token = welcome.get("token", self.token)
        return welcome

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                async with self._changed:
                    self.messages.append(json.loads(raw))
                    self._changed.notify_all()

    async def send(self, **message: Any) -> int:
        """Send one message; returns how many messages were received before it."""
        n = len(self.messages)
        await self._ws.send(json.dumps(message))
        return n

    async def wait(self, pred: Callable[[dict[str, Any]], bool], start: int = 0,
                   timeout: float = 20.0) -> dict[str, Any]:  # fmt: skip
        async def find() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for m in self.messages[start:]:
                        if pred(m):
                            return m
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    def lines(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "line" and (kind is None or m["from"] == kind)]

    async def start_chat(self, name: str = "Grace Hopper", email: str = "grace@example.com",
                         topic: str = "support", phone: str = "") -> None:  # fmt: skip
        n = await self.send(type="start", name=name, email=email, phone=phone, topic=topic)
        await self.wait(lambda m: m["type"] == "state" and m["state"] == "selfservice", start=n)

    async def drop(self) -> None:
        """The connection goes away (the network dropped, the tab closed)."""
        await self._ws.close()
        if self._pump is not None:
            await self._pump

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.drop()


@pytest.fixture
async def customers() -> AsyncIterator[Callable[..., Any]]:
    made: list[Customer] = []

    async def make(rig: Rig, origin: str | None = None) -> Customer:
        c = Customer(f"ws://127.0.0.1:{rig.center.http_port}/chat/ws", origin)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        import playwright.async_api as api
    except ImportError:
        unavailable("the playwright Python package", "pip install playwright")
    if not Path(CHROMIUM).is_file():
        unavailable("chromium", "apt-get install chromium")
    async with api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def new_page(browser: Any) -> AsyncIterator[Callable[..., Any]]:
    """Fresh pages, each in its own context (own sessionStorage): a customer, an agent."""
    contexts: list[Any] = []

    async def make() -> Any:
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        page = await ctx.new_page()
        page.errors = []  # uncaught exceptions of the page: a clean run has none
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page

    yield make
    for ctx in contexts:
        await ctx.close()


async def record_of(rig: Rig, contact_id: str) -> Any:
    """The interaction record once every event so far is written."""
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    return await rig.center.crm.interaction(contact_id)


def offers(desk: Any, start: int = 0) -> Any:
    return desk.wait(lambda m: m["type"] == "offer" and m["contact"]["channel"] == "chat", start=start)


async def connected_chat(rig: Any, customer: Any, desk: Any, topic: str = "support") -> str:
    """A customer who went through the pre-chat form and asked for a person, accepted by ``desk``."""
    await customer.connect()
    await customer.start_chat(topic=topic)
    seen = len(desk.messages)
    await customer.send(type="agent")
    offer = await offers(desk, seen)
    cid = offer["contact"]["contact_id"]
    r = await desk.post(f"/api/contacts/{cid}/accept")
    assert r.status_code == 200, r.text
    await customer.wait(lambda m: m["type"] == "state" and m["state"] == "connected")
    return cid
