"""Wrap-up ends on time, in a real browser: after an answered call the agent's workspace shows
the wrap-up by itself, the router passes the agent over while it lasts, and when its time is up
the page shows the agent available again with no click, and the router rings them again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.presence.models import AgentPresence
from crm_core.presence.settings import PresenceSettings
from crm_core.routing.router import Router
from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.telephony.helpers import AMI_DIR
from tests.telephony.pbx import settle_pipeline
from tests.web.conftest import OPERATOR
from tests.web.live import LiveService, chromium_available, live_service, sign_in, with_ami
from tests.web.test_pages_e2e import always_on_duty
from web.container import Container
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")
WRAPUP_SECONDS = 4


@pytest.fixture
async def service(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    operator: User,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[LiveService]:
    await always_on_duty(sessions, operator)
    settings.presence = PresenceSettings(WRAPUP_SECONDS=WRAPUP_SECONDS)
    with_ami(settings, replay)
    async with live_service(container) as live:
        yield live


async def picks(database_url: str) -> set[int | None]:
    router = Router(database_url, schedule_ttl=0.0)
    try:
        return {(await router.route("", "", {})).user_id for _ in range(3)}
    finally:
        await router.close()


async def test_a_wrapup_ends_on_time_by_itself_and_the_agent_is_rung_again(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    operator: User,
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    await sign_in(page, service, OPERATOR)
    state = page.get_by_test_id("presence-state")
    await expect(state).to_have_text("available")
    assert await picks(database_url) == {operator.id}

    # a call answered by 101: its wrap-up starts at the hang-up, for WRAPUP_SECONDS
    await replay.play([AMI_DIR / "inbound_answered.ami"], speed=0)
    await asyncio.wait_for(replay.wait_played(), 30)
    assert service.tracking.pipeline is not None
    await settle_pipeline(replay, service.tracking.pipeline)
    async with sessions() as s:
        row = await s.get(AgentPresence, operator.id)
        assert row is not None and (row.state, row.source) == ("wrapup", "call")
        assert row.until is not None
        assert (row.until - row.since).total_seconds() == WRAPUP_SECONDS
        until = row.until.timestamp()
    during = await picks(database_url)
    if time.time() < until:  # asked wholly within the wrap-up (a slow machine may be past it)
        assert operator.id not in during

    # no click: once the page has heard of the wrap-up (agent.presence on the agent's channel),
    # it shows them available when the time is up, never before
    await page.wait_for_function(
        "() => __crm.log.some((e) => e.type === 'agent.presence')", timeout=60_000
    )
    await expect(state).to_have_text("available", timeout=60_000)
    assert time.time() >= until
    assert await picks(database_url) == {operator.id}
