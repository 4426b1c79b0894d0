"""The browser phone over HTTPS/WSS (``http.tls``) with a TURN server configured (issue 15):
chromium (trusting nothing: ``--ignore-certificate-errors`` for the test's own CA) loads the
desk over https, the phone's signalling goes over wss and registers, and the configured
TURN server reaches both the page's RTCPeerConnection and the server's aiortc side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callcenter import events as ev
from callcenter.web.pages import mount_pages
from tests.support.certs import make_pki
from tests.support.peers import watch
from tests.web.browser_rig import playwright_api
from tests.webrtc.conftest import chromium_with_mic, loopback_ice

TURN = {"url": "turn:127.0.0.1:3478?transport=udp", "username": "desk", "credential": "s3cret"}
T = 30_000
# Records the configuration every RTCPeerConnection of the page is built with.
RECORD_PC_CONFIG = """
const Native = window.RTCPeerConnection;
window.pcConfigs = [];
window.RTCPeerConnection = function (config, ...rest) {
  window.pcConfigs.push(JSON.parse(JSON.stringify(config || {})));
  return new Native(config, ...rest);
};
window.RTCPeerConnection.prototype = Native.prototype;
"""


async def test_browser_phone_registers_over_wss_with_turn_configured(
    rig_factory: Any, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")

    def edit(server: dict[str, Any]) -> None:
        loopback_ice(server)
        server["webrtc"]["turn"] = TURN
        server["http"]["tls"] = {"cert_file": str(pki.cert), "key_file": str(pki.key)}

    rig = await rig_factory(server_edit=edit)
    mount_pages(rig.center.app)
    log = watch(rig)
    expect = playwright_api().expect
    async with chromium_with_mic(tmp_path, "--ignore-certificate-errors") as page:
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        await page.add_init_script(RECORD_PC_CONFIG)
        await page.goto(f"https://127.0.0.1:{rig.center.http_port}/desk")
        await page.fill("#login-username", "1003")
        await page.fill("#login-password", "demo-1003")
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#link")).to_have_text("live", timeout=T)
        await page.check("#phone-mode-browser")
        await expect(page.locator("#phone-state")).to_have_attribute("data-state", "registered", timeout=T)
        await log.wait(ev.AgentDeviceChanged, agent_id="1003", softphone=True)
        phone_sockets = [u for u in sockets if u.endswith("/api/phone/ws")]
        assert phone_sockets and all(u.startswith("wss://") for u in phone_sockets)
        configs = await page.evaluate("window.pcConfigs")
        assert configs and configs[-1]["iceServers"] == [
            {"urls": TURN["url"], "username": TURN["username"], "credential": TURN["credential"]}]
    # the server's peer connections are built with the same server (docs/webrtc.md: used for
    # gathering only when webrtc.ice_hosts is empty)
    servers = rig.center.phones.ice_servers
    assert [(s.urls, s.username, s.credential) for s in servers] == [
        (TURN["url"], TURN["username"], TURN["credential"])]
