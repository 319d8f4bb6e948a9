"""The board in a real browser, as a supervisor: pausing an agent from the board changes the
routing status and the router skips them; the board follows typed messages without reloading
itself; a reload shows the same; the page speaks Russian to a Russian supervisor."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.routing.router import Router
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.telephony.helpers import AMI_DIR
from tests.telephony.pbx import settle_pipeline
from tests.web.live import LiveService, chromium_available, live_service, with_ami
from tests.web.test_pages_e2e import always_on_duty
from web.container import Container
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")
SUP = ("sup-presence", "pw-sup-presence")


async def sign_in(page: Page, live: LiveService, login: str, password: str) -> None:
    await page.goto(live.url + "/")
    await page.fill("#login", login)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_url("**/dashboard")
    await expect(page.locator("body[data-board-ready='1']")).to_have_count(1)


async def test_supervisor_pauses_an_agent_from_the_board_and_the_router_skips_them(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    page: Page,
    browser: Any,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    _, sup_headers = await make_user(
        role="supervisor", login=SUP[0], password=SUP[1], full_name="Sofia Supervisor"
    )
    a101, _ = await make_user(role="operator", extension="101", full_name="Olga Operator")
    a102, _ = await make_user(role="operator", extension="102", full_name="Pavel Operator")
    for user in (a101, a102):
        await always_on_duty(sessions, user)
    with_ami(settings, replay)
    board_reads: list[str] = []
    page.on(
        "request",
        lambda r: board_reads.append(r.url) if r.url.endswith("/api/dashboard") else None,
    )
    async with live_service(container) as live:
        async with httpx.AsyncClient(base_url=live.url, headers=sup_headers) as client:
            listed = (await client.get("/api/presence/reasons")).json()
        training = next(r["name"] for r in listed if r["code"] == "training")  # DEFAULT_LOCALE's
        await sign_in(page, live, *SUP)
        presence = page.get_by_test_id(f"presence-{a101.id}")
        await expect(presence).to_have_text("available")

        await page.get_by_test_id(f"reason-{a101.id}").select_option("training")
        await page.get_by_test_id(f"pause-{a101.id}").click()
        # the board hears it as agent.presence and redraws the row, without reading itself again
        await expect(presence).to_have_text(f"paused ({training})")
        await expect(presence).to_have_attribute("data-state", "paused")
        # and the time in that state, beside it, ticking from the change
        in_state = presence.locator("xpath=following-sibling::td[1]")
        await expect(in_state).to_have_text(re.compile(r"^\d+:\d\d$"))
        await expect(in_state).to_have_attribute("data-since", re.compile(r"^\d{4}-"))

        async with httpx.AsyncClient(base_url=live.url, headers=sup_headers) as client:
            status = (await client.get("/api/routing/status")).json()
        agents = {a["user_id"]: a for a in status["agents"]}
        assert (agents[a101.id]["presence"], agents[a101.id]["presence_reason"]) == (
            "paused",
            "training",
        )
        assert status["paused"] == [a101.id] and status["turn"] == [a102.id]
        router = Router(database_url, schedule_ttl=0.0)
        try:
            picks = {(await router.route("", "", {})).user_id for _ in range(4)}
        finally:
            await router.close()
        assert picks == {a102.id}

        # a call comes and goes: the board follows its messages and re-reads only the day's part
        await replay.play([AMI_DIR / "inbound_answered.ami"], speed=0)
        await asyncio.wait_for(replay.wait_played(), 30)
        assert live.tracking.pipeline is not None
        await settle_pipeline(replay, live.tracking.pipeline)
        await expect(page.locator("#recent tr")).to_have_count(1)
        await expect(page.locator("#n-calls")).to_have_text("(0)")
        assert len(board_reads) == 1, board_reads  # the first load only

        # DND, then back: the buttons work both ways
        # a message redraws its agent's row only: the other rows stay the very same nodes
        mark = "(row) => { row.dataset.kept = '1'; }"
        await page.locator(f'#agents tr[data-user="{a101.id}"]').evaluate(mark)
        await page.locator(f'#agents tr[data-user="{a102.id}"]').evaluate(mark)
        await page.get_by_test_id(f"dnd-{a102.id}").click()
        await expect(page.get_by_test_id(f"presence-{a102.id}")).to_have_text("do not disturb")
        kept = page.locator("#agents tr[data-kept='1']")
        await expect(kept).to_have_count(1)
        await expect(kept).to_have_attribute("data-user", str(a101.id))
        await page.get_by_test_id(f"available-{a102.id}").click()
        await expect(page.get_by_test_id(f"presence-{a102.id}")).to_have_text("available")

        # after a reload: the same
        await page.reload()
        await expect(page.locator("body[data-board-ready='1']")).to_have_count(1)
        await expect(presence).to_have_text(f"paused ({training})")
        await expect(page.locator("#recent tr")).to_have_count(1)

        # in Russian for a Russian supervisor
        await make_user(role="supervisor", login="sup-ru", password="pw-ru", locale="ru")
        context = await browser.new_context(viewport={"width": 1366, "height": 860})
        try:
            ru = await context.new_page()
            await sign_in(ru, live, "sup-ru", "pw-ru")
            await expect(ru.get_by_test_id(f"presence-{a101.id}")).to_have_text(
                f"перерыв ({training})"
            )
            await expect(ru.get_by_test_id(f"pause-{a102.id}")).to_have_text("Перерыв")
        finally:
            await context.close()
