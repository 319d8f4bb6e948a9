"""Security headers: the Content-Security-Policy, no sniffing or framing, uncached tokens, and
the API docs served from this service with no inline script."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import UserFactory

pytestmark = pytest.mark.usefixtures("db")

PAGES = Path(__file__).resolve().parents[2] / "web" / "pages"


async def test_every_response_carries_the_policy(api: httpx.AsyncClient) -> None:
    paths = ["/", "/operator", "/dashboard", "/schedules", "/docs", "/redoc"]
    paths += ["/static/operator.js", "/api/health", "/api/clients", "/openapi.json"]
    for path in paths:
        r = await api.get(path)
        csp = r.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
        assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]
        assert r.headers["x-content-type-options"] == "nosniff", path


async def test_token_responses_are_never_cached(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    await make_user(role="manager", login="mia", password="pw-mia")
    r = await api.post("/api/auth/token", data={"username": "mia", "password": "pw-mia"})
    assert r.status_code == 200 and r.json()["access_token"]
    assert r.headers["cache-control"] == "no-store"
    bad = await api.post("/api/auth/token", data={"username": "mia", "password": "nope"})
    assert bad.status_code == 401 and bad.headers["cache-control"] == "no-store"
    me = await api.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert me.headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script_or_handler() -> None:
    for page in PAGES.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page.name
        assert not re.search(r"\son[a-z]+\s*=", html), page.name


async def test_api_docs_load_their_assets_from_this_service(api: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        r = await api.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert sources and all(s.startswith("/") for s in sources), (path, sources)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
        for source in sources:
            asset = await api.get(source)
            assert asset.status_code == 200 and len(asset.content) > 400, source
