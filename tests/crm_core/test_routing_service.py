"""The router against the real database: rules end to end, fairness in one and two instances."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.calls import pbx_sync
from crm_core.calls.models import AgentState
from crm_core.clients.schemas import ClientCreate
from crm_core.clients.service import create_client
from crm_core.db import make_engine
from crm_core.deals.service import ensure_open_deal
from crm_core.routing import repository
from crm_core.routing.router import Router
from crm_core.routing.rules import Reason
from crm_core.routing.service import routing_status
from crm_core.schedules.schemas import ExceptionIn, IntervalIn, ScheduleIn
from crm_core.schedules.service import replace_schedule
from tests.conftest import UserFactory
from tests.seeding import pbx_sync_state

pytestmark = pytest.mark.usefixtures("db")

# Tuesday 2026-03-10 10:00 UTC
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
ALL_WEEK = ScheduleIn(
    intervals=[IntervalIn(weekday=d, start=time(0), end=time(0)) for d in range(7)]
)
RouterFactory = Callable[..., Router]


@pytest.fixture
async def make_router(database_url: str) -> AsyncIterator[RouterFactory]:
    routers: list[Router] = []

    def factory(url: str | None = None, **options: Any) -> Router:
        options.setdefault("clock", lambda: NOW)
        options.setdefault("schedule_ttl", 0.0)
        router = Router(url or database_url, **options)
        routers.append(router)
        return router

    yield factory
    for r in routers:
        await r.close()


async def on_duty(
    sessions: async_sessionmaker[AsyncSession], user_id: int, schedule: ScheduleIn = ALL_WEEK
) -> None:
    async with sessions() as s:
        await replace_schedule(s, user_id, schedule)
        await s.commit()


async def agents(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    n: int,
    *,
    role: str = "manager",
    first_ext: int = 101,
) -> list[int]:
    ids = []
    for i in range(n):
        user, _ = await make_user(role=role, extension=str(first_ext + i))
        await on_duty(sessions, user.id)
        ids.append(user.id)
    return ids


async def client_of(
    sessions: async_sessionmaker[AsyncSession], phone: str, responsible_id: int | None
) -> tuple[int, int]:
    async with sessions() as s:
        client = await create_client(
            s,
            ClientCreate(name="Ivan Petrov", phones=[phone], responsible_id=responsible_id),  # type: ignore[list-item]
            region="RU",
        )
        deal, _ = await ensure_open_deal(s, client.id, responsible_id=responsible_id, title="Call")
        await s.commit()
        return client.id, deal.id


async def set_state(sessions: async_sessionmaker[AsyncSession], extension: str, state: str) -> None:
    async with sessions() as s:
        await s.merge(AgentState(extension=extension, state=state, linkedid="1.1", since=NOW))
        await s.commit()


# --- the rule ----------------------------------------------------------------------------------


async def test_a_known_caller_reaches_the_responsible_manager(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    _, m2, _ = await agents(make_user, sessions, 3)
    client_id, deal_id = await client_of(sessions, "+7 916 123-45-67", m2)
    router = make_router()
    for caller in ("+79161234567", "89161234567", "79161234567"):  # trunks write it differently
        d = await router.route(caller, "84951112233", {})
        assert (d.target, d.user_id, d.client_id, d.deal_id, d.reason) == (
            "102",
            m2,
            client_id,
            deal_id,
            Reason.responsible,
        )


async def test_a_busy_or_off_duty_responsible_falls_back_to_round_robin(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    m1, m2, m3 = await agents(make_user, sessions, 3)
    client_id, _ = await client_of(sessions, "+79161234567", m2)
    router = make_router()
    await set_state(sessions, "102", "talking")
    d = await router.route("+79161234567", "", {})
    assert d.reason == Reason.round_robin and d.user_id in (m1, m3) and d.client_id == client_id
    await set_state(sessions, "102", "free")
    await on_duty(sessions, m2, ScheduleIn())  # no shifts at all
    d = await router.route("+79161234567", "", {})
    assert d.reason == Reason.round_robin and d.user_id in (m1, m3)


async def test_round_robin_rotates_and_skips_busy_agents(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    m = await agents(make_user, sessions, 4)
    router = make_router()
    got = [(await router.route("anonymous", "", {})).user_id for _ in range(8)]
    assert got == m + m
    await set_state(sessions, "102", "ringing")
    await set_state(sessions, "103", "talking")
    got = [(await router.route("", "", {})).target for _ in range(4)]
    assert got == ["101", "104", "101", "104"]


async def test_operators_take_calls_supervisors_and_agents_off_duty_do_not(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    (op,) = await agents(make_user, sessions, 1, role="operator", first_ext=201)
    await agents(make_user, sessions, 1, role="supervisor", first_ext=301)
    await make_user(role="manager", extension="401")  # no schedule: never on duty
    vacation, _ = await make_user(role="manager", extension="402")
    await on_duty(
        sessions,
        vacation.id,
        ScheduleIn(
            intervals=ALL_WEEK.intervals,
            exceptions=[
                ExceptionIn(
                    kind="vacation", start_date=date(2026, 3, 1), end_date=date(2026, 3, 10)
                )
            ],
        ),
    )
    router = make_router()
    assert {(await router.route("", "", {})).user_id for _ in range(5)} == {op}


async def test_nobody_on_duty_or_everyone_busy_answers_an_empty_target(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    router = make_router()
    d = await router.route("+79161234567", "", {})
    assert (d.target, d.reason) == ("", Reason.nobody_on_duty)
    await agents(make_user, sessions, 2)
    await set_state(sessions, "101", "ringing")
    await set_state(sessions, "102", "talking")
    d = await router.route("+79161234567", "", {})
    assert (d.target, d.reason) == ("", Reason.all_busy)


async def test_a_schedule_edit_reaches_the_cached_router_by_notification(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    (m1,) = await agents(make_user, sessions, 1)
    router = make_router(schedule_ttl=3600.0)  # only the NOTIFY can refresh it in this test
    assert (await router.route("", "", {})).user_id == m1
    await on_duty(sessions, m1, ScheduleIn())
    for _ in range(100):  # the notification travels asynchronously
        d = await router.route("", "", {})
        if d.target == "":
            break
        await asyncio.sleep(0.02)
    assert (d.target, d.reason) == ("", Reason.nobody_on_duty)


# --- fairness --------------------------------------------------------------------------------


def assert_fair(counts: Counter[int | None], users: list[int], total: int) -> None:
    assert None not in counts, counts
    share = total // len(users)
    assert set(counts) == set(users)
    assert all(share - 1 <= counts[u] <= share + 1 for u in users), counts


async def test_400_concurrent_calls_over_4_managers_in_one_instance(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    users = await agents(make_user, sessions, 4)
    router = make_router(max_batch=16)
    decisions = await asyncio.gather(*(router.route("", "", {}) for _ in range(400)))
    assert_fair(Counter(d.user_id for d in decisions), users, 400)


async def test_400_concurrent_calls_over_4_managers_in_two_instances(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    make_router: RouterFactory,
    database_url: str,
) -> None:
    users = await agents(make_user, sessions, 4)
    # two engines, as two service processes would have; small batches interleave their picks
    engines = [make_engine(database_url), make_engine(database_url)]
    routers = [Router.from_engine(e, clock=lambda: NOW, max_batch=3) for e in engines]
    try:
        calls = [routers[i % 2].route("", "", {}) for i in range(400)]
        decisions = await asyncio.gather(*calls)
    finally:
        for r in routers:
            await r.close()
        for e in engines:
            await e.dispose()
    assert_fair(Counter(d.user_id for d in decisions), users, 400)
    assert all(r.stats.batches > 10 for r in routers)


async def test_routing_pick_is_fair_under_many_concurrent_connections(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # The database function alone, one pick per statement from 8 connections at once.
    users = await agents(make_user, sessions, 4)
    conns = [await asyncpg.connect(database_url) for _ in range(8)]
    try:

        async def picks(conn: asyncpg.Connection) -> list[int]:
            got = []
            for _ in range(50):
                got += await conn.fetchval("SELECT routing_pick($1::int[], 1)", users)
            return got

        results = await asyncio.gather(*(picks(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    counts: Counter[int | None] = Counter(u for r in results for u in r)
    assert_fair(counts, users, 400)
    assert sorted(counts.values()) == [100, 100, 100, 100]


# --- failures --------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_database_down_answers_an_empty_target_at_once_and_logs_it(
    make_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"
    router = make_router(url, connect_timeout=0.5, query_timeout=0.5, retry_after=60.0)
    with caplog.at_level(logging.ERROR, logger="crm_core.routing.router"):
        first = await router.route("+79161234567", "", {})
        rest = await asyncio.gather(*(router.route("", "", {}) for _ in range(50)))
    assert (first.target, first.reason) == ("", Reason.unavailable)
    assert {(d.target, d.reason) for d in rest} == {("", Reason.unavailable)}
    assert router.stats.failures == 1  # the rest did not even try: the outage is remembered
    assert "routing database unavailable" in caplog.text


async def test_from_engine_on_a_dead_engine(make_router: RouterFactory) -> None:
    engine: AsyncEngine = make_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/x")
    router = Router.from_engine(engine, connect_timeout=0.5)
    try:
        assert (await router.route("", "", {})).reason == Reason.unavailable
        assert await router.warm_up() is False
    finally:
        await router.close()
        await engine.dispose()


# --- status ----------------------------------------------------------------------------------


async def test_status_lists_duty_state_and_turn(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    m1, m2, m3 = await agents(make_user, sessions, 3)
    off, _ = await make_user(role="manager", extension="109")
    await set_state(sessions, "102", "ringing")
    router = make_router()
    assert (await router.route("", "", {})).user_id == m1
    async with sessions() as s:
        status = await routing_status(s, NOW)
    by_id = {a.user_id: a for a in status.agents}
    assert by_id[m1].on_duty and by_id[m1].state == "free" and by_id[m1].routed_count == 1
    assert by_id[m2].state == "ringing"
    assert not by_id[off.id].on_duty
    assert status.turn == [m3, m1] and status.next_user_id == m3


async def test_batch_probes_the_phone_index_under_the_generic_plan(database_url: str) -> None:
    """The router's connection forces generic plans; its callers lookup must stay an index probe
    per number. Written as a join, the generic plan hashed all of client_phones on every batch."""
    from crm_core.db import asyncpg_dsn
    from crm_core.routing import repository as sql

    conn = await asyncpg.connect(
        asyncpg_dsn(database_url), server_settings={"plan_cache_mode": "force_generic_plan"}
    )
    try:
        await conn.execute(
            "INSERT INTO clients (kind, name, readiness, notes)"
            " SELECT 'person', 'Client ' || i, 0, '' FROM generate_series(1, 3000) AS i;"
            "INSERT INTO client_phones (client_id, e164, raw)"
            " SELECT id, '+7916' || lpad(id::text, 7, '0'), '' FROM clients;"
            "ANALYZE clients; ANALYZE client_phones"
        )
        await conn.execute(
            f"PREPARE batch(text[], int[], text[], text[], timestamptz, bigint) AS {sql.BATCH_SQL}"
        )
        rows = await conn.fetch(
            "EXPLAIN EXECUTE batch('{+79160000001}', '{1}', '{101}', '{ringing,talking}', now(), 0)"
        )
    finally:
        await conn.close()
    plan = "\n".join(r[0] for r in rows)
    assert "Index Scan using uq_client_phones_e164 on client_phones" in plan, plan
    assert "Seq Scan on client_phones" not in plan, plan


# --- agent_states out of sync with the PBX (pbx_sync) ---------------------------------------


FOLLOWER = uuid.uuid4()


async def mark_sync(
    sessions: async_sessionmaker[AsyncSession],
    *,
    synced: bool,
    free: str | None = None,
    at: datetime = NOW,
) -> None:
    """What the follower of the PBX commits: its claim at its start (not in sync, and the one
    that writes from then on), then its live lane's, the agent `free` freed and the flag at
    once."""
    async with sessions() as s:
        if free is not None:
            await s.merge(AgentState(extension=free, state="free", linkedid=None, since=NOW))
        if await pbx_sync_state(s) is None:
            assert not synced
            await pbx_sync.claim(s, FOLLOWER, at)
        else:
            await pbx_sync.mark(s, FOLLOWER, synced=synced, at=at)
        await s.commit()


async def until(predicate: Callable[[], bool]) -> None:
    """Until the router reports a step (it owns no event a test could wait on)."""
    async with asyncio.timeout(30):
        while not predicate():
            await asyncio.sleep(0.01)


async def turns_taken(sessions: async_sessionmaker[AsyncSession], ids: list[int]) -> int:
    async with sessions() as s:
        return sum(count for _, count in (await repository.turns(s, ids)).values())


async def test_out_of_sync_a_call_waits_for_the_reconcile_and_reaches_the_freed_agent(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], make_router: RouterFactory
) -> None:
    m101, m102 = await agents(make_user, sessions, 2)
    await client_of(sessions, "+79161234567", m101)
    # 101's call ended while the AMI link was down: still "talking" until the reconcile commits
    await set_state(sessions, "101", "talking")
    await mark_sync(sessions, synced=False)
    router = make_router(sync_wait=120.0)  # only the commit below can end this wait
    decision = asyncio.ensure_future(router.route("+79161234567", "", {}))
    await until(lambda: router.stats.sync_waits == 1)
    assert not decision.done()

    await mark_sync(sessions, synced=True, free="101")
    async with asyncio.timeout(30):  # its NOTIFY ends the wait, not the 120 s
        d = await decision
    assert (d.target, d.reason, d.user_id) == ("101", Reason.responsible, m101)
    assert router.stats.sync_gave_up == 0
    # the read that found it out of sync dealt nobody a round-robin turn
    assert await turns_taken(sessions, [m101, m102]) == 0


async def test_out_of_sync_past_the_bound_a_call_is_routed_on_what_is_known_with_a_warning(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    make_router: RouterFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    m101, m102 = await agents(make_user, sessions, 2)
    await client_of(sessions, "+79161234567", m101)
    await set_state(sessions, "101", "talking")
    await mark_sync(sessions, synced=False)
    router = make_router(sync_wait=0.2)
    with caplog.at_level(logging.WARNING, logger="crm_core.routing.router"):
        d = await router.route("+79161234567", "", {})
    assert (d.target, d.reason, d.user_id) == ("102", Reason.round_robin, m102)
    assert (router.stats.sync_waits, router.stats.sync_gave_up) == (1, 1)
    (warning,) = [r for r in caplog.records if "not in sync" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert (getattr(warning, "pbx_sync_epoch", None), getattr(warning, "calls", None)) == (1, 1)
    assert await turns_taken(sessions, [m101, m102]) == 1  # the one pick, once given up

    # the same episode: no second wait
    d = await router.route("+79161234567", "", {})
    assert (d.target, router.stats.sync_waits) == ("102", 1)
    # a new loss is a new episode: it is waited for again
    await mark_sync(sessions, synced=False)
    d = await router.route("+79161234567", "", {})
    assert (d.target, router.stats.sync_waits, router.stats.sync_gave_up) == ("102", 2, 2)


@pytest.mark.parametrize("flag", ["none", "synced", "waiting off", "stale"])
async def test_in_sync_or_nobody_following_a_pbx_a_call_never_waits(
    flag: str,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    make_router: RouterFactory,
) -> None:
    """No row (AMI off: nobody follows a PBX), in sync, ROUTING_SYNC_WAIT=0, or out of sync
    for over 10 minutes (nobody is coming to say otherwise)."""
    _, m102 = await agents(make_user, sessions, 2)
    await set_state(sessions, "101", "talking")
    if flag == "stale":  # a follower's clean stop, 11 minutes before the router's clock
        await mark_sync(sessions, synced=False, at=NOW - timedelta(minutes=11))
    elif flag != "none":
        await mark_sync(sessions, synced=False)  # a follower's start
    if flag == "synced":
        await mark_sync(sessions, synced=True)
    router = make_router(sync_wait=0.0 if flag == "waiting off" else 120.0)
    d = await router.route("+79161234567", "", {})
    assert (d.target, d.reason, d.user_id) == ("102", Reason.round_robin, m102)
    assert router.stats.sync_waits == 0
