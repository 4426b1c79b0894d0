"""The customer pages: ``/chat`` (the demo page) and ``/chat/widget.js`` (+ its stylesheet).

The widget is one plain script (no build step, no library) that any site includes with one
tag; it is served with ``Access-Control-Allow-Origin: *`` like any public script, and what it
may then do is decided by the server: the WebSocket and the form posts check the page's origin
against ``allowed_origins``. The demo page gets the same strict CSP as the desk.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from callcenter.web.pages import HEADERS, PAGES_DIR

PUBLIC = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
          "Access-Control-Allow-Origin": "*"}  # fmt: skip


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/chat")
    async def demo() -> FileResponse:
        return FileResponse(PAGES_DIR / "chat.html", media_type="text/html; charset=utf-8", headers=HEADERS)

    @r.get("/chat/widget.js")
    async def widget() -> FileResponse:
        return FileResponse(PAGES_DIR / "widget.js", media_type="text/javascript; charset=utf-8",
                            headers=PUBLIC)  # fmt: skip

    @r.get("/chat/widget.css")
    async def widget_css() -> FileResponse:
        return FileResponse(PAGES_DIR / "chat_widget.css", media_type="text/css; charset=utf-8",
                            headers=PUBLIC)  # fmt: skip

    return r
