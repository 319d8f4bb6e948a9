"""What the page shell stands on: GET/PATCH /api/auth/me (role's pages, language, company time
zone), the sign-in page's fallback language, the pages table, and the PBX light over /ws."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import connect

from crm_core.users.models import ROLES, User
from tests.conftest import UserFactory
from tests.web.test_i18n import CATALOGUES, load
from tests.web.test_ws import Launch, launch, recv, silent, subscribed, token_of
from web import pages_routes, ws
from web.settings import Settings

__all__ = ["launch"]  # the fixture, used by name

pytestmark = pytest.mark.usefixtures("db")

EXPECTED_NAV = {
    "operator": ["/operator", "/schedules"],
    "manager": ["/operator", "/schedules", "/reports"],
    "supervisor": ["/operator", "/dashboard", "/schedules", "/reports"],
    "admin": ["/operator", "/dashboard", "/schedules", "/reports"],
}


async def locale_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> str | None:
    async with sessions() as s:
        return (await s.execute(select(User.locale).where(User.id == user_id))).scalar_one()


async def test_me_names_the_pages_of_the_role_the_zone_and_the_fallback_language(
    api: httpx.AsyncClient, make_user: UserFactory, settings: Settings
) -> None:
    for role in ROLES:
        _, h = await make_user(role=role)
        me = (await api.get("/api/auth/me", headers=h)).json()
        assert me["role"] == role
        assert [p["path"] for p in me["pages"]] == EXPECTED_NAV[role]
        assert all(p["label"].startswith("nav.") for p in me["pages"])
        assert me["company_timezone"] == settings.core.default_timezone
        assert me["default_locale"] == settings.core.default_locale
        assert me["locale"] is None


async def test_a_user_sets_their_own_language_and_nothing_else(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user, h = await make_user(role="operator")
    r = await api.patch("/api/auth/me", json={"locale": "en"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["locale"] == "en"
    assert await locale_of(sessions, user.id) == "en"
    r = await api.patch("/api/auth/me", json={"locale": "ru"}, headers=h)
    assert await locale_of(sessions, user.id) == "ru"
    # null: no choice, the browser decides again
    r = await api.patch("/api/auth/me", json={"locale": None}, headers=h)
    assert r.status_code == 200 and r.json()["locale"] is None
    assert await locale_of(sessions, user.id) is None
    # a language the pages are not written in, or anything privileged: refused, nothing changed
    await api.patch("/api/auth/me", json={"locale": "ru"}, headers=h)
    for body in ({"locale": "de"}, {"locale": "en", "role": "admin"}, {"is_active": False}, {}):
        r = await api.patch("/api/auth/me", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
    async with sessions() as s:
        row = (await s.execute(select(User).where(User.id == user.id))).scalar_one()
        assert (row.locale, row.role, row.is_active) == ("ru", "operator", True)
    assert (await api.patch("/api/auth/me", json={"locale": "en"})).status_code == 401


async def test_the_sign_in_page_learns_the_fallback_language_without_a_token(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    r = await api.get("/api/auth/locale")
    assert r.status_code == 200
    assert r.json() == {"default_locale": settings.core.default_locale}


async def test_every_page_of_the_table_is_served_and_its_label_translated(
    api: httpx.AsyncClient,
) -> None:
    en = load(CATALOGUES / "shell.en.js")
    for page in pages_routes.PAGES:
        r = await api.get(page.path)
        assert r.status_code == 200, page.path
        assert r.headers["content-type"].startswith("text/html")
        scripts = re.findall(r"<script\b[^>]*>", r.text)
        assert scripts and all("src=" in tag for tag in scripts), page.path  # none inline
        if page.label:
            assert page.label in en, page.label
    assert (await api.get("/no-such-page")).status_code == 404


async def test_the_pbx_light_comes_when_asked_and_follows_changes(
    launch: Launch, make_user: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws, "STATUS_POLL_SECONDS", 0.05)
    token = await token_of(make_user, role="operator", extension="101")
    async with launch() as instance:
        async with connect(instance.ws) as plain:
            await plain.send(json.dumps({"token": token}))
            await subscribed(plain)
            await silent(plain)  # not asked: nothing but events
        async with connect(instance.ws) as page:
            await page.send(json.dumps({"token": token, "status": True}))
            await subscribed(page)
            # at once: what the health endpoint says of the AMI link (no PBX here: not "up")
            first = await recv(page)
            async with httpx.AsyncClient() as client:
                now = (await client.get(instance.http + "/api/health")).json()
            assert first == {"type": "system.status", "ami": now["parts"]["ami"]}
            assert first["ami"] in ("down", "standby")
            # then each change: AMI switched off on this instance
            instance.container.settings.telephony.ami_enabled = False
            assert await recv(page) == {"type": "system.status", "ami": "disabled"}
            await silent(page)  # no repeat while nothing changes
