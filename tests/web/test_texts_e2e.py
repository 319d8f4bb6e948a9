"""Russian in a real browser (issue 14, "Language"): the demo starts in Russian for a Russian
browser, and an error the server refuses a move with is shown in the page's language (the
server's code translated by lib/api.js), not as the server's English."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.deals import repository
from crm_core.deals.models import Deal, DealChoice
from tests.conftest import UserFactory
from tests.deals_pipeline import pipeline_kept
from tests.web.live import chromium_available, live_service, open_signed_in, watch_errors
from web.container import Container
from web.demo import DEMO_USERS, demo_info, mount_demo, seed_demo
from web.demo_sinks import DemoOutbox, SmtpSink
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Browser, Route, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
async def kept(db: AsyncEngine) -> AsyncIterator[None]:
    async with pipeline_kept(db):
        yield


async def test_the_demo_starts_in_russian_for_a_russian_browser(
    container: Container, settings: Settings, browser: Browser
) -> None:
    await seed_demo(container)
    sink = SmtpSink(DemoOutbox())
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    watch_errors(page, errors)
    try:
        async with live_service(container) as live:
            mount_demo(live.app, DemoOutbox(), demo_info(settings, sink, "replay"))
            await page.goto(live.url + "/")
            await expect(page.locator("#login-submit")).to_have_text("Войти")
            assert await page.evaluate("document.documentElement.lang") == "ru"
            banner = page.get_by_test_id("demo-banner")
            await expect(banner.locator("h2")).to_have_text("Демо: войдите как")
            await expect(banner.locator("li")).to_have_count(len(DEMO_USERS))
            # the roles in words, not the server's English names
            await expect(banner.locator('li[data-login="manager"]')).to_contain_text("менеджер")
            await expect(banner.locator('li[data-login="admin"]')).to_contain_text("администратор")
            await expect(banner).not_to_contain_text("operator,")
            # signed in from the banner: the workspace is Russian too
            await page.click("[data-testid=demo-use-manager]")
            await page.click("#login-submit")
            await page.wait_for_url("**/operator")
            await expect(page.locator("#logout")).to_have_text("Выйти")
            assert await page.evaluate("document.documentElement.lang") == "ru"
    finally:
        await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.mark.usefixtures("kept")
async def test_a_lost_move_the_server_refuses_is_explained_in_russian(
    container: Container,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    browser: Browser,
) -> None:
    manager, headers = await make_user(role="manager", full_name="Анна Петрова")
    async with sessions() as s:
        s.add(DealChoice(kind="lost_reason", name="Дорого", position=0))
        client = Client(name="ООО Ромашка", responsible_id=manager.id)
        s.add(client)
        await s.flush()
        first = (await repository.stages(s))[0]
        lost_stage = next(x for x in await repository.stages(s) if x.kind == "lost")
        deal = Deal(
            client_id=client.id, title="Поставка", stage_id=first.id, responsible_id=manager.id
        )
        s.add(deal)
        await s.commit()
        deal_id, lost_id = deal.id, lost_stage.id

    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    watch_errors(page, errors)
    refused: list[dict[str, Any]] = []

    async def without_reason(route: Route) -> None:
        # the page asks a reason before it sends; this request loses it on the way, so the
        # real server answers its real 422
        body = json.loads(route.request.post_data or "{}")
        body.pop("lost_reason", None)
        response = await route.fetch(post_data=json.dumps(body))
        refused.append({"status": response.status, **(await response.json())})
        await route.fulfill(response=response)

    try:
        async with live_service(container) as live:
            await page.route("**/api/deals/*/stage", without_reason)
            await open_signed_in(page, live, headers, "/deals")
            card = page.locator(f'[data-deal-id="{deal_id}"]')
            await card.drag_to(page.locator(f'.deals-col[data-stage-id="{lost_id}"]'))
            await page.select_option("#move-reason", label="Дорого")
            await page.click("#move-ok")
            status = page.get_by_test_id("deals-status")
            await expect(status).to_have_text("Ошибка: Для проигранной сделки нужна причина отказа")
            await expect(status).not_to_contain_text("lost_reason")
    finally:
        await context.close()
    assert refused == [
        {
            "status": 422,
            "detail": "a move to a lost stage needs a lost_reason",
            "code": "deal.lost_reason_required",
        }
    ]
    async with sessions() as s:
        kept_open = await s.get(Deal, deal_id)
        assert kept_open is not None and kept_open.closed_at is None
    assert not errors, f"JavaScript errors on the page: {errors}"
