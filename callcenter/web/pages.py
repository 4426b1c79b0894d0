"""The agent desk and supervisor pages, served by the CTI app itself.

Plain HTML, CSS and JavaScript files in ``pages/`` — no build step, no
framework, nothing fetched from a CDN — so the server works air-gapped and the
pages are exactly the files in the repository. They talk to the same REST API
and WebSocket that any other desktop uses; this module only serves files.

The HTML goes out with a strict Content-Security-Policy (scripts and styles
from this origin only, no inline code): customer names, notes and IVR data are
caller-controlled text, and the pages only ever put them in ``textContent``;
the policy is the second line of defence.
"""

from __future__ import annotations

import logging
import os
from os import PathLike
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

log = logging.getLogger(__name__)
PAGES_DIR = Path(__file__).with_name("pages")
# Browser libraries from npm (package.json at the repository root, installed into node_modules
# by the bootstrap, never committed), each served from its dist folder under /vendor/<name>/.
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
VENDOR = {
    "uplot": NODE_MODULES / "uplot" / "dist",
    "swagger-ui": NODE_MODULES / "swagger-ui-dist",  # /docs (callcenter/web/api_docs.py)
}
ASSETS_PREFIX = "/pages"

# 'self' in connect-src covers ws:/wss: to the same host in CSP Level 3 browsers; media-src
# 'self' lets the record view's <audio> play call recordings (/recordings/..., docs/recording.md).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# no-cache = revalidate every time: an upgraded server never runs against stale page code.
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Assets(StaticFiles):
    """Static files with the same no-cache/nosniff headers as the pages."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES_DIR / name, media_type="text/html; charset=utf-8", headers=HEADERS)


def mount_pages(app: FastAPI) -> None:
    """Add ``GET /`` (→ /desk), ``/desk``, ``/supervisor``, ``/reports``, ``/pages/*`` assets and the
    ``/vendor/*`` libraries to ``app``.

    Safe to call more than once (a second call does nothing), so a test can mount
    the pages on an app whose factory may already have done so.
    """
    if getattr(app.state, "pages_mounted", False):
        return
    app.state.pages_mounted = True

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/desk", status_code=307)

    @app.get("/desk", include_in_schema=False)
    async def desk() -> FileResponse:
        return _page("desk.html")

    @app.get("/supervisor", include_in_schema=False)
    async def supervisor() -> FileResponse:
        return _page("supervisor.html")

    @app.get("/reports", include_in_schema=False)
    async def reports() -> FileResponse:
        return _page("reports.html")

    for name, directory in VENDOR.items():
        if directory.is_dir():
            app.mount(f"/vendor/{name}", _Assets(directory=directory), name=f"vendor-{name}")
        else:  # the pages still work; their charts (or /docs) say the library is missing
            log.warning("%s not installed (npm ci --omit=dev): %s unavailable", directory, name)

    app.mount(ASSETS_PREFIX, _Assets(directory=PAGES_DIR), name="pages")
