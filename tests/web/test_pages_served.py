"""Each page of web/pages_routes.PAGES is served whole: the one shared head (charset, viewport,
app.css), the page's own stylesheets after it (each one a file the service serves), then the
page's body with its own script; built once at start-up, the same on every request."""

from __future__ import annotations

import re

import httpx
import pytest

from web.pages_routes import PAGES, PAGES_DIR

pytestmark = pytest.mark.usefixtures("db")


async def test_every_page_is_the_shared_head_its_styles_and_its_body(
    api: httpx.AsyncClient,
) -> None:
    for page in PAGES:
        r = await api.get(page.path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
        html = r.text
        assert html.startswith("<!doctype html>") and html.count("<head>") == 1, page.path
        assert '<meta charset="utf-8">' in html and 'name="viewport"' in html, page.path
        head, body = html.split("</head>", 1)
        sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)">', head)
        assert sheets == ["/static/app.css", *(f"/static/{css}" for css in page.styles)], page
        for sheet in sheets:
            assert (await api.get(sheet)).status_code == 200, sheet
        own = (PAGES_DIR / page.html).read_text(encoding="utf-8")
        assert body.strip().startswith("<body") and own.strip() in body, page.path
        assert re.search(r'<script type="module" src="/static/[\w/]+\.js"></script>', body), page
        assert html.rstrip().endswith("</html>"), page.path
        # served from what was built at start-up: a second request is the same text
        assert (await api.get(page.path)).text == html, page.path
