"""The /reports page in a real browser on the seeded month of test_sales_reports: the tables show
the hand-worked figures in English and in Russian, the charts are drawn (uPlot, served by the
service), CSV downloads, and a manager sees only their own row and no queues."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.reports.models import SalesPlan
from tests.conftest import UserFactory
from tests.web.live import LiveService, chromium_available, live_service
from tests.web.test_results_report import seed as seed_results
from tests.web.test_sales_reports import seed
from web.container import Container

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")


async def open_reports(
    page: Page, live: LiveService, login: str, password: str, lands: str
) -> None:
    await page.goto(live.url + "/")
    await page.fill("#login", login)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_url(f"**{lands}")
    await page.goto(live.url + "/reports")
    await expect(page.locator("body[data-reports-ready='1']")).to_have_count(1)
    await page.fill("#from", "2026-02-01")
    await page.fill("#to", "2026-02-28")
    await page.fill("#day", "2026-02-10")
    await page.click("#load")
    await expect(page.locator("body[data-reports-ready='2']")).to_have_count(1)


async def test_reports_page_in_both_languages_with_charts_and_csv(
    container: Container,
    page: Page,
    browser: Any,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    m1, _ = await make_user(
        role="manager", extension="101", login="m1", password="pw-m1", full_name="Maria One"
    )
    m2, _ = await make_user(role="manager", extension="102", full_name="Mikhail Two")
    await make_user(role="supervisor", login="sup", password="pw-sup", full_name="Sofia Sup")
    await make_user(role="supervisor", login="sup-ru", password="pw-ru", locale="ru")
    await seed(sessions, m1.id, m2.id)
    await seed_results(sessions, m1.id, m2.id, month=2)
    async with sessions() as s:
        s.add(SalesPlan(user_id=m1.id, month=date(2026, 2, 1), amount=Decimal(1000)))
        s.add(SalesPlan(user_id=m2.id, month=date(2026, 2, 1), amount=Decimal(500)))
        await s.commit()

    async with live_service(container) as live:
        await open_reports(page, live, "sup", "pw-sup", "/dashboard")
        maria = page.locator("#sales tr", has_text="Maria One").locator("td")
        await expect(maria.nth(1)).to_have_text("3")  # calls in: two answered, one missed
        await expect(maria.nth(9)).to_have_text("1,000.00")
        await expect(maria.nth(10)).to_have_text("50.0%")
        team = page.locator("#sales tr", has_text="Team").locator("td")
        await expect(team.nth(10)).to_have_text("60.0%")
        day = page.locator("#day-rows tr", has_text="Maria One").locator("td")
        await expect(day.nth(3)).to_have_text("2")  # in, answered
        await expect(day.nth(4)).to_have_text("1")  # in, missed
        await expect(day.nth(11)).to_have_text("1,000.00 (50.0%)")
        await expect(page.locator("#lost tr").locator("td").nth(0)).to_have_text("Negotiation")
        await expect(page.locator("#sources tr").first.locator("td").nth(4)).to_have_text("50.0%")
        # contact results (test_results_report's figures): 2 forward of 8, A postponed 3x, B 1x
        results = page.locator("#results tr", has_text="Maria One").locator("td")
        await expect(results.nth(1)).to_have_text("9")
        await expect(results.nth(8)).to_have_text("25.0%")
        await expect(results.nth(10)).to_have_text("2.00")
        await expect(results.nth(11)).to_have_text("3")
        results_team = page.locator("#results tr", has_text="Team").locator("td")
        await expect(results_team.nth(8)).to_have_text("30.8%")
        for chart in ("chart-plan", "chart-hours", "chart-sl"):
            await expect(page.locator(f"#{chart} canvas")).to_have_count(1)
        await expect(page.locator("#queues-card")).to_be_visible()

        async with page.expect_download() as info:
            await page.click("[data-testid=csv-lost]")
        download = await info.value
        assert download.suggested_filename == "lost-reasons.csv"
        path = await download.path()
        assert path is not None
        assert path.read_bytes() == b"stage,reason,deals,sum\r\nNegotiation,price,2,130.00\r\n"

        context = await browser.new_context(viewport={"width": 1366, "height": 860})
        try:
            ru = await context.new_page()
            await open_reports(ru, live, "sup-ru", "pw-ru", "/dashboard")
            await expect(ru.locator("h2")).to_have_text("Отчёты")
            maria_ru = ru.locator("#sales tr", has_text="Maria One").locator("td")
            await expect(maria_ru.nth(10)).to_have_text("50,0%")
            await expect(ru.locator("#sales tr", has_text="Команда")).to_have_count(1)
            results_ru = ru.locator("#results tr", has_text="Команда").locator("td")
            await expect(results_ru.nth(8)).to_have_text("30,8%")
        finally:
            await context.close()

        context = await browser.new_context(viewport={"width": 1366, "height": 860})
        try:
            mine = await context.new_page()
            await open_reports(mine, live, "m1", "pw-m1", "/operator")
            await expect(mine.locator("#sales tr")).to_have_count(1)
            await expect(mine.locator("#sales tr").locator("td").nth(0)).to_have_text("Maria One")
            await expect(mine.locator("#queues-card")).to_be_hidden()
            await expect(mine.locator("#results tr")).to_have_count(1)
        finally:
            await context.close()
