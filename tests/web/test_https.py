"""http.tls: the web app over HTTPS and its live feed over WSS, with a certificate made by
the test; clients trust the test CA and nothing else."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from browser_rig import playwright_api

from callcenter.web.pages import mount_pages
from callcenter.web.tokens import ws_subprotocols
from tests.support.certs import Pki, make_pki
from tests.support.rig import Rig


async def https_rig(rig_factory: Any, pki: Pki) -> Rig:
    def edit(server: dict[str, Any]) -> None:
        server["http"]["tls"] = {"cert_file": str(pki.cert), "key_file": str(pki.key)}

    return await rig_factory(server_edit=edit)


async def test_https_healthz_login_and_a_wss_feed(rig_factory: Any, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    rig = await https_rig(rig_factory, pki)
    base = f"https://127.0.0.1:{rig.center.http_port}"
    trust = ssl.create_default_context(cafile=str(pki.ca))
    async with httpx.AsyncClient(base_url=base, verify=trust, timeout=10) as client:
        r = await client.get("/healthz")
        assert r.status_code == 200, r.text
        r = await client.post("/api/login", json={"username": "1001", "password": "demo-1001"})
        assert r.status_code == 200, r.text
        token = r.json()["token"]
    wss = f"wss://127.0.0.1:{rig.center.http_port}/ws"
    async with websockets.connect(wss, ssl=trust, subprotocols=ws_subprotocols(token)) as ws:
        assert json.loads(await ws.recv())["type"] == "snapshot"
    # plain HTTP on the TLS port gets nowhere, and a client not trusting the CA is refused
    async with httpx.AsyncClient(timeout=5) as plain:
        with pytest.raises(httpx.HTTPError):
            await plain.get(f"http://127.0.0.1:{rig.center.http_port}/healthz")
        with pytest.raises(httpx.ConnectError):
            await plain.get(f"{base}/healthz")


async def test_the_desk_page_goes_live_over_https_and_wss(
    rig_factory: Any, browser: Any, tmp_path: Path
) -> None:
    rig = await https_rig(rig_factory, make_pki(tmp_path / "pki"))
    mount_pages(rig.center.app)
    context = await browser.new_context(ignore_https_errors=True)  # chromium does not know the test CA
    try:
        page = await context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        await page.goto(f"https://127.0.0.1:{rig.center.http_port}/desk")
        await page.fill("#login-username", "1001")
        await page.fill("#login-password", "demo-1001")
        await page.click("#login-form button[type=submit]")
        await playwright_api().expect(page.locator("#link")).to_have_text("live", timeout=30_000)
        assert sockets and all(url.startswith("wss://") for url in sockets)
    finally:
        await context.close()
