"""Wrap-up ends on time, in a real browser: after an answered call the agent's workspace shows
the wrap-up by itself, the router passes the agent over while it lasts, and when its time is up
the page shows the agent available again with no click, and the router rings them again.

The wrap-up is long (no machine is slow enough to reach its end during the test), and its end is
reached by moving clocks rather than waiting: the router's (it takes one) and the page's
(Playwright's clock), so every check is made, before or after the end, by construction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

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
WRAPUP_SECONDS = 600


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


async def picks(database_url: str, at: datetime | None = None) -> set[int | None]:
    """Whom the router deals three calls to, by its clock pinned `at` (None: the real one)."""
    router = (
        Router(database_url, schedule_ttl=0.0)
        if at is None
        else Router(database_url, schedule_ttl=0.0, clock=lambda: at)
    )
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
    await page.clock.install()  # the page's time runs as the real one until the test moves it
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
        until = row.until
    # while it lasts the router passes the agent over: now, and to its last moment
    assert operator.id not in await picks(database_url)
    assert operator.id not in await picks(database_url, at=until - timedelta(microseconds=1))

    # no click: the page hears of the wrap-up (agent.presence on the agent's channel) and shows
    # it up to its end, then shows the agent available when the time is up
    await page.wait_for_function("() => __crm.log.some((e) => e.type === 'agent.presence')")
    await expect(state).to_have_text("wrap-up")
    await page.clock.pause_at(until - timedelta(seconds=2))
    await page.clock.run_for(1000)  # a redraw a second before the end
    await expect(state).to_have_text("wrap-up")
    await page.clock.run_for(2000)  # a redraw past the end
    await expect(state).to_have_text("available")
    assert await picks(database_url, at=until) == {operator.id}
