"""The admins' users page in a real browser, in Russian and in English: create a user (the
company's hours given, or not and then said), reset a password (the user signs in with the new
one, the old session is gone), deactivate."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.schedules.models import ScheduleInterval
from crm_core.users.models import User
from tests.conftest import UserFactory
from tests.web.live import chromium_available, live_service, watch_errors
from web.container import Container

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Browser, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")

ADMIN = ("adm", "pw-adm-1")
TEXTS = {
    "ru": {
        "title": "Пользователи",
        "scheduled": "по графику",
        "never": "нет графика: звонки не поступают",
        "inactive": "отключён",
    },
    "en": {
        "title": "Users",
        "scheduled": "by schedule",
        "never": "no schedule: never routed",
        "inactive": "deactivated",
    },
}


async def _sign_in(api: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await api.post("/api/auth/token", data={"username": login, "password": password})


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_an_admin_creates_resets_and_deactivates_a_user(
    lang: str,
    container: Container,
    browser: Browser,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await make_user(role="admin", login=ADMIN[0], password=ADMIN[1], full_name="Anna Admin")
    words = TEXTS[lang]
    errors: list[str] = []
    context = await browser.new_context(
        viewport={"width": 1366, "height": 768}, locale="ru-RU" if lang == "ru" else "en-US"
    )
    page: Any = await context.new_page()
    page.set_default_timeout(15_000)
    watch_errors(page, errors)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations
    try:
        async with live_service(container) as live, httpx.AsyncClient(base_url=live.url) as api:
            await page.goto(live.url + "/")
            await page.fill("#login", ADMIN[0])
            await page.fill("#password", ADMIN[1])
            await page.click("#login-submit")
            await page.wait_for_load_state()
            await page.get_by_test_id("nav-admin-users").click()
            await page.wait_for_url("**/admin/users")
            await expect(page.locator("h2")).to_have_text(words["title"])

            # a new operator, password left to the page: shown once
            await page.get_by_test_id("new-login").fill("olga")
            await page.get_by_test_id("new-name").fill("Olga Operator")
            await page.get_by_test_id("new-extension").fill("201")
            await page.get_by_test_id("create").click()
            olga = page.locator('tr[data-login="olga"]')
            await expect(olga.get_by_test_id("routing")).to_have_text(words["scheduled"])
            first = await page.get_by_test_id("secret-password").inner_text()
            signed = await _sign_in(api, "olga", first)
            assert signed.status_code == 200, signed.text
            old = {"Authorization": f"Bearer {signed.json()['access_token']}"}
            assert (await api.get("/api/auth/me", headers=old)).status_code == 200

            # one without the company's hours: the page says what that means
            await page.get_by_test_id("new-login").fill("pavel")
            await page.get_by_test_id("new-extension").fill("202")
            await page.get_by_test_id("new-password").fill("pavel-pw")
            await page.get_by_test_id("new-schedule").uncheck()
            await page.get_by_test_id("create").click()
            pavel = page.locator('tr[data-login="pavel"]')
            await expect(pavel.get_by_test_id("routing")).to_contain_text(words["never"])

            # reset olga's password: a new temporary one, her session ends
            await olga.get_by_test_id("reset-password").click()
            secret = page.get_by_test_id("secret-password")
            await expect(secret).not_to_have_text(first)
            second = await secret.inner_text()
            assert (await api.get("/api/auth/me", headers=old)).status_code == 401
            assert (await _sign_in(api, "olga", first)).status_code == 401
            assert (await _sign_in(api, "olga", second)).status_code == 200

            # change her role and extension
            await olga.get_by_test_id("role").select_option("manager")
            await olga.get_by_test_id("extension").fill("203")
            await olga.get_by_test_id("save").click()
            await expect(page.get_by_test_id("list-status")).to_contain_text("olga")

            # deactivate her: she cannot sign in any more
            await page.locator('tr[data-login="olga"]').get_by_test_id("deactivate").click()
            await expect(
                page.locator('tr[data-login="olga"]').get_by_test_id("state")
            ).to_have_text(words["inactive"])
            assert (await _sign_in(api, "olga", second)).status_code == 401
    finally:
        await context.close()
    assert not errors, errors
    async with sessions() as s:
        users = {u.login: u for u in await s.scalars(select(User))}
        hours = list(
            await s.scalars(
                select(ScheduleInterval.weekday).where(ScheduleInterval.user_id == users["olga"].id)
            )
        )
        pavel_hours = await s.scalar(
            select(ScheduleInterval.id).where(ScheduleInterval.user_id == users["pavel"].id)
        )
    olga_row = users["olga"]
    assert (olga_row.role, olga_row.extension, olga_row.is_active) == ("manager", "203", False)
    assert olga_row.full_name == "Olga Operator"
    assert sorted(hours) == [0, 1, 2, 3, 4] and pavel_hours is None
