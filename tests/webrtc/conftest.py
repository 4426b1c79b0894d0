"""Fixtures for the browser phone tests: the whole server (the callpath rig) with the desk
served and a headless Debian chromium with fake media devices.

Loopback ICE: aioice never gathers on 127.0.0.1 by itself and Chromium ignores loopback
candidates unless told otherwise, so the server is configured with
``webrtc.ice_hosts: [127.0.0.1]`` and chromium runs with ``--allow-loopback-in-peer-connection``:
both ends of the WebRTC leg are on 127.0.0.1, no network namespace or interface needed.
The microphone is a WAV file (a steady 440 Hz tone), so what reaches the caller can be
told apart from anything the server plays.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.web.pages import mount_pages
from tests.support import rig as shared
from tests.support.peers import tone_wav
from tests.web.browser_rig import CHROMIUM_ARGS, VIEWPORT, chromium_path, playwright_api

rig_factory = shared.rig_factory
MIC_HZ = 440.0


def loopback_ice(server: dict[str, Any]) -> None:
    server["webrtc"] = {"ice_hosts": ["127.0.0.1"]}


def aiortc_path(server: dict[str, Any]) -> None:
    """Loopback ICE with every packet on aiortc's path (the fallback of a relayed line)."""
    server["webrtc"] = {"ice_hosts": ["127.0.0.1"], "lean_media": False}


@pytest.fixture
async def phone_rig(rig_factory: Any, request: Any) -> Any:
    """The running Center (rtp.workers from the test's parameter, default 1; "aiortc": one,
    with webrtc.lean_media off) with pages."""
    param = getattr(request, "param", 1)
    workers = 1 if param == "aiortc" else param
    from tests.support.rig import short_ring

    def queues(q: dict[str, Any]) -> None:
        short_ring(q)
        q["queues"]["sales"]["reservation_timeout_s"] = 60  # the browser answers well within it

    r = await rig_factory(queues, media_workers=workers,
                          server_edit=aiortc_path if param == "aiortc" else loopback_ice)
    mount_pages(r.center.app)
    return r


@pytest.fixture
async def short_ring_rig(rig_factory: Any) -> Any:
    """As ``phone_rig``, with the 2 s ring of tests/support/rig.py (RONA comes quickly)."""
    from tests.support.rig import short_ring

    r = await rig_factory(short_ring, server_edit=loopback_ice)
    mount_pages(r.center.app)
    return r


@contextlib.asynccontextmanager
async def chromium_with_mic(tmp_path: Path, *extra: str, freq: float = MIC_HZ) -> AsyncIterator[Any]:
    """A page in headless chromium whose microphone is a steady tone (440 Hz unless told)."""
    mic = tone_wav(tmp_path / f"mic-{freq:g}.wav", seconds=60.0, freq=freq)
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}", "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required", *extra]  # fmt: skip
    api = playwright_api()
    async with api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium_path(), args=args)
        try:
            ctx = await b.new_context(viewport=VIEWPORT, permissions=["microphone"])
            yield await ctx.new_page()
        finally:
            await b.close()


@pytest.fixture
async def phone_browser(tmp_path: Path) -> AsyncIterator[Any]:
    async with chromium_with_mic(tmp_path) as page:
        yield page
