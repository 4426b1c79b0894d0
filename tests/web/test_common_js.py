"""The pages' shared module (common.js) in the browser: frame parsing, formatting and
that caller-controlled text never becomes markup. Served by a bare app with only the pages."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from browser_rig import PageErrors, playwright_api
from fastapi import FastAPI

from callcenter.web.channel_api import mount_channel_scripts
from callcenter.web.pages import mount_pages

pw = playwright_api()
expect = pw.expect


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    app = FastAPI()
    mount_pages(app)
    mount_channel_scripts(app)  # the desk page asks which channel panels to load
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()


async def run(page: Any, body: str) -> Any:
    return await page.evaluate(f"async () => {{ const c = await import('/pages/common.js'); {body} }}")


async def test_common_module_in_the_browser(origin: str, new_page: Any) -> None:
    page = await new_page()
    errors = PageErrors(page)
    await page.goto(f"{origin}/desk")
    await expect(page.locator("#login")).to_be_visible()

    # Python's json writes Infinity/NaN; the page reads them as null, and leaves strings alone.
    parsed = await run(
        page,
        """return c.parseFrame('{"ewt_s":Infinity,"x":-Infinity,"y":NaN,'
                                + '"name":"NaN \\\\"Infinity\\\\" ok","n":[1,Infinity]}');""",
    )
    assert parsed == {"ewt_s": None, "x": None, "y": None, "name": 'NaN "Infinity" ok', "n": [1, None]}
    assert await run(page, "return c.parseFrame('not json');") is None

    formatted = await run(
        page,
        """return [c.duration(75), c.duration(3725), c.duration(null),
        c.duration(Infinity), c.percent(87.25), c.percent(null), c.label('not_ready'), c.label('')];""",
    )
    assert formatted == ["1:15", "1:02:05", "—", "—", "87.3%", "—", "Not ready", "—"]

    # Text from callers (customer names, IVR data) goes in as text, never as markup.
    html = await run(
        page,
        """const n = c.el('td', {}, '<img src=x onerror="window.pwned=1">');
        document.body.append(n); return [n.innerHTML, n.children.length, window.pwned === undefined];""",
    )
    assert html == ['&lt;img src=x onerror="window.pwned=1"&gt;', 0, True]
    assert errors.items == []
