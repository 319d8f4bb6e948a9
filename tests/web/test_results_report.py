"""Contact results per manager on a seeded month (March 2026, frozen: independent of today),
against figures worked out by hand here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.results.models import RESULT_KINDS, ContactResult, ContactResultRecord
from tests.conftest import UserFactory
from web.settings import Settings

pytestmark = pytest.mark.usefixtures("db")

MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-31"}


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)  # about noon in Moscow: the same day


async def seed(
    sessions: async_sessionmaker[AsyncSession], m1: int, m2: int, month: int = 3
) -> None:
    """Results set in March 2026 (or `month`; client: kinds, by whom):

      A: postponed 2, 5, 9 Mar, offer_sent 10 Mar (m1); postponed 3, 4 Mar (m2)
      B: postponed 6 Mar, sale 12 Mar (m1)
      C: wrong_number 7 Mar, refused 8 Mar, other 11 Mar (m1)
      D: offer_sent 13 Mar, sale 14 Mar, refused 15 Mar (m2)
    outside the month: A postponed 20th of the month before and 2nd of the month after (m2).
    """
    async with sessions() as s:
        results = {
            k: ContactResult(name=f"t-{k}", kind=k, position=i) for i, k in enumerate(RESULT_KINDS)
        }
        clients = {n: Client(kind="person", name=f"Client {n}", notes="") for n in "ABCD"}
        s.add_all([*results.values(), *clients.values()])
        await s.flush()
        specs = [
            ("A", "postponed", m1, at(month, 2)),
            ("A", "postponed", m1, at(month, 5)),
            ("A", "postponed", m1, at(month, 9)),
            ("A", "offer_sent", m1, at(month, 10)),
            ("A", "postponed", m2, at(month, 3)),
            ("A", "postponed", m2, at(month, 4)),
            ("B", "postponed", m1, at(month, 6)),
            ("B", "sale", m1, at(month, 12)),
            ("C", "wrong_number", m1, at(month, 7)),
            ("C", "refused", m1, at(month, 8)),
            ("C", "other", m1, at(month, 11)),
            ("D", "offer_sent", m2, at(month, 13)),
            ("D", "sale", m2, at(month, 14)),
            ("D", "refused", m2, at(month, 15)),
            ("A", "postponed", m2, at(month - 1, 20)),
            ("A", "postponed", m2, at(month + 1, 2)),
        ]
        s.add_all(
            ContactResultRecord(
                result_id=results[kind].id,
                kind=kind,
                client_id=clients[c].id,
                user_id=uid,
                created_at=when,
            )
            for c, kind, uid, when in specs
        )
        await s.commit()


def zeros(**kinds: int) -> dict[str, int]:
    return {k: kinds.get(k, 0) for k in RESULT_KINDS}


async def test_contact_results_on_a_seeded_month(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, h1 = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    m3, _ = await make_user(role="manager", extension="103")  # set no result
    _, sup = await make_user(role="supervisor")
    await seed(sessions, m1.id, m2.id)

    report = (await api.get("/api/reports/results", params=MARCH, headers=sup)).json()
    rows = {r["user_id"]: r for r in report["items"]}
    assert list(rows) == [m1.id, m2.id, m3.id]
    # m1: 9 results, one a wrong number; forward: offer A + sale B = 2 of 8; postponed A 3x, B 1x
    assert rows[m1.id] == {
        "user_id": m1.id,
        "name": m1.full_name,
        "contacts": 9,
        **zeros(postponed=4, offer_sent=1, sale=1, wrong_number=1, refused=1, other=1),
        "effectiveness_percent": round(2 * 100 / 8, 1),
        "clients_postponed": 2,
        "postponements_per_client_avg": (3 + 1) / 2,
        "postponements_per_client_max": 3,
    }
    # m2: 5 results in March (Feb and Apr left out); forward: offer D + sale D = 2 of 5
    assert rows[m2.id] == {
        "user_id": m2.id,
        "name": m2.full_name,
        "contacts": 5,
        **zeros(postponed=2, offer_sent=1, sale=1, refused=1),
        "effectiveness_percent": round(2 * 100 / 5, 1),
        "clients_postponed": 1,
        "postponements_per_client_avg": 2.0,
        "postponements_per_client_max": 2,
    }
    assert rows[m3.id] == {
        "user_id": m3.id,
        "name": m3.full_name,
        "contacts": 0,
        **zeros(),
        "effectiveness_percent": None,
        "clients_postponed": 0,
        "postponements_per_client_avg": None,
        "postponements_per_client_max": 0,
    }
    # the team: 14 results, 4 forward of 13; A postponed 3 + 2 = 5 times, B once
    assert report["total"] == {
        "user_id": None,
        "name": "total",
        "contacts": 14,
        **zeros(postponed=6, offer_sent=2, sale=2, wrong_number=1, refused=2, other=1),
        "effectiveness_percent": round(4 * 100 / 13, 1),
        "clients_postponed": 2,
        "postponements_per_client_avg": (5 + 1) / 2,
        "postponements_per_client_max": 5,
    }

    # a shorter period: 1-5 March, m1 postponed A twice, m2 twice; nothing forward
    early = (
        await api.get(
            "/api/reports/results", params={**MARCH, "date_to": "2026-03-05"}, headers=sup
        )
    ).json()
    assert early["total"]["contacts"] == 4 and early["total"]["effectiveness_percent"] == 0.0
    assert early["total"]["postponements_per_client_max"] == 4

    # a manager: their own row only, no team total
    own = (await api.get("/api/reports/results", params=MARCH, headers=h1)).json()
    assert [r["user_id"] for r in own["items"]] == [m1.id] and "total" not in own
    assert own["items"][0] == rows[m1.id]
    own_csv = await api.get("/api/reports/results", params={**MARCH, "format": "csv"}, headers=h1)
    assert len(own_csv.text.strip().split("\r\n")) == 2

    # CSV: a header, one line per manager, the team total
    csv = await api.get("/api/reports/results", params={**MARCH, "format": "csv"}, headers=sup)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = [line.split(",") for line in csv.text.strip().split("\r\n")]
    head = lines[0]
    assert head[:3] == ["user_id", "name", "contacts"] and "effectiveness_percent" in head
    assert len(lines) == 1 + 3 + 1
    last = dict(zip(head, lines[-1], strict=True))
    assert (last["name"], last["contacts"], last["effectiveness_percent"]) == (
        "total",
        "14",
        "30.8",
    )
    first = dict(zip(head, lines[1], strict=True))
    assert (first["user_id"], first["postponed"], first["postponements_per_client_avg"]) == (
        str(m1.id),
        "4",
        "2.0",
    )

    # bad dates: 422
    for params in (
        {"date_from": "2026-03-31", "date_to": "2026-03-01"},
        {"date_from": "2026-13-01"},
        {"date_from": "yesterday"},
        {"date_from": "2024-01-01", "date_to": "2026-03-01"},
    ):
        bad = await api.get("/api/reports/results", params=params, headers=sup)
        assert bad.status_code == 422, (params, bad.text)
    assert (await api.get("/api/reports/results", params=MARCH)).status_code == 401


async def test_the_period_runs_from_midnight_to_midnight_in_the_company_time_zone(
    api: httpx.AsyncClient,
    settings: Settings,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    m1, _ = await make_user(role="manager", extension="101")
    _, sup = await make_user(role="supervisor")
    tz = ZoneInfo(settings.core.default_timezone)
    first, after = datetime(2026, 3, 1, tzinfo=tz), datetime(2026, 4, 1, tzinfo=tz)
    tiny = timedelta(microseconds=1)
    # the month's first and last instants in, one instant either side out: a kind for each
    when = {"other": first - tiny, "sale": first, "offer_sent": after - tiny, "refused": after}
    async with sessions() as s:
        results = {k: ContactResult(name=f"t-{k}", kind=k, position=i) for i, k in enumerate(when)}
        client = Client(kind="person", name="Client E", notes="")
        s.add_all([*results.values(), client])
        await s.flush()
        s.add_all(
            ContactResultRecord(
                result_id=results[k].id, kind=k, client_id=client.id, user_id=m1.id, created_at=t
            )
            for k, t in when.items()
        )
        await s.commit()
    report = (await api.get("/api/reports/results", params=MARCH, headers=sup)).json()
    assert datetime.fromisoformat(report["from"]) == first
    assert datetime.fromisoformat(report["to"]) == after
    (row,) = report["items"]
    assert row["user_id"] == m1.id
    assert (row["contacts"], row["sale"], row["offer_sent"]) == (2, 1, 1)
    assert (row["other"], row["refused"]) == (0, 0)
