"""Fixtures for the web-page tests: the whole server (the callpath ``rig``) with the pages
mounted, and a headless chromium in the same event loop.

The async Playwright API is used, in the test's own loop, because the server under test
(``Center``: SIP, media, HTTP) runs in that loop too: one test can then click in the
page and await the server's bus events, baresip's events and the CRM without threads or
cross-loop hand-offs. Playwright's calls are I/O on a pipe to its driver process, so
they never block the loop that is serving the page.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser_rig import CHROMIUM_ARGS, VIEWPORT, chromium_path, playwright_api

from callcenter.web.pages import mount_pages

CALLPATH = Path(__file__).resolve().parents[1] / "callpath"

# Reuse the callpath rig (a started Center plus baresip/caller peers) rather than copy it:
# load its conftest under a private name and take its fixtures.
if str(CALLPATH) not in sys.path:
    sys.path.insert(0, str(CALLPATH))
_spec = importlib.util.spec_from_file_location("callpath_rig_fixtures", CALLPATH / "conftest.py")
assert _spec is not None and _spec.loader is not None
_callpath = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_callpath)
rig_factory = _callpath.rig_factory


@pytest.fixture
async def rig(rig_factory: Any) -> Any:
    """The running Center, with the desk and supervisor pages served by its app.

    ``mount_pages`` is idempotent, so this holds whether or not ``create_app`` mounts them."""
    r = await rig_factory()
    mount_pages(r.center.app)
    return r


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    api = playwright_api()
    exe = chromium_path()
    async with api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def new_page(browser: Any) -> AsyncIterator[Any]:
    """A factory of fresh pages, each in its own context (own sessionStorage: one login each)."""
    contexts: list[Any] = []

    async def make() -> Any:
        ctx = await browser.new_context(viewport=VIEWPORT)
        contexts.append(ctx)
        return await ctx.new_page()

    yield make
    for ctx in contexts:
        await ctx.close()
