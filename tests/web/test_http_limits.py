"""HTTP resource limits on the running server (issue 20 item 5): request bodies are refused
with 413 before they are read, password hashing is bounded (429 beyond the bound), and a
WebSocket client frame may not exceed 64 KiB."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
import websockets

from callcenter.web.tokens import ws_subprotocols
from tests.support import eventually

LIMITS = {"login_body_bytes": 4096, "password_hashes": 1, "password_hash_queue": 0}
PATCH = {"http": {"host": "127.0.0.1", "port": 0, "limits": LIMITS}}


@pytest.fixture
async def rig(rig_factory: Any) -> Any:
    return await rig_factory(server_patch=PATCH)


async def raw_status(rig: Any, head: str, body: bytes = b"") -> int:
    """Send request headers (and the start of a body) and read the status line, without
    sending the rest: a server that waited for the whole body would never answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.center.http_port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_declared_oversized_body_is_refused_before_reading(rig: Any) -> None:
    head = "POST /api/login HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 100000000\n"
    assert await raw_status(rig, head, b'{"username": "') == 413


async def test_streamed_oversized_body_is_cut_off_at_the_limit(rig: Any) -> None:
    head = "POST /api/login HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n"
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
    assert await raw_status(rig, head, chunk * 8) == 413  # 8 KiB sent, no last chunk


async def test_api_routes_have_their_own_limit(rig: Any) -> None:
    async with httpx.AsyncClient(base_url=rig.http) as http:
        r = await http.post("/api/login", json={"username": "1001", "password": "demo-1001"})
        assert r.status_code == 200
        http.headers["Authorization"] = f"Bearer {r.json()['token']}"
        too_big = await http.post("/api/agent/wrapup", json={"disposition": "r", "notes": "x" * 70_000})
        assert too_big.status_code == 413 and "65536" in too_big.json()["detail"]
        # under the limit the route's own validation answers (notes are at most 10,000 chars)
        assert (await http.post("/api/agent/wrapup", json={"disposition": "r", "notes": "x" * 20_000})
                ).status_code == 422  # fmt: skip
        # and a login body over the login limit is 413 even though it is small for the API
        big_login = await http.post("/api/login", json={"username": "1001", "password": "p" * 5000})
        assert big_login.status_code == 413


def creds(agent: str) -> dict[str, str]:
    return {"username": agent, "password": f"demo-{agent}"}


async def test_password_hashing_is_bounded(rig: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = rig.center.auth
    release = threading.Event()
    real_login = auth.login

    def slow_login(username: str, password: str) -> Any:
        release.wait(10)  # holds the only hashing slot until the test lets go
        return real_login(username, password)

    monkeypatch.setattr(auth, "login", slow_login)
    async with httpx.AsyncClient(base_url=rig.http, timeout=20) as http:
        first = asyncio.create_task(http.post("/api/login", json=creds("1001")))
        await eventually(lambda: auth.hashing.in_flight == 1)
        busy = await http.post("/api/login", json=creds("1002"))
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
        release.set()
        assert (await first).status_code == 200
        assert (await http.post("/api/login", json=creds("1002"))).status_code == 200
        metrics = (await http.get("/metrics")).text
    assert 'callcenter_auth_refused_total{channel="http",reason="busy"} 1.0' in metrics


async def test_oversized_websocket_frame_closes_the_connection(rig: Any) -> None:
    async with httpx.AsyncClient(base_url=rig.http) as http:
        token = (await http.post("/api/login", json=creds("1001"))).json()["token"]
    ws_url = rig.http.replace("http", "ws", 1) + "/ws"
    async with websockets.connect(ws_url, subprotocols=ws_subprotocols(token)) as ws:
        await ws.recv()  # the snapshot
        await ws.send("x" * 100_000)
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1009  # message too big
