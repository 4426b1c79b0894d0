"""Fixtures for the web-page tests: the whole server (the callpath ``rig``) with the pages
mounted, and a headless chromium in the same event loop.

The async Playwright API is used, in the test's own loop, because the server under test
(``Center``: SIP, media, HTTP) runs in that loop too: one test can then click in the
page and await the server's bus events, baresip's events and the CRM without threads or
cross-loop hand-offs. Playwright's calls are I/O on a pipe to its driver process, so
they never block the loop that is serving the page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from browser_rig import CHROMIUM_ARGS, VIEWPORT, chromium_path, playwright_api

from callcenter.web.pages import mount_pages
from tests.support import rig as shared

# The callpath tests' server (a started Center plus baresip/caller peers), made one of this
# folder's fixtures (pytest finds fixtures as module attributes).
rig_factory = shared.rig_factory


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
