"""How the pages are served: routes, content types, security headers, no path escape;
and that the live stream is JSON a browser can parse."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from callcenter.web.pages import CSP, PAGES_DIR, mount_pages
from callcenter.web.tokens import ws_subprotocols


@pytest.fixture
async def client() -> Any:
    app = FastAPI()
    mount_pages(app)
    mount_pages(app)  # idempotent: a second call adds nothing
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        c.app = app
        yield c


async def test_root_redirects_to_the_desk(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 307
    assert r.headers["location"] == "/desk"


@pytest.mark.parametrize(("path", "title"), [("/desk", "Agent desk"), ("/supervisor", "Supervisor")])
async def test_pages_are_html_with_a_strict_policy(client: httpx.AsyncClient, path: str, title: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert f"<title>{title}" in r.text
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    # Nothing from elsewhere: every script and stylesheet is one of ours.
    assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text


@pytest.mark.parametrize(
    ("name", "kind"),
    [("desk.js", "javascript"), ("supervisor.js", "javascript"), ("common.js", "javascript"),
     ("common.css", "text/css"), ("favicon.svg", "image/svg+xml")],
)  # fmt: skip
async def test_assets_are_served_with_their_types(client: httpx.AsyncClient, name: str, kind: str) -> None:
    r = await client.get(f"/pages/{name}")
    assert r.status_code == 200
    assert kind in r.headers["content-type"]
    assert r.content == (PAGES_DIR / name).read_bytes()
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/pages/nope.js", "/pages/../pages.py", "/pages/%2e%2e/pages.py"])
async def test_no_file_outside_the_pages_directory(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert b"mount_pages" not in r.content


async def test_mounting_twice_adds_no_routes(client: Any) -> None:
    before = len(client.app.routes)
    mount_pages(client.app)
    assert len(client.app.routes) == before
    paths = [getattr(r, "path", None) for r in client.app.routes]
    assert paths.count("/desk") == 1 and paths.count("/supervisor") == 1


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON (browsers' JSON.parse rejects it)")

    return json.loads(text, parse_constant=refuse)


async def test_stream_is_json_a_browser_can_parse(rig: Any) -> None:
    """The supervisor snapshot holds an estimated wait of infinity while nobody is staffed;
    Python's json writes that as the bare word ``Infinity``, which is not JSON."""
    async with httpx.AsyncClient(base_url=rig.http) as http:
        r = await http.post("/api/login", json={"username": "supervisor", "password": "demo-supervisor"})
        token = r.json()["token"]
    ws_url = rig.http.replace("http", "ws", 1) + "/ws"
    async with websockets.connect(ws_url, subprotocols=ws_subprotocols(token)) as ws:
        first = await ws.recv()
    assert isinstance(first, str)
    snapshot = _strict(first)
    assert snapshot["type"] == "snapshot"
    assert {q["queue"] for q in snapshot["queues"]} >= {"sales"}
