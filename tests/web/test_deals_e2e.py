"""The deals board and the admins' stages and lists, in a real browser.

Real uvicorn on an ephemeral port, Debian's headless Chromium at 1366 px: a manager in Russian
and a supervisor in English create a deal, edit it, drag it to Won (the amount is asked) and to
Lost (a reason is asked), and the tests read the rows and the history in the database; a second
browser sees a move live; an admin renames a stage and adds a lost reason, and the board and the
Lost dialog use them. No JavaScript error may happen on any page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.deals import repository
from crm_core.deals.models import Deal, DealChoice, DealStage, DealStageMove
from tests.conftest import UserFactory
from tests.deals_pipeline import pipeline_kept
from tests.web.live import (
    Contexts,
    LiveService,
    chromium_available,
    fresh_contexts,
    live_service,
    open_signed_in,
)
from web.container import Container

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Browser, Locator, Page, Route, expect  # noqa: E402


async def signed_in(
    pages: Contexts,
    live: LiveService,
    headers: dict[str, str],
    *,
    locale: str,
    path: str = "/deals",
) -> Page:
    """A page in `locale`, signed in as the person of `headers`, at `path`."""
    page: Page = await pages.page(locale=locale)
    # the bearer token where the sign-in page would have put it (tests/web/test_signin.py
    # drives that page itself)
    await open_signed_in(page, live, headers, path)
    return page


@pytest.fixture
async def pages(browser: Browser) -> AsyncIterator[Contexts]:
    # two cores shared by many processes: a board reload may take seconds (no timing asserted)
    laptop = {"width": 1366, "height": 768}
    async with fresh_contexts(browser, viewport=laptop, timeout_ms=15_000) as contexts:
        yield contexts


@pytest.fixture
async def kept(db: AsyncEngine) -> AsyncIterator[None]:
    async with pipeline_kept(db):
        yield


@pytest.fixture
async def lists(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The lists a Russian install seeds (the test database is migrated without a locale)."""
    async with sessions() as s:
        for i, name in enumerate(["Дорого", "Выбрали конкурента", "Нет потребности"]):
            s.add(DealChoice(kind="lost_reason", name=name, position=i))
        for i, name in enumerate(["Звонок", "Сайт"]):
            s.add(DealChoice(kind="lead_source", name=name, position=i))
        await s.commit()


