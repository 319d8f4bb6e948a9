"""The agent's own presence on the workspace, in a real browser: one click pauses (under the
reason chosen beside it), sets do not disturb, or makes the agent available again; the time in
the state ticks; a wrap-up after an answered call shows by itself (agent.presence on the agent's
channel) and "Available" ends it early. The page speaks Russian to a Russian agent."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.presence.models import AgentPresence
from crm_core.presence.settings import PresenceSettings
from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.telephony.helpers import AMI_DIR
from tests.telephony.pbx import settle_pipeline
from tests.web.conftest import OPERATOR
from tests.web.live import (
    Contexts,
    LiveService,
    chromium_available,
    live_service,
    sign_in,
    with_ami,
)
from web.container import Container
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")
DURATION = re.compile(r"^\d+:\d\d$")


@pytest.fixture
async def service(
    settings: Settings, container: Container, replay: ReplayServer, operator: User
) -> AsyncIterator[LiveService]:
    # a wrap-up long enough to be seen and ended by hand, whatever the machine's load
    settings.presence = PresenceSettings(WRAPUP_SECONDS=600)
    with_ami(settings, replay)
    async with live_service(container) as live:
        yield live


async def at_presence_bar(page: Page, live: LiveService, credentials: tuple[str, str]) -> None:
    """Signed in at the workspace (tests.web.live.sign_in), its presence bar shown."""
    await sign_in(page, live, credentials)
    await expect(page.get_by_test_id("presence-bar")).to_be_visible()


async def stored(sessions: async_sessionmaker[AsyncSession], user: User) -> tuple[str, ...]:
    async with sessions() as s:
        row = await s.get(AgentPresence, user.id)
        return () if row is None else (row.state, row.reason or "", row.source)


async def test_the_agent_sets_their_own_state_in_one_click_and_ends_a_wrapup_early(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    operator: User,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await at_presence_bar(page, service, OPERATOR)
    state = page.get_by_test_id("presence-state")
    await expect(state).to_have_text("available")
    await expect(page.get_by_test_id("presence-available")).to_be_hidden()
    async with httpx.AsyncClient(base_url=service.url) as client:
        token = await page.evaluate("localStorage.getItem('crm_token')")
        headers = {"Authorization": f"Bearer {token}"}
        listed = (await client.get("/api/presence/reasons", headers=headers)).json()
    training = next(r["name"] for r in listed if r["code"] == "training")

    # a pause under the reason chosen beside the button: one click
    await page.get_by_test_id("presence-reason").select_option("training")
    await page.get_by_test_id("presence-pause").click()
    await expect(state).to_have_text(f"paused ({training})")
    await expect(state).to_have_attribute("data-state", "paused")
    await expect(page.get_by_test_id("presence-since")).to_have_text(DURATION)
    assert await stored(sessions, operator) == ("paused", "training", "api")

    # do not disturb, then available again
    await page.get_by_test_id("presence-dnd").click()
    await expect(state).to_have_text("do not disturb")
    assert await stored(sessions, operator) == ("dnd", "", "api")
    await page.get_by_test_id("presence-available").click()
    await expect(state).to_have_text("available")
    assert await stored(sessions, operator) == ("available", "", "api")

    # a call answered by 101: the wrap-up shows by itself, and one click ends it early
    await replay.play([AMI_DIR / "inbound_answered.ami"], speed=0)
    await asyncio.wait_for(replay.wait_played(), 30)
    assert service.tracking.pipeline is not None
    await settle_pipeline(replay, service.tracking.pipeline)
    assert await stored(sessions, operator) == ("wrapup", "", "call")
    await expect(state).to_have_text("wrap-up")
    await page.get_by_test_id("presence-available").click()
    await expect(state).to_have_text("available")
    assert await stored(sessions, operator) == ("available", "", "api")


async def test_the_workspace_shows_the_state_in_russian(
    service: LiveService,
    pages: Contexts,
    make_user: Any,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    agent, _ = await make_user(
        role="operator", extension="105", login="op-ru", password="pw-op-ru", locale="ru"
    )
    ru = await pages.page()
    await at_presence_bar(ru, service, ("op-ru", "pw-op-ru"))
    await expect(ru.get_by_test_id("presence-state")).to_have_text("на месте")
    await expect(ru.get_by_test_id("presence-dnd")).to_have_text("Не беспокоить")
    await ru.get_by_test_id("presence-dnd").click()
    await expect(ru.get_by_test_id("presence-state")).to_have_text("не беспокоить")
    assert await stored(sessions, agent) == ("dnd", "", "api")
