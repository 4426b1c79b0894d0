"""``GET /docs``: the interactive API reference, with Swagger UI served by this server.

FastAPI's own /docs page loads Swagger UI from a CDN, so it is blank on an air-gapped
server. This page is the same one built on the copy of ``swagger-ui-dist`` that the
bootstrap installs from package.json and ``mount_pages`` serves under ``/vendor/swagger-ui/``.
The app is created with ``docs_url=None`` so this route replaces FastAPI's.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

SWAGGER_UI = "/vendor/swagger-ui"


def mount_api_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API reference",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        )
