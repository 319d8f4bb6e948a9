"""Plans and sales reports on a seeded month (February 2026, frozen: independent of today),
against figures worked out by hand here."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStage, DealStageMove
from tests.conftest import UserFactory

pytestmark = pytest.mark.usefixtures("db")

FEB = {"date_from": "2026-02-01", "date_to": "2026-02-28"}


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 2, day, hour, 0, tzinfo=UTC)  # 12:00 or so in Moscow: the same day


async def seed(sessions: async_sessionmaker[AsyncSession], m1: int, m2: int) -> None:
    """m1 (ext 101) and m2 (ext 102), February 2026:

    deals (created -> closed):           amount  source    m
      A  3 Feb, won 10 Feb (Contract)      300   website   m1
      B  5 Feb, won 10 Feb (Deciding)      200   website   m1
      C 10 Feb, lost 10 Feb (Negotiation)   50   referral  m1   reason "price"
      D 10 Feb, open                        70   website   m2
      E 12 Feb, lost 20 Feb (Negotiation)   80   website   m2   reason "price"
      F 20 Jan, won 2 Feb (Contract)       400   referral  m2   (created before the month)
    communications on 10 Feb: m1 two inbound answered, one outbound answered, one outbound not
    answered, one email in, two emails out, one SMS in; a missed inbound call nobody owns that rang
    101 and 102; on 11 Feb m2 one inbound answered.
    """
    async with sessions() as s:
        stages = {st.name: st for st in await s.scalars(select(DealStage))}
        clients = []
        for i, (src, owner) in enumerate((("website", m1), ("referral", m1), ("website", m2))):
            c = Client(
                kind="person",
                name=f"Client {i}",
                lead_source=src,
                responsible_id=owner,
                readiness=0,
                notes="",
                created_at=at(3 + i),
            )
            s.add(c)
            clients.append(c)
        await s.flush()

        def deal(
            title: str,
            amount: str,
            source: str,
            owner: int,
            client: Client,
            created: datetime,
            stage: str,
            closed: datetime | None = None,
            via: str | None = None,  # the stage it was lost or won from (stage history)
            reason: str | None = None,
        ) -> Deal:
            d = Deal(
                client_id=client.id,
                title=title,
                amount=Decimal(amount),
                responsible_id=owner,
                lead_source=source,
                stage_id=stages[stage].id,
                created_at=created,
                closed_at=closed,
                lost_reason=reason,
            )
            s.add(d)
            return d

        specs: list[Any] = [
            ("A", "300", "website", m1, clients[0], at(3), "Won", at(10), "Contract"),
            ("B", "200", "website", m1, clients[0], at(5), "Won", at(10), "Deciding"),
            (
                "C",
                "50",
                "referral",
                m1,
                clients[1],
                at(10),
                "Lost",
                at(10, 11),
                "Negotiation",
                "price",
            ),
            ("D", "70", "website", m2, clients[2], at(10), "Unsorted"),
            ("E", "80", "website", m2, clients[2], at(12), "Lost", at(20), "Negotiation", "price"),
            (
                "F",
                "400",
                "referral",
                m2,
                clients[2],
                datetime(2026, 1, 20, 9, tzinfo=UTC),
                "Won",
                at(2),
                "Contract",
            ),
        ]
        made = [(deal(*spec), spec) for spec in specs]
        await s.flush()
        for d, spec in made:
            if len(spec) > 8:
                s.add(
                    DealStageMove(
                        deal_id=d.id,
                        from_stage_id=None,
                        to_stage_id=stages[spec[8]].id,
                        moved_at=spec[5],
                    )
                )
                s.add(
                    DealStageMove(
                        deal_id=d.id,
                        from_stage_id=stages[spec[8]].id,
                        to_stage_id=stages[spec[6]].id,
                        moved_at=spec[7],
                    )
                )

        def call(
            direction: str, status: str, user: int | None, when: datetime, **extra: Any
        ) -> None:
            s.add(
                Communication(
                    kind="call",
                    direction=direction,
                    status=status,
                    client_id=clients[0].id,
                    deal_id=made[0][0].id,
                    user_id=user,
                    occurred_at=when,
                    talk_seconds=60.0 if status == "answered" else 0.0,
                    extra=extra,
                )
            )

        def message(kind: str, direction: str, user: int, when: datetime) -> None:
            s.add(
                Communication(
                    kind=kind,
                    direction=direction,
                    status="delivered",
                    client_id=clients[0].id,
                    deal_id=made[0][0].id,
                    user_id=user,
                    occurred_at=when,
                    extra={},
                )
            )

        call("in", "answered", m1, at(10, 8))
        call("in", "answered", m1, at(10, 10))
        call("out", "answered", m1, at(10, 11))
        call("out", "no_answer", m1, at(10, 12))
        call("in", "abandoned", None, at(10, 13), missed=True, agents_rung=["101", "102", "101"])
        call("in", "answered", m2, at(11))
        message("email", "in", m1, at(10))
        message("email", "out", m1, at(10))
        message("email", "out", m1, at(10, 14))
        message("sms", "in", m1, at(10))
        await s.commit()


async def test_plans_and_reports_on_a_seeded_month(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, h1 = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    _, sup = await make_user(role="supervisor")
    await seed(sessions, m1.id, m2.id)

    # plans: staff only, checked input
    for uid, amount in ((m1.id, "1000"), (m2.id, 500)):
        r = await api.put(f"/api/plans/{uid}/2026-02", json={"amount": amount}, headers=sup)
        assert r.status_code == 200, r.text
    assert r.json() == {"user_id": m2.id, "month": "2026-02", "amount": "500.00"}
    for month, body in (
        ("2026-13", {"amount": 1}),
        ("2026-2", {"amount": 1}),
        ("26-02", {"amount": 1}),
        ("2026-02", {"amount": -1}),
        ("2026-02", {"amount": "lots"}),
        ("2026-02", {"amount": "1.001"}),
        ("2026-02", {"amount": "Infinity"}),
        ("2026-02", {}),
    ):
        bad = await api.put(f"/api/plans/{m1.id}/{month}", json=body, headers=sup)
        assert bad.status_code == 422, (month, body, bad.text)
    assert (
        await api.put(f"/api/plans/{m1.id}/2026-02", json={"amount": 1}, headers=h1)
    ).status_code == 403
    assert (
        await api.put("/api/plans/99999/2026-02", json={"amount": 1}, headers=sup)
    ).status_code == 404
    assert (await api.get(f"/api/plans/{m1.id}/2026-02", headers=h1)).json()["amount"] == "1000.00"
    assert [p["user_id"] for p in (await api.get("/api/plans/2026-02", headers=h1)).json()] == [
        m1.id
    ]

    # the month: won = closed won in February (A, B for m1; F for m2, though created in January)
    report = (await api.get("/api/reports", params=FEB, headers=sup)).json()
    rows = {r["user_id"]: r for r in report["per_manager"]}
    assert set(rows) == {m1.id, m2.id}  # the missed call counts for 101 and 102, not nobody
    assert (rows[m1.id]["plan_amount"], rows[m1.id]["won_amount"], rows[m1.id]["plan_percent"]) == (
        "1000.00",
        "500.00",
        50.0,
    )
    assert (rows[m2.id]["plan_amount"], rows[m2.id]["won_amount"], rows[m2.id]["plan_percent"]) == (
        "500.00",
        "400.00",
        80.0,
    )
    assert (rows[m1.id]["created"], rows[m1.id]["created_sum"]) == (3, "550.00")
    assert (rows[m1.id]["lost"], rows[m1.id]["lost_sum"]) == (1, "50.00")
    assert (rows[m1.id]["calls_in"], rows[m1.id]["missed"], rows[m1.id]["calls_out"]) == (3, 1, 2)
    assert (rows[m2.id]["calls_in"], rows[m2.id]["missed"]) == (2, 1)
    team = report["team"]
    assert (team["calls_in"], team["missed"], team["plan_amount"], team["plan_percent"]) == (
        4,  # the missed call once
        1,
        "1500.00",
        60.0,  # 900 of 1500
    )
    # half a month of plan: 1-14 February is 14 of 28 days
    half = (
        await api.get("/api/reports", params={**FEB, "date_to": "2026-02-14"}, headers=sup)
    ).json()
    assert {r["user_id"]: r["plan_amount"] for r in half["per_manager"]}[m1.id] == "500.00"
    # a manager: their own row only
    own = (await api.get("/api/reports", params=FEB, headers=h1)).json()
    assert [r["user_id"] for r in own["per_manager"]] == [m1.id] and "team" not in own
    csv = await api.get("/api/reports", params={**FEB, "format": "csv"}, headers=sup)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().split("\r\n")
    assert len(lines) == 1 + 2 + 1 and lines[-1].split(",")[1] == "team"

    # the manager's day, 10 February
    day = (await api.get("/api/reports/day", params={"date": "2026-02-10"}, headers=sup)).json()
    d1 = {r["user_id"]: r for r in day["rows"]}[m1.id]
    assert d1 == {
        "user_id": m1.id,
        "name": m1.full_name,
        "deals_created": 1,
        "deals_created_sum": "50.00",
        "deals_cancelled": 1,
        "deals_cancelled_sum": "50.00",
        "calls_in_answered": 2,
        "calls_in_missed": 1,
        "calls_out_answered": 1,
        "calls_out_missed": 1,
        "emails_in": 1,
        "emails_out": 2,
        "sms_in": 1,
        "sms_out": 0,
        "sales_day": 2,
        "sales_day_sum": "500.00",
        "sales_month_to_date": 2,
        "sales_month_to_date_sum": "500.00",
        "plan_month": "1000.00",
        "plan_percent_month_to_date": 50.0,
    }
    d2 = {r["user_id"]: r for r in day["rows"]}[m2.id]
    assert (d2["deals_created"], d2["calls_in_missed"], d2["sales_month_to_date_sum"]) == (
        1,
        1,
        "400.00",
    )
    assert day["total"]["calls_in_missed"] == 2  # per agent rung: the total of the rows
    assert day["total"]["plan_percent_month_to_date"] == 60.0
    mine = await api.get("/api/reports/day", params={"date": "2026-02-10"}, headers=h1)
    assert [r["user_id"] for r in mine.json()["rows"]] == [m1.id] and mine.json().get(
        "total"
    ) is None
    other = await api.get(
        "/api/reports/day", params={"date": "2026-02-10", "user_id": m2.id}, headers=h1
    )
    assert other.status_code == 403

    # lead sources (deals created in February: A, B, C, D, E; clients created in February)
    sources = (await api.get("/api/reports/lead-sources", params=FEB, headers=sup)).json()["items"]
    assert sources == [
        {
            "lead_source": "website",
            "clients": 2,
            "deals": 4,
            "deals_sum": "650.00",
            "won": 2,
            "won_sum": "500.00",
            "conversion_percent": 50.0,
        },
        {
            "lead_source": "referral",
            "clients": 1,
            "deals": 1,
            "deals_sum": "50.00",
            "won": 0,
            "won_sum": "0.00",
            "conversion_percent": 0.0,
        },
    ]
    own_sources = (await api.get("/api/reports/lead-sources", params=FEB, headers=h1)).json()
    assert {s["lead_source"]: s["deals"] for s in own_sources["items"]} == {
        "website": 2,
        "referral": 1,
    }

    # lost reasons by the stage the deals were lost at
    lost = (await api.get("/api/reports/lost-reasons", params=FEB, headers=sup)).json()["items"]
    assert lost == [{"stage": "Negotiation", "reason": "price", "deals": 2, "sum": "130.00"}]
    lost_csv = await api.get(
        "/api/reports/lost-reasons", params={**FEB, "format": "csv"}, headers=sup
    )
    assert lost_csv.text == "stage,reason,deals,sum\r\nNegotiation,price,2,130.00\r\n"

    # calls per hour of 10 February, company time (Moscow, UTC+3)
    hours = (
        await api.get("/api/reports/hourly", params={"date": "2026-02-10"}, headers=sup)
    ).json()
    busy = {
        r["hour"]: (r["calls_in"], r["calls_out"], r["answered"], r["missed"])
        for r in hours["items"]
        if r["calls_in"] or r["calls_out"]
    }
    assert busy == {
        11: (1, 0, 1, 0),
        13: (1, 0, 1, 0),
        14: (0, 1, 1, 0),
        15: (0, 1, 0, 0),
        16: (1, 0, 0, 1),
    }
    assert len(hours["items"]) == 24
    mine_hourly = (
        await api.get("/api/reports/hourly", params={"date": "2026-02-10"}, headers=h1)
    ).json()
    assert sum(r["calls_in"] for r in mine_hourly["items"]) == 2  # their own calls only
