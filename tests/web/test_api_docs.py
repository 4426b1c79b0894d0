"""``/docs`` renders in a browser with no internet: Swagger UI comes from this server
(/vendor/swagger-ui/, npm's swagger-ui-dist), not from a CDN."""

from __future__ import annotations

from typing import Any

from browser_rig import PageErrors, playwright_api

pw = playwright_api()
expect = pw.expect
T = 30_000  # ms


async def test_docs_render_the_operations_from_local_assets(rig: Any, new_page: Any) -> None:
    page = await new_page()
    errors = PageErrors(page)
    elsewhere: list[str] = []

    async def offline(route: Any) -> None:  # the test machine has no internet either way
        if not route.request.url.startswith(rig.http):
            elsewhere.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()

    await page.route("**/*", offline)
    await page.goto(f"{rig.http}/docs")
    login = page.locator(".opblock-summary-path[data-path='/api/login']")
    await expect(login.first).to_be_visible(timeout=T)
    await expect(page.locator(".opblock").first).to_be_visible()
    assert elsewhere == []
    assert errors.items == []
