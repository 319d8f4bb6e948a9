"""Missed calls on the supervisors' board (issue 16), in a real browser, in English and Russian:
each shows the client, links to the client's card (the workspace opens `?client=<id>`), and
shows whether and when the client was called back; after a reload the board shows the same
numbers.

Real uvicorn, real AMI replay (the abandoned call, then a click-to-call to the same number),
Debian's headless Chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client, ClientPhone
from crm_core.communications.models import Communication
from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.telephony.helpers import AMI_DIR
from tests.web.live import Contexts, chromium_available, live_service, sign_in, with_ami
from tests.web.test_pages_e2e import (
    ABANDONED_CALLER,
    SUPERVISOR,
    always_on_duty,
    play_and_settle,
)
from web.container import Container
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")
SUP_RU = ("sup-ru-missed", "pw-sup-ru-missed")


async def seed_anna(sessions: async_sessionmaker[AsyncSession]) -> int:
    """The abandoned call's caller, known by name."""
    async with sessions() as s:
        client = Client(
            name="Anna Smirnova",
            kind="person",
            notes="",
            phones=[ClientPhone(e164=ABANDONED_CALLER, raw="8 903 123-45-67", label="mobile")],
        )
        s.add(client)
        await s.commit()
        return client.id


def call_back_recording(folder: Path) -> Path:
    """click_to_call.ami (the agent's phone rings, then the client answers), dialling the
    abandoned caller instead of its own number: a call back."""
    text = (AMI_DIR / "click_to_call.ami").read_text()
    path = folder / "call_back.ami"
    path.write_text(text.replace("79161234567", ABANDONED_CALLER.removeprefix("+")))
    return path


async def board_texts(page: Page) -> tuple[list[str], list[str]]:
    return (
        await page.locator("#missed li").all_inner_texts(),
        await page.locator("#today tr").all_inner_texts(),
    )


async def test_missed_call_shows_the_client_links_to_the_card_and_says_called_back(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    browser: object,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    operator: User,
    tmp_path: Path,
) -> None:
    _, sup_headers = await make_user(
        role="supervisor", login=SUPERVISOR[0], password=SUPERVISOR[1], full_name="Sofia"
    )
    await make_user(role="supervisor", login=SUP_RU[0], password=SUP_RU[1], locale="ru")
    await always_on_duty(sessions, operator)
    pavel, _ = await make_user(role="operator", extension="102", full_name="Pavel Operator")
    await always_on_duty(sessions, pavel)
    anna = await seed_anna(sessions)
    with_ami(settings, replay)
    pages = Contexts(browser, viewport={"width": 1366, "height": 860}, timeout_ms=10_000)
    try:
        async with live_service(container) as live:
            board = await pages.page()
            await sign_in(board, live, SUPERVISOR, "/dashboard")
            await expect(board.locator("body[data-board-ready='1']")).to_have_count(1)
            # a message redraws the rows it changed, not the table: Pavel's row (102, not rung)
            # stays the same element while Olga's (101, rung) is redrawn
            row = "document.querySelector(`#agents tr[data-ext='${ext}']`)"
            mark, marked = f"(ext) => {{ {row}.marked = 1; }}", f"(ext) => {row}.marked === 1"
            # (the pause reasons arrived: their list redraws every row once)
            await expect(
                board.get_by_test_id(f"reason-{pavel.id}").locator("option")
            ).not_to_have_count(0)
            await board.evaluate(mark, "101")
            await board.evaluate(mark, "102")
            await play_and_settle(live, replay, "inbound_abandoned")

            missed = board.locator("#missed li")
            await expect(missed).to_have_count(1)
            row_id = await missed.get_attribute("data-id")
            link = board.get_by_test_id(f"missed-client-{row_id}")
            await expect(link).to_have_text("Anna Smirnova")
            await expect(link).to_have_attribute("href", f"/operator?client={anna}")
            back = board.get_by_test_id(f"called-back-{row_id}")
            await expect(back).to_have_text("not called back")
            await expect(back).to_have_attribute("data-called-back", "0")
            assert await board.evaluate(marked, "102") is True
            assert await board.evaluate(marked, "101") is False

            # the operator calls Anna back (click-to-call, answered): the board says so, and when
            await play_and_settle(live, replay, call_back_recording(tmp_path))
            await expect(back).to_have_attribute("data-called-back", "1")
            async with sessions() as s:
                call_back = await s.scalar(
                    select(Communication).where(
                        Communication.kind == "call", Communication.direction == "out"
                    )
                )
            assert call_back is not None and call_back.client_id == anna
            assert call_back.status == "answered"
            async with httpx.AsyncClient(base_url=live.url, headers=sup_headers) as client:
                served = (await client.get("/api/dashboard")).json()["missed_today"]
            assert [(m["client_id"], m["called_back"]) for m in served] == [(anna, True)]
            assert served[0]["called_back_at"] == call_back.occurred_at.isoformat()
            # the time as the page's own formatter writes it (the company's zone, the language)
            shown = await board.evaluate(
                "async (iso) => (await import('/static/lib/format.js')).time(iso)",
                served[0]["called_back_at"],
            )
            await expect(back).to_have_text(f"called back at {shown}")

            # a reload mid-shift: the same missed calls and the same figures of the day
            await expect(board.locator("#today tr", has_text="Olga Operator")).to_have_count(1)
            before = await board_texts(board)
            await board.reload()
            await expect(board.locator("body[data-board-ready='1']")).to_have_count(1)
            await expect(board.locator("#missed li")).to_have_count(1)
            assert await board_texts(board) == before
            assert any("Olga Operator" in row for row in before[1])

            # the link opens Anna's card in the workspace
            await link.click()
            await board.wait_for_url(f"**/operator?client={anna}")
            await expect(board.locator("#client-name")).to_have_value("Anna Smirnova")

            # in Russian
            ru = await pages.page()
            await sign_in(ru, live, SUP_RU, "/dashboard")
            await expect(ru.locator("body[data-board-ready='1']")).to_have_count(1)
            shown_ru = await ru.evaluate(
                "async (iso) => (await import('/static/lib/format.js')).time(iso)",
                served[0]["called_back_at"],
            )
            ru_back = ru.get_by_test_id(f"called-back-{row_id}")
            await expect(ru_back).to_have_text(f"перезвонили в {shown_ru}")
            ru_link = ru.get_by_test_id(f"missed-client-{row_id}")
            await expect(ru_link).to_have_text("Anna Smirnova")
            await ru_link.click()
            await ru.wait_for_url(f"**/operator?client={anna}")
            await expect(ru.locator("#client-name")).to_have_value("Anna Smirnova")
    finally:
        for context in pages.contexts:
            await context.close()
    assert not pages.errors, f"JavaScript errors on the pages: {pages.errors}"
