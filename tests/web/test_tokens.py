"""Desktop session tokens on the running server (issue 20 item 6, issue 19 item 7): logout
revokes (REST and WebSocket), no token in the server's log lines, the signing key survives a
restart, short-lived tokens are renewed and an expired one is refused; the page renews."""

from __future__ import annotations

import logging
import stat
import time
from typing import Any

import httpx
import pytest
import websockets
from browser_rig import PageErrors, playwright_api

from callcenter.center import Center
from callcenter.web.tokens import ws_subprotocols
from tests.support import eventually
from tests.support.peers import ROOT

CREDS = {"username": "1001", "password": "demo-1001"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def login(http: httpx.AsyncClient) -> str:
    r = await http.post("/api/login", json=CREDS)
    assert r.status_code == 200, r.text
    assert 60 <= r.json()["expires_in"] <= 900
    return r.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ws_close_code(rig: Any, token: str) -> int | None:
    """Connect with the token; the close code if the server refuses it, None if it streams."""
    async with websockets.connect(rig.http.replace("http", "ws", 1) + "/ws",
                                  subprotocols=ws_subprotocols(token)) as ws:  # fmt: skip
        try:
            first = await ws.recv()
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        assert '"snapshot"' in str(first)
        return None


async def test_logout_revokes_the_token_for_rest_and_websocket(rig_factory: Any) -> None:
    rig = await rig_factory()
    async with httpx.AsyncClient(base_url=rig.http) as http:
        token = await login(http)
        assert (await http.get("/api/agent/me", headers=bearer(token))).status_code == 200
        assert await ws_close_code(rig, token) is None
        ws_url = rig.http.replace("http", "ws", 1) + "/ws"
        async with websockets.connect(ws_url, subprotocols=ws_subprotocols(token)) as open_ws:
            await open_ws.recv()  # the snapshot: streaming
            assert (await http.post("/api/logout", headers=bearer(token))).status_code == 200
            with pytest.raises(websockets.ConnectionClosed):  # logout ends the session's streams
                while True:
                    await open_ws.recv()
        assert (await http.get("/api/agent/me", headers=bearer(token))).status_code == 401
        assert (await http.post("/api/agent/state", json={"state": "available"},
                                headers=bearer(token))).status_code == 401  # fmt: skip
        assert (await http.post("/api/refresh", headers=bearer(token))).status_code == 401
        assert await ws_close_code(rig, token) == 4401


async def test_no_token_in_the_server_log(rig_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    rig = await rig_factory()
    for name in ("uvicorn.error", "uvicorn.access"):  # levels set on the children win
        caplog.set_level(logging.INFO, logger=name)
    async with httpx.AsyncClient(base_url=rig.http) as http:
        token = await login(http)
    assert await ws_close_code(rig, token) is None
    # A client that still puts the token in the URL is refused, and the URL is logged redacted.
    ws_url = rig.http.replace("http", "ws", 1) + f"/ws?token={token}"
    async with websockets.connect(ws_url) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert "WebSocket /ws" in caplog.text  # the lines are there...
    assert "token=[redacted]" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text  # ...the token is not


async def test_token_is_valid_across_a_restart_with_the_same_key_file(rig_factory: Any) -> None:
    rig = await rig_factory()
    key_file = rig.center.data_dir / "jwt.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with httpx.AsyncClient(base_url=rig.http) as http:
        kept = await login(http)
        revoked = await login(http)
        assert (await http.post("/api/logout", headers=bearer(revoked))).status_code == 200
    await rig.center.stop()
    rig.center = Center(rig.center.cfg, flows_dir=ROOT / "ivr_flows")  # the fixture stops this one
    await rig.center.start()
    async with httpx.AsyncClient(base_url=rig.http) as http:
        assert (await http.get("/api/agent/me", headers=bearer(kept))).status_code == 200
        assert (await http.get("/api/agent/me", headers=bearer(revoked))).status_code == 401


async def test_refresh_renews_and_an_expired_token_is_refused(
    rig_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await rig_factory()
    clock = Clock()
    monkeypatch.setattr(rig.center.auth.tokens, "clock", clock)
    async with httpx.AsyncClient(base_url=rig.http) as http:
        first = await login(http)
        logged_in = clock.now
        clock.now += 600  # two thirds of the 900 s default: the pages renew here
        r = await http.post("/api/refresh", headers=bearer(first))
        assert r.status_code == 200 and r.json()["expires_in"] == 900
        second = r.json()["token"]
        clock.now += 301  # the first token has expired, the renewed one has not
        assert (await http.get("/api/agent/me", headers=bearer(first))).status_code == 401
        assert (await http.post("/api/refresh", headers=bearer(first))).status_code == 401
        assert (await http.get("/api/agent/me", headers=bearer(second))).status_code == 200
        # Renewal ends with the session (12 h after the login): then sign in again.
        token, renewals = second, 1
        for _ in range(100):
            clock.now = logged_in + 600 * (renewals + 1)
            r = await http.post("/api/refresh", headers=bearer(token))
            if r.status_code != 200:
                break
            token, renewals = r.json()["token"], renewals + 1
        assert r.status_code == 401
        assert renewals == 12 * 3600 // 600 - 1  # every 10 minutes until the 12 h are up
        assert (await http.get("/api/agent/me", headers=bearer(token))).status_code == 401


async def test_the_page_renews_its_token(rig: Any, new_page: Any) -> None:
    expect = playwright_api().expect
    page = await new_page()
    errors = PageErrors(page)
    await page.goto(f"{rig.http}/supervisor")
    await page.fill("#login-username", "supervisor")
    await page.fill("#login-password", "demo-supervisor")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=15_000)
    session = await page.evaluate("JSON.parse(sessionStorage.getItem('callcenter.session'))")
    assert session["renew_at"] > await page.evaluate("Date.now()")
    # As if the renewal time had come while the page was closed: the reloaded page renews at once.
    await page.evaluate("""() => { const s = JSON.parse(sessionStorage.getItem('callcenter.session'));
        s.renew_at = 0; sessionStorage.setItem('callcenter.session', JSON.stringify(s)); }""")
    await page.reload()

    async def renewed() -> bool:
        now = await page.evaluate("JSON.parse(sessionStorage.getItem('callcenter.session'))")
        return now["token"] != session["token"] and now["renew_at"] > 0

    await eventually(renewed, 15)
    await expect(page.locator("#link")).to_have_text("live", timeout=15_000)
    assert rig.center.auth.verify(session["token"]) is not None  # renewal does not revoke the old one
    assert errors.items == []
