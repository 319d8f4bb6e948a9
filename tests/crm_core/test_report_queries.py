"""The reports' one-pass statements (crm_core/reports): the period's edges, missed calls moved to
the agents they rang (only to real extensions, once per call, whatever the JSON holds), deals for
several periods in one pass, time per state summed in SQL, contact results counted in SQL equal
to the reference fold and to hand counts (a client postponed by two managers), queue waits at
their thresholds, custom plans for the transaction only. Frozen dates (February 2026)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStage
from crm_core.presence import service as presence
from crm_core.presence.models import PresenceSpan
from crm_core.reports import queues, results_report, sales, service
from crm_core.reports.models import QueueEntry
from crm_core.results.models import ContactResult, ContactResultRecord
from crm_core.users.models import User
from tests.conftest import UserFactory
from tests.crm_core.results_fold import fold

pytestmark = pytest.mark.usefixtures("db")

START = datetime(2026, 2, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)


async def _client(s: AsyncSession, name: str = "C") -> Client:
    c = Client(kind="person", name=name, readiness=0, notes="", created_at=START)
    s.add(c)
    await s.flush()
    return c


async def _deal(s: AsyncSession, client: Client) -> Deal:
    stage = await s.scalar(select(DealStage).where(~DealStage.is_closed).limit(1))
    assert stage is not None
    d = Deal(
        client_id=client.id, title="d", stage_id=stage.id, created_at=START - timedelta(days=9)
    )
    s.add(d)
    await s.flush()
    return d


def _call(
    deal: Deal, at: datetime, user: int | None, direction: str, status: str, **extra: Any
) -> Communication:
    return Communication(
        kind="call",
        direction=direction,
        status=status,
        client_id=deal.client_id,
        deal_id=deal.id,
        user_id=user,
        phone="+79160000000",
        occurred_at=at,
        talk_seconds=60.0 if status == "answered" else 0.0,
        extra=extra,
    )


async def test_missed_calls_go_to_the_agents_rung_within_the_period(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, _ = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    async with sessions() as s:
        c = await _deal(s, await _client(s))
        s.add_all(
            [
                # at the period's first instant: in; at its end: out; just before it: in
                _call(c, START, m1.id, "in", "answered"),
                _call(c, END, m1.id, "in", "answered"),
                _call(c, END - timedelta(microseconds=1), m2.id, "out", "answered"),
                # nobody's, rang 101 twice, 102 and an extension nobody has: m1 and m2 once each
                _call(
                    c,
                    START + timedelta(days=1),
                    None,
                    "in",
                    "abandoned",
                    missed=True,
                    agents_rung=["101", "102", "101", "999"],
                ),
                # nobody's, rang 101 (given as a number): m1
                _call(
                    c,
                    START + timedelta(days=2),
                    None,
                    "out",
                    "no_answer",
                    missed=True,
                    agents_rung=[101],
                ),
                # nobody's, rang no one we know, or the JSON is not a list: stays nobody's
                _call(
                    c,
                    START + timedelta(days=3),
                    None,
                    "in",
                    "abandoned",
                    missed=True,
                    agents_rung=["999"],
                ),
                _call(
                    c,
                    START + timedelta(days=3),
                    None,
                    "in",
                    "abandoned",
                    missed=True,
                    agents_rung="101",
                ),
                # m2's own missed call: m2's, not moved to the agents it rang
                _call(
                    c,
                    START + timedelta(days=4),
                    m2.id,
                    "in",
                    "abandoned",
                    missed=True,
                    agents_rung=["101"],
                ),
                # not answered but not flagged missed: in calls_in_missed, not in missed
                _call(c, START + timedelta(days=5), m1.id, "out", "no_answer"),
            ]
        )
        await s.commit()
    async with sessions() as s:
        team, figures = await service._figures(s, START, END)
    assert figures[m1.id] | {"talk_seconds": 0} == {
        **dict.fromkeys(service.COMM_KEYS, 0),
        "calls_in": 2,  # answered at START, rung by the missed one of day 1
        "calls_out": 2,  # day 2's missed (rang 101), day 5's own
        "answered": 1,
        "missed": 2,
        "calls_in_answered": 1,
        "calls_in_missed": 1,
        "calls_out_missed": 2,
    }
    assert figures[m1.id]["talk_seconds"] == 60.0
    assert (figures[m2.id]["calls_in"], figures[m2.id]["calls_out"]) == (2, 1)
    assert (figures[m2.id]["missed"], figures[m2.id]["calls_in_missed"]) == (2, 2)
    # nobody keeps the two missed calls that rang no one known
    assert (figures[None]["calls_in"], figures[None]["missed"]) == (2, 2)
    assert figures[None]["calls_out"] == 0
    # the team counts each call once: 8 calls in the period, 5 flagged missed
    assert (team["calls_in"] + team["calls_out"], team["missed"], team["answered"]) == (8, 5, 2)


async def test_deals_for_a_day_and_its_month_in_one_pass(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, _ = await make_user(role="manager", extension="101")
    day = datetime(2026, 2, 10, tzinfo=UTC)
    async with sessions() as s:
        stages = {st.name: st for st in await s.scalars(select(DealStage))}
        c = await _client(s)

        def deal(amount: str, created: datetime, stage: str, closed: datetime | None) -> Deal:
            return Deal(
                client_id=c.id,
                title="d",
                amount=Decimal(amount),
                responsible_id=m1.id,
                lead_source="web" if amount != "7" else None,
                stage_id=stages[stage].id,
                created_at=created,
                closed_at=closed,
            )

        s.add_all(
            [
                deal("100", START, "Won", day),  # won on the day
                deal("20", day, "Lost", day + timedelta(hours=5)),  # created and lost that day
                deal("7", day + timedelta(days=1), "Unsorted", None),  # after the day
                deal("3", START - timedelta(days=3), "Won", START + timedelta(days=2)),
            ]
        )
        await s.commit()
    async with sessions() as s:
        (on_day, mtd), sources = await service.deal_figures_for(
            s, [(day, day + timedelta(days=1)), (START, day + timedelta(days=1))]
        )
    assert on_day == {
        m1.id: {
            "created": 1,
            "created_sum": Decimal("20.00"),
            "won": 1,
            "won_sum": Decimal("100.00"),
            "lost": 1,
            "lost_sum": Decimal("20.00"),
        }
    }
    assert (mtd[m1.id]["created"], mtd[m1.id]["created_sum"]) == (2, Decimal("120.00"))
    assert (mtd[m1.id]["won"], mtd[m1.id]["won_sum"]) == (2, Decimal("103.00"))
    assert sources == [("web", 1, Decimal("20.00"))]  # created on the day, by source


async def test_time_per_state_is_clipped_to_the_period(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, _ = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    async with sessions() as s:
        s.add_all(
            [
                # from before the period into it: 1 h of it
                PresenceSpan(
                    user_id=m1.id,
                    state="paused",
                    since=START - timedelta(hours=2),
                    until=START + timedelta(hours=1),
                ),
                PresenceSpan(
                    user_id=m1.id,
                    state="available",
                    since=START + timedelta(hours=1),
                    until=START + timedelta(hours=1, seconds=30.5),
                ),
                # still on: up to the period's end
                PresenceSpan(
                    user_id=m1.id, state="available", since=END - timedelta(hours=3), until=None
                ),
                # outside the period, and touching its end only
                PresenceSpan(user_id=m2.id, state="dnd", since=END, until=None),
                PresenceSpan(
                    user_id=m2.id, state="dnd", since=START - timedelta(hours=1), until=START
                ),
            ]
        )
        await s.commit()
    async with sessions() as s:
        spent = await presence.time_per_state(s, START, END)
        only_m2 = await presence.time_per_state(s, START, END, [m2.id])
    assert spent == {m1.id: {"paused": 3600.0, "available": 3 * 3600 + 30.5}}
    assert only_m2 == {}


KINDS = ("postponed", "refused", "offer_sent", "sale", "wrong_number", "other")


async def _results(s: AsyncSession) -> dict[str, ContactResult]:
    """One contact result of each kind, by kind."""
    results = {
        k: ContactResult(name=k, kind=k, position=i, is_active=True) for i, k in enumerate(KINDS)
    }
    s.add_all(results.values())
    await s.flush()
    return results


async def test_contact_results_counted_in_sql_equal_the_pure_fold(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, _ = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    gone, _ = await make_user(role="manager", extension="103")
    kinds = list(KINDS)
    records: list[tuple[int | None, int, str, datetime]] = []
    async with sessions() as s:
        results = await _results(s)
        clients = [await _client(s, f"C{i}") for i in range(3)]
        await s.flush()
        for i in range(40):  # a spread of users, clients, kinds; some outside the period
            user = (m1.id, m2.id, gone.id)[i % 3]
            kind = kinds[(i * 5) % 6] if i % 4 else "postponed"
            at = START + timedelta(days=i) - timedelta(days=3)
            records.append((user, clients[i % 3].id, kind, at))
            s.add(
                ContactResultRecord(
                    result_id=results[kind].id,
                    kind=kind,
                    client_id=clients[i % 3].id,
                    user_id=user,
                    created_at=at,
                )
            )
        await s.commit()
    async with sessions() as s:  # the third manager is deleted: his records stay, user NULL
        await s.delete(await s.get(User, gone.id))
        await s.commit()
    inside = [(None if u == gone.id else u, c, k) for u, c, k, at in records if START <= at < END]
    groups: dict[tuple[int | None, int, str], int] = {}
    for key in inside:
        groups[key] = groups.get(key, 0) + 1
    per_user, team = fold([(*key, n) for key, n in groups.items()])
    async with sessions() as s:
        everyone = await results_report.results_report(s, START, END)
        mine = await results_report.results_report(s, START, END, m1.id)
    by_user = {r["user_id"]: r for r in everyone["rows"]}
    assert set(by_user) == {m1.id, m2.id, None}
    for uid in (m1.id, m2.id, None):
        assert {k: v for k, v in by_user[uid].items() if k not in ("user_id", "name")} == (
            per_user[uid]
        )
    assert by_user[None]["name"] == "(deleted user)"
    assert {k: v for k, v in everyone["total"].items() if k not in ("user_id", "name")} == team
    assert team["contacts"] == len(inside) and team["clients_postponed"] > 0
    assert [r["user_id"] for r in mine["rows"]] == [m1.id]
    mine_total = {k: v for k, v in mine["total"].items() if k not in ("user_id", "name")}
    assert mine_total == per_user[m1.id]


async def test_the_team_sums_a_client_postponed_by_two_managers_in_sql(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, _ = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    gone, _ = await make_user(role="manager", extension="103")
    at = START + timedelta(days=1)
    async with sessions() as s:
        results = await _results(s)
        c1, c2 = await _client(s, "C1"), await _client(s, "C2")
        # client 1 postponed twice by m1 and three times by m2; client 2 sold by a deleted user
        setters = [(m1.id, c1, "postponed")] * 2 + [(m2.id, c1, "postponed")] * 3
        setters.append((gone.id, c2, "sale"))
        s.add_all(
            ContactResultRecord(
                result_id=results[kind].id,
                kind=kind,
                client_id=client.id,
                user_id=user,
                created_at=at,
            )
            for user, client, kind in setters
        )
        await s.commit()
    async with sessions() as s:
        await s.delete(await s.get(User, gone.id))
        await s.commit()
    async with sessions() as s:
        report = await results_report.results_report(s, START, END)
    rows = {r["user_id"]: r for r in report["rows"]}
    assert (rows[m1.id]["postponed"], rows[m1.id]["clients_postponed"]) == (2, 1)
    assert rows[m1.id]["postponements_per_client_max"] == 2
    assert rows[m1.id]["effectiveness_percent"] == 0.0
    assert rows[m2.id]["postponements_per_client_max"] == 3
    assert (rows[None]["sale"], rows[None]["effectiveness_percent"]) == (1, 100.0)
    team = report["total"]
    assert (team["contacts"], team["postponed"], team["sale"]) == (6, 5, 1)
    assert (team["clients_postponed"], team["postponements_per_client_max"]) == (1, 5)
    assert team["postponements_per_client_avg"] == 5.0
    assert team["effectiveness_percent"] == round(1 * 100 / 6, 1)


async def test_queue_waits_at_the_thresholds_count_in(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    t = START + timedelta(days=2)
    s20, s5 = timedelta(seconds=20), timedelta(seconds=5)
    tiny = timedelta(microseconds=1)
    stays = [  # (answered after, left after, abandoned)
        (s20, s20, False),  # answered at exactly the service level: in it
        (s20 + tiny, s20 + tiny, False),  # just after: not in it
        (None, s5, True),  # abandoned at exactly the short-abandon limit: short
        (None, s5 + tiny, True),  # just after: a real abandon
    ]
    async with sessions() as s:
        for i, (answered, left, abandoned) in enumerate(stays):
            s.add(
                QueueEntry(
                    linkedid=f"q{i}",
                    queue="sales",
                    joined_at=t,
                    left_at=t + left,
                    answered_at=t + answered if answered else None,
                    abandoned=abandoned,
                )
            )
        # joined at the period's end: not this period's
        s.add(QueueEntry(linkedid="q9", queue="sales", joined_at=END, abandoned=True))
        await s.commit()
    async with sessions() as s:
        (row,) = await queues.queue_stats(s, START, END, service_level_s=20, short_abandon_s=5)
    assert (row["offered"], row["answered"], row["abandoned"], row["short_abandoned"]) == (
        4,
        2,
        1,
        1,
    )
    assert row["answered_in_service_level"] == 1
    assert row["asa_seconds"] == 20.0 and row["longest_wait_seconds"] == 20.0


async def test_reports_plan_with_their_period_for_their_transaction_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        await service.report(s, START, END)
        assert await s.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
        await s.commit()
        assert await s.scalar(text("SHOW plan_cache_mode")) == "auto"
    # every period report, each in a transaction of its own
    reports: dict[str, Callable[[AsyncSession], Awaitable[Any]]] = {
        "figures": lambda s: service.communication_figures(s, START, END),
        "deals": lambda s: service.deal_figures_for(s, [(START, END)]),
        "queues": lambda s: queues.queue_stats(
            s, START, END, service_level_s=20, short_abandon_s=5
        ),
        "hourly": lambda s: queues.hourly(s, START, "UTC", service_level_s=20, user_id=None),
        "lead sources": lambda s: sales.lead_source_report(s, START, END, None),
        "lost reasons": lambda s: sales.lost_reasons(s, START, END, None),
        "results": lambda s: results_report.results_report(s, START, END),
        "presence": lambda s: presence.time_per_state(s, START, END),
    }
    for name, run in reports.items():
        async with sessions() as s:
            await run(s)
            assert await s.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan", name
