"""`/docs` and `/redoc` on a machine without the internet: every asset comes from the service.

A real chromium whose every request to another host is aborted (as offline) must still draw
Swagger UI's operations and ReDoc's reference; the only outside request is ReDoc's logo.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.web.live import chromium_available, live_service
from web.container import Container

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Browser, Route, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # hard-wired in ReDoc's sidebar


async def test_api_docs_draw_with_the_network_blocked(
    container: Container, browser: Browser
) -> None:
    outside: list[str] = []
    context = await browser.new_context(viewport={"width": 1366, "height": 860})

    async def offline(route: Route) -> None:
        if urlsplit(route.request.url).hostname not in ("127.0.0.1", None):
            outside.append(route.request.url)
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await context.route("**/*", offline)
    served: list[str] = []
    try:
        async with live_service(container) as live:
            page: Any = await context.new_page()
            page.on("response", lambda r: served.append(urlsplit(r.url).path))
            await page.goto(live.url + "/docs")
            await expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
            await expect(
                page.locator(".opblock-summary-path", has_text="/api/users/{user_id}/password")
            ).to_have_count(1)
            redoc: Any = await context.new_page()
            redoc.on("response", lambda r: served.append(urlsplit(r.url).path))
            await redoc.goto(live.url + "/redoc")
            # ReDoc draws the whole reference at once: seconds on a busy machine
            await expect(redoc.get_by_text("/api/messages/channels").first).to_be_attached(
                timeout=30_000
            )
    finally:
        await context.close()
    assert set(outside) <= {REDOC_LOGO}
    assert {
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
        "/docs-assets/redoc.standalone.js",
        "/openapi.json",
    } <= set(served)
