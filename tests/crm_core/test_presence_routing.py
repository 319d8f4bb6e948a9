"""Presence against the real router and database: a paused, DND or wrap-up agent is never dealt
a call (not even as the caller's responsible agent), round-robin stays fair among the others, and
a wrap-up ends on time (the router's clock is injected: no waiting)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.presence import service as presence
from crm_core.presence.models import PresenceSpan
from crm_core.routing.router import Router
from crm_core.routing.rules import Reason
from crm_core.routing.service import routing_status
from crm_core.users.models import User
from crm_core.users.service import users_by_extension
from tests.conftest import UserFactory
from tests.crm_core.test_routing_service import agents, client_of

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def clock_router(database_url: str) -> AsyncIterator[tuple[Router, Clock]]:
    clock = Clock()
    router = Router(database_url, clock=clock, schedule_ttl=0.0)
    yield router, clock
    await router.close()


async def put(
    sessions: async_sessionmaker[AsyncSession], user_id: int, state: str, reason: str | None = None
) -> None:
    async with sessions() as s:
        user = await s.get(User, user_id)
        assert user is not None
        await presence.set_state(s, user, state, reason, NOW)
        await s.commit()


async def test_paused_and_dnd_agents_are_never_picked_and_the_rest_share_fairly(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    clock_router: tuple[Router, Clock],
) -> None:
    m1, m2, m3, m4 = await agents(make_user, sessions, 4)
    router, _ = clock_router
    await put(sessions, m2, "paused", "lunch")
    await put(sessions, m4, "dnd")
    got = [(await router.route("", "", {})).user_id for _ in range(10)]
    assert set(got) == {m1, m3}
    assert got == [m1, m3] * 5  # strict rotation among those available
    # a burst in one batch too
    burst = [router.route("", "", {}) for _ in range(20)]
    counts = Counter([(await d).user_id for d in burst])
    assert counts == {m1: 10, m3: 10}
    # back from lunch: in the rotation again, first (the longest without a call)
    await put(sessions, m2, "available")
    assert (await router.route("", "", {})).user_id == m2


async def test_a_paused_responsible_agent_is_skipped_for_round_robin(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    clock_router: tuple[Router, Clock],
) -> None:
    m1, m2 = await agents(make_user, sessions, 2)
    await client_of(sessions, "+79161234567", m2)
    router, _ = clock_router
    assert (await router.route("+79161234567", "", {})).user_id == m2
    await put(sessions, m2, "paused", "training")
    d = await router.route("+79161234567", "", {})
    assert (d.user_id, d.reason) == (m1, Reason.round_robin)
    await put(sessions, m1, "dnd")
    d = await router.route("+79161234567", "", {})
    assert (d.target, d.reason) == ("", Reason.all_busy)  # the dialplan falls back to the queue


async def test_wrapup_keeps_an_agent_out_until_it_ends_on_time(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    clock_router: tuple[Router, Clock],
) -> None:
    m1, m2 = await agents(make_user, sessions, 2)
    router, clock = clock_router
    async with sessions() as s:
        on = await users_by_extension(s, ["101"])
        started = await presence.start_wrapup(s, ["101"], ended=NOW, seconds=30, now=NOW, on=on)
        await s.commit()
    assert started == [m1]
    clock.now = NOW + timedelta(seconds=29)
    assert {(await router.route("", "", {})).user_id for _ in range(4)} == {m2}
    async with sessions() as s:
        status = await routing_status(s, clock.now)
        assert {a.user_id: a.presence for a in status.agents} == {m1: "wrapup", m2: "available"}
        assert status.turn == [m2]
    clock.now = NOW + timedelta(seconds=30)  # over, with nobody writing anything
    assert (await router.route("", "", {})).user_id == m1
    async with sessions() as s:
        status = await routing_status(s, clock.now)
        assert {a.user_id: a.presence for a in status.agents} == {m1: "available", m2: "available"}
        # the history already holds the wrap-up and the available after it
        spans = (
            await s.execute(
                select(PresenceSpan.state, PresenceSpan.since, PresenceSpan.until)
                .where(PresenceSpan.user_id == m1)
                .order_by(PresenceSpan.since)
            )
        ).all()
    assert [tuple(r) for r in spans] == [
        ("wrapup", NOW, NOW + timedelta(seconds=30)),
        ("available", NOW + timedelta(seconds=30), None),
    ]


async def test_ending_wrapup_early_cuts_its_history_at_that_moment(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    (m1,) = await agents(make_user, sessions, 1)
    async with sessions() as s:
        on = await users_by_extension(s, ["101"])
        await presence.start_wrapup(s, ["101"], ended=NOW, seconds=60, now=NOW, on=on)
        await s.commit()
    early = NOW + timedelta(seconds=12)
    async with sessions() as s:
        user = await s.get(User, m1)
        assert user is not None
        p, changed = await presence.set_state(s, user, "available", None, early)
        await s.commit()
        assert changed and p.state == "available"
        spent = await presence.time_per_state(s, NOW, NOW + timedelta(seconds=100))
    assert spent == {m1: {"wrapup": 12.0, "available": 88.0}}


async def test_wrapup_with_the_users_read_for_a_batch_starts_only_for_the_call_s_agents(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The log lane reads the users of all its calls' agents once (`users_by_extension`) and
    hands them to each call's `start_wrapup`: only the agents who talked on that call start a
    wrap-up."""
    m1, m2 = await agents(make_user, sessions, 2)
    async with sessions() as s:
        on = await users_by_extension(s, ["101", "102", "199", ""])
        assert {ext: u.id for ext, u in on.items()} == {"101": m1, "102": m2}
        assert await presence.start_wrapup(s, ["102"], ended=NOW, seconds=30, now=NOW, on=on) == [
            m2
        ]
        assert await presence.start_wrapup(s, ["199"], ended=NOW, seconds=30, now=NOW, on=on) == []
        await s.commit()
        current = await presence.current(s)
    assert m1 not in current and current[m2].state == "wrapup"