async def _stage_ids(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as s:
        stages = await repository.stages(s)
    out = {s.name: s.id for s in stages}
    out["first"] = stages[0].id
    out["second"] = stages[1].id
    out["won"] = next(s.id for s in stages if s.kind == "won")
    out["lost"] = next(s.id for s in stages if s.kind == "lost")
    out["count"] = len(stages)
    return out


def column(page: Page, stage_id: int) -> Locator:
    return page.locator(f'.deals-col[data-stage-id="{stage_id}"]')


def card(page: Page, title: str) -> Locator:
    return page.locator("[data-deal-id]", has_text=title)


async def _deal_named(sessions: async_sessionmaker[AsyncSession], title: str) -> Deal:
    async with sessions() as s:
        deal = await s.scalar(select(Deal).where(Deal.title == title))
        assert deal is not None, title
        return deal


async def _history(
    sessions: async_sessionmaker[AsyncSession], deal_id: int
) -> list[tuple[int | None, int, int | None, str | None]]:
    async with sessions() as s:
        moves = (
            await s.scalars(
                select(DealStageMove)
                .where(DealStageMove.deal_id == deal_id)
                .order_by(DealStageMove.id)
            )
        ).all()
    return [(m.from_stage_id, m.to_stage_id, m.user_id, m.lost_reason) for m in moves]


async def _create(page: Page, client: str, title: str, source: str) -> None:
    await page.click("#new-deal")
    await page.fill("#new-client", client)
    await page.fill("#new-title", title)
    await page.select_option("#new-source", label=source)
    await page.click("#new-ok")
    await expect(page.locator("#new-dialog")).to_be_hidden()


async def test_a_new_deal_waits_for_the_boards_stages(
    container: Container,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pages: Contexts,
) -> None:
    """The new deal's dialog offers the stages the board loaded: before they have come (a slow
    board), "New deal" can't be pressed (it once opened with no stage and sent stage_id 0)."""
    _, headers = await make_user(role="manager")
    held: asyncio.Queue[Route] = asyncio.Queue()
    async with live_service(container) as live:
        page = await pages.page(locale="en-US")
        await page.route("**/api/deals/board*", held.put_nowait)
        await open_signed_in(page, live, headers, "/deals")
        board = await asyncio.wait_for(held.get(), 30)
        await expect(page.locator("h2#deals-heading")).to_have_text("Deals")
        await expect(page.locator("#new-deal")).to_be_disabled()
        await board.continue_()
        await page.unroute("**/api/deals/board*")
        await expect(page.locator("#new-deal")).to_be_enabled()
        await page.click("#new-deal")
        stages = await page.locator("#new-stage option").all_text_contents()
    async with sessions() as s:
        rows = await s.scalars(
            select(DealStage.name)
            .where(DealStage.is_closed.is_(False))
            .order_by(DealStage.position)
        )
        assert stages == list(rows) and stages


@pytest.mark.usefixtures("lists")
async def test_a_manager_works_a_deal_in_russian(
    container: Container,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pages: Contexts,
) -> None:
    manager, headers = await make_user(role="manager", full_name="Анна Петрова")
    st = await _stage_ids(sessions)
    async with live_service(container) as live:
        page = await signed_in(pages, live, headers, locale="ru-RU")
        await expect(page.locator("h2#deals-heading")).to_have_text("Сделки")
        await expect(page.locator("[data-stage-id]")).to_have_count(st["count"])
        # the board fits 1366 px: the pipeline's seven columns side by side, more would scroll
        # inside the board, never the page
        assert await page.evaluate("document.documentElement.scrollWidth") <= 1366
        overflow = "b => getComputedStyle(b).overflowX"
        assert await page.locator("#board").evaluate(overflow) == "auto"
        lost_box = await column(page, st["lost"]).bounding_box()
        assert lost_box is not None and lost_box["x"] + lost_box["width"] <= 1366

        # create: a new client by name, the deal in the first stage, mine
        await _create(page, "ООО Ромашка", "Поставка", "Сайт")
        new = card(page, "Поставка")
        await expect(column(page, st["first"]).locator("[data-deal-id]")).to_have_count(1)
        await expect(new).to_contain_text("ООО Ромашка")
        await expect(new).to_contain_text("0 дней в этапе")
        deal = await _deal_named(sessions, "Поставка")
        assert (deal.responsible_id, deal.lead_source, deal.amount) == (
            manager.id,
            "Сайт",
            Decimal("0.00"),
        )
        async with sessions() as s:
            client = await s.get(Client, deal.client_id)
            assert client is not None and client.name == "ООО Ромашка"

        # edit in the side panel
        await new.click()
        await expect(page.locator("#deal-panel")).to_have_attribute("data-state", "ready")
        await page.fill("#deal-title", "Поставка труб")
        await page.select_option("#deal-source", label="Звонок")
        await page.click("#deal-save")
        await expect(page.locator("#deal-status")).to_have_text("Сохранено")
        deal = await _deal_named(sessions, "Поставка труб")
        assert deal.lead_source == "Звонок"
        await page.click("#panel-close")

        # drag to Won: no amount on the deal, so the dialog asks it
        await card(page, "Поставка труб").drag_to(column(page, st["won"]))
        await expect(page.locator("#move-dialog")).to_be_visible()
        await expect(page.locator("#move-amount")).to_be_visible()
        await expect(page.locator("#move-reason")).to_be_hidden()
        await page.fill("#move-amount", "1500")
        await page.click("#move-ok")
        await expect(column(page, st["won"]).locator("[data-deal-id]")).to_have_count(1)
        async with sessions() as s:
            won = await s.get(Deal, deal.id)
            assert won is not None
            assert (won.stage_id, won.amount) == (st["won"], Decimal("1500.00"))
            assert won.closed_at is not None

        # drag to Lost: a reason from the list is asked
        await card(page, "Поставка труб").drag_to(column(page, st["lost"]))
        await expect(page.locator("#move-reason")).to_be_visible()
        await expect(page.locator("#move-amount")).to_be_hidden()
        await page.click("#move-ok")  # no reason chosen: refused on the page
        await expect(page.locator("#move-dialog")).to_be_visible()
        await page.select_option("#move-reason", label="Выбрали конкурента")
        await page.click("#move-ok")
        await expect(column(page, st["lost"]).locator("[data-deal-id]")).to_have_count(1)
        async with sessions() as s:
            lost = await s.get(Deal, deal.id)
            assert lost is not None
            assert (lost.stage_id, lost.lost_reason) == (st["lost"], "Выбрали конкурента")
        assert await _history(sessions, deal.id) == [
            (None, st["first"], manager.id, None),
            (st["first"], st["won"], manager.id, None),
            (st["won"], st["lost"], manager.id, "Выбрали конкурента"),
        ]
        # the history on the deal, newest first
        await card(page, "Поставка труб").click()
        await expect(page.locator("#deal-panel")).to_have_attribute("data-state", "ready")
        rows = page.locator("#deal-history [data-testid=history-row]")
        await expect(rows).to_have_count(3)
        await expect(rows.first).to_contain_text("Анна Петрова")
        await expect(rows.first).to_contain_text("Выбрали конкурента")
        await expect(rows.last).to_contain_text("создана в этапе")


@pytest.mark.usefixtures("lists")
async def test_a_supervisor_in_english_and_a_manager_watching_live(
    container: Container,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pages: Contexts,
) -> None:
    manager, manager_h = await make_user(role="manager", full_name="Mark Manager")
    supervisor, sup_h = await make_user(role="supervisor", full_name="Sofia Supervisor")
    st = await _stage_ids(sessions)
    async with live_service(container) as live:
        watcher = await signed_in(pages, live, manager_h, locale="ru-RU")
        await expect(watcher.locator("[data-stage-id]").first).to_be_visible()
        page = await signed_in(pages, live, sup_h, locale="en-US")
        await expect(page.locator("h2#deals-heading")).to_have_text("Deals")
        await expect(page.locator("#f-responsible")).to_have_value("all")

        # created for the manager: it appears on the manager's board without a reload
        await page.click("#new-deal")
        await page.fill("#new-client", "Acme Ltd")
        await page.fill("#new-title", "Pipes")
        await page.select_option("#new-responsible", label="Mark Manager")
        await page.click("#new-ok")
        await expect(card(page, "Pipes")).to_be_visible()
        await expect(column(watcher, st["first"]).locator("[data-deal-id]")).to_have_count(1)
        deal = await _deal_named(sessions, "Pipes")
        assert deal.responsible_id == manager.id

        # edit
        await card(page, "Pipes").click()
        await expect(page.locator("#deal-panel")).to_have_attribute("data-state", "ready")
        await page.fill("#deal-title", "Steel pipes")
        await page.select_option("#deal-currency", "EUR")
        await page.click("#deal-save")
        await expect(page.locator("#deal-status")).to_have_text("Saved")
        await page.click("#panel-close")
        await expect(page.locator("#board")).to_have_attribute("aria-busy", "false")

        # an open move, seen live on the other browser
        await card(page, "Steel pipes").drag_to(column(page, st["second"]))
        await expect(column(watcher, st["second"]).locator("[data-deal-id]")).to_have_count(1)
        await expect(column(watcher, st["first"]).locator("[data-deal-id]")).to_have_count(0)
        # the next drag starts from where this board itself shows the card, once it redrew
        await expect(column(page, st["second"]).locator("[data-deal-id]")).to_have_count(1)
        await expect(page.locator("#board")).to_have_attribute("aria-busy", "false")

        # Won asks the amount; Lost asks a reason
        await card(page, "Steel pipes").drag_to(column(page, st["won"]))
        await expect(page.locator("#move-title")).to_contain_text("Won")
        await page.fill("#move-amount", "2500.50")
        await page.click("#move-ok")
        await expect(column(page, st["won"]).locator("[data-deal-id]")).to_have_count(1)
        await expect(column(watcher, st["won"]).locator("[data-deal-id]")).to_have_count(1)
        await card(page, "Steel pipes").drag_to(column(page, st["lost"]))
        await page.select_option("#move-reason", label="Нет потребности")
        await page.click("#move-ok")
        await expect(column(page, st["lost"]).locator("[data-deal-id]")).to_have_count(1)

        async with sessions() as s:
            row = await s.get(Deal, deal.id)
            assert row is not None
            assert (row.title, row.currency, row.amount) == (
                "Steel pipes",
                "EUR",
                Decimal("2500.50"),
            )
            assert (row.stage_id, row.lost_reason) == (st["lost"], "Нет потребности")
        assert await _history(sessions, deal.id) == [
            (None, st["first"], supervisor.id, None),
            (st["first"], st["second"], supervisor.id, None),
            (st["second"], st["won"], supervisor.id, None),
            (st["won"], st["lost"], supervisor.id, "Нет потребности"),
        ]
        # the keyboard's way: the card's menu moves it back to work
        await card(page, "Steel pipes").locator("[data-testid=card-move]").click()
        await page.locator(f'#move-menu button[data-stage-id="{st["first"]}"]').click()
        await expect(column(page, st["first"]).locator("[data-deal-id]")).to_have_count(1)
        await expect(column(watcher, st["first"]).locator("[data-deal-id]")).to_have_count(1)
        assert (await _deal_named(sessions, "Steel pipes")).closed_at is None


@pytest.mark.usefixtures("kept", "lists")
async def test_an_admin_edits_stages_and_lists_and_the_board_uses_them(
    container: Container,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pages: Contexts,
) -> None:
    admin, admin_h = await make_user(role="admin", full_name="Ada Admin")
    st = await _stage_ids(sessions)
    async with sessions() as s:
        client = Client(name="Globex")
        s.add(client)
        await s.flush()
        s.add(
            Deal(
                client_id=client.id, title="Widgets", responsible_id=admin.id, stage_id=st["first"]
            )
        )
        await s.commit()
    async with live_service(container) as live:
        page = await signed_in(pages, live, admin_h, locale="en-US", path="/admin/stages")
        row = page.locator(f'[data-testid=stage-row][data-stage-id="{st["second"]}"]')
        await row.locator("[data-testid=name]").fill("Qualified")
        await row.locator("[data-testid=save]").click()
        await expect(page.locator("#status")).to_have_text("Saved")
        # a stage holding a deal cannot go: the server's refusal is shown
        page.on("dialog", lambda d: d.accept())
        first = page.locator(f'[data-testid=stage-row][data-stage-id="{st["first"]}"]')
        await first.locator("[data-testid=delete]").click()
        await expect(page.locator("#status")).to_have_class("status error")
        async with sessions() as s:
            renamed = await s.get(DealStage, st["second"])
            assert renamed is not None and renamed.name == "Qualified"
            assert await s.get(DealStage, st["first"]) is not None

        await page.goto(live.url + "/admin/lists")
        reasons = page.locator("[data-testid=list-lost-reasons]")
        await reasons.locator("[data-testid=add-name]").fill("Bad timing")
        await reasons.locator("[data-testid=add-submit]").click()
        await expect(reasons.locator("[data-testid=item]")).to_have_count(4)
        async with sessions() as s:
            added = await s.scalar(
                select(DealChoice).where(
                    DealChoice.kind == "lost_reason", DealChoice.name == "Bad timing"
                )
            )
            assert added is not None

        await page.goto(live.url + "/deals")
        await expect(column(page, st["second"]).locator("header")).to_contain_text("Qualified")
        await card(page, "Widgets").drag_to(column(page, st["lost"]))
        await expect(page.locator("#move-reason option", has_text="Bad timing")).to_have_count(1)
        await page.select_option("#move-reason", label="Bad timing")
        await page.click("#move-ok")
        await expect(column(page, st["lost"]).locator("[data-deal-id]")).to_have_count(1)
        assert (await _deal_named(sessions, "Widgets")).lost_reason == "Bad timing"


async def test_a_move_heard_while_the_board_reloads_is_not_undone_by_that_load(
    container: Container,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pages: Contexts,
) -> None:
    """The manager's board is reloading (the deal was edited) when the supervisor's move of it
    arrives: that load, read before the move, must not draw the card back in its old column
    (seen in CI: the moved card stayed where it was on the other browser)."""
    manager, manager_h = await make_user(role="manager", full_name="Mark Manager")
    _, sup_h = await make_user(role="supervisor", full_name="Sofia Supervisor")
    st = await _stage_ids(sessions)
    async with sessions() as s:
        client = Client(name="Acme Ltd", kind="company", responsible_id=manager.id, notes="")
        s.add(client)
        await s.commit()
    async with (
        live_service(container) as live,
        httpx.AsyncClient(base_url=live.url, headers=sup_h) as api,
    ):
        made = await api.post(
            "/api/deals",
            json={"client_id": client.id, "title": "Pipes", "responsible_id": manager.id},
        )
        assert made.status_code == 201, made.text
        deal_id = made.json()["id"]
        watcher = await pages.page(locale="ru-RU")
        frames: list[str] = []
        watcher.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
        await open_signed_in(watcher, live, manager_h, "/deals")
        board = watcher.locator("#board")
        await expect(column(watcher, st["first"]).locator("[data-deal-id]")).to_have_count(1)
        await expect(board).to_have_attribute("aria-busy", "false")
        held: asyncio.Queue[Route] = asyncio.Queue()
        loads: list[Route] = []

        async def hold_the_first(route: Route) -> None:
            loads.append(route)
            if len(loads) == 1:
                held.put_nowait(route)
            else:
                await route.continue_()

        await watcher.route("**/api/deals/board*", hold_the_first)
        edited = await api.patch(f"/api/deals/{deal_id}", json={"title": "Steel pipes"})
        assert edited.status_code == 200, edited.text
        reload = await asyncio.wait_for(held.get(), 30)  # the board reloads for the edit
        stale = await reload.fetch()  # its answer, read before the move
        moved = await api.post(f"/api/deals/{deal_id}/stage", json={"stage_id": st["second"]})
        assert moved.status_code == 200, moved.text
        async with asyncio.timeout(30):  # the page has heard of the move
            while not any('"deal.stage_changed"' in f for f in frames):
                await asyncio.sleep(0.05)
        await reload.fulfill(response=stale)
        await expect(board).to_have_attribute("aria-busy", "false")
        await expect(column(watcher, st["second"]).locator("[data-deal-id]")).to_have_count(1)
        await expect(column(watcher, st["first"]).locator("[data-deal-id]")).to_have_count(0)
        await expect(card(watcher, "Steel pipes")).to_be_visible()
