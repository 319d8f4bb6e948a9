"""Sales reports: the manager's day (DIRECTUM's), lead sources with conversion, lost reasons by
the stage where deals were lost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core.clients.models import Client
from crm_core.deals.models import Deal, DealStage, DealStageMove
from crm_core.reports.custom_plans import custom_plans
from crm_core.reports.plans import period_plans
from crm_core.reports.rules import money, percent
from crm_core.reports.service import EMPTY_DEALS, communication_figures, deal_figures_for
from crm_core.users.models import User

DAY_COMMS = (
    "calls_in_answered",
    "calls_in_missed",
    "calls_out_answered",
    "calls_out_missed",
    "emails_in",
    "emails_out",
    "sms_in",
    "sms_out",
)


async def day_report(
    session: AsyncSession,
    day_start: datetime,
    month_start: datetime,
    users: Sequence[User],
) -> dict[str, Any]:
    """Each user's day: deals created and cancelled (lost) with sums, calls in/out answered and
    missed (a missed call for every agent it rang), emails and SMS in/out, sales of the day and
    of the month to date against the month's plan; and the total of the rows."""
    day_end = day_start + timedelta(days=1)
    comms = await communication_figures(session, day_start, day_end)
    (deals_day, deals_mtd), _ = await deal_figures_for(
        session, [(day_start, day_end), (month_start, day_end)]
    )
    month = month_start.date()
    last = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    plans = await period_plans(session, month, last.date(), [u.id for u in users])
    rows = []
    for u in users:
        c = comms.get(u.id, {})
        d = {**EMPTY_DEALS, **deals_day.get(u.id, {})}
        mtd = {**EMPTY_DEALS, **deals_mtd.get(u.id, {})}
        plan = plans.get(u.id)
        rows.append(
            {
                "user_id": u.id,
                "name": u.full_name,
                "deals_created": d["created"],
                "deals_created_sum": money(d["created_sum"]),
                "deals_cancelled": d["lost"],
                "deals_cancelled_sum": money(d["lost_sum"]),
                **{k: int(c.get(k, 0)) for k in DAY_COMMS},
                "sales_day": d["won"],
                "sales_day_sum": money(d["won_sum"]),
                "sales_month_to_date": mtd["won"],
                "sales_month_to_date_sum": money(mtd["won_sum"]),
                "plan_month": money(plan) if plan is not None else None,
                "plan_percent_month_to_date": percent(mtd["won_sum"], plan) if plan else None,
            }
        )
    return {"date": day_start.date().isoformat(), "rows": rows, "total": _total(rows)}


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"user_id": None, "name": "total"}
    for key in rows[0] if rows else ():
        if key in ("user_id", "name", "plan_percent_month_to_date"):
            continue
        values = [r[key] for r in rows if r[key] is not None]
        if key.endswith("_sum") or key == "plan_month":
            total[key] = money(sum((Decimal(v) for v in values), Decimal(0))) if values else None
        else:
            total[key] = sum(values)
    plan = total.get("plan_month")
    total["plan_percent_month_to_date"] = (
        percent(Decimal(total["sales_month_to_date_sum"]), Decimal(plan)) if plan else None
    )
    return total


def _count(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0).cast(Integer)


async def lead_source_report(
    session: AsyncSession, start: datetime, end: datetime, user_id: int | None = None
) -> list[dict[str, Any]]:
    """Per lead source: clients and deals that came in the period, how many of those deals were
    won (so far) and for how much, and the conversion %. `user_id`: one manager's deals and
    clients only."""
    await custom_plans(session)
    d, s = Deal, DealStage
    q = (
        select(
            func.coalesce(d.lead_source, "unknown").label("source"),
            func.count().label("deals"),
            func.coalesce(func.sum(d.amount), 0).label("amount"),
            _count(s.is_won).label("won"),
            func.coalesce(func.sum(case((s.is_won, d.amount), else_=0)), 0).label("won_sum"),
        )
        .join(s, s.id == d.stage_id)
        .where(d.created_at >= start, d.created_at < end)
        .group_by("source")
    )
    cq = (
        select(func.coalesce(Client.lead_source, "unknown").label("source"), func.count())
        .where(Client.created_at >= start, Client.created_at < end)
        .group_by("source")
    )
    if user_id is not None:
        q = q.where(d.responsible_id == user_id)
        cq = cq.where(Client.responsible_id == user_id)
    clients = {src: n for src, n in await session.execute(cq)}
    out: dict[str, dict[str, Any]] = {}
    for r in await session.execute(q):
        out[r.source] = {
            "lead_source": r.source,
            "clients": clients.get(r.source, 0),
            "deals": r.deals,
            "deals_sum": money(r.amount),
            "won": r.won,
            "won_sum": money(r.won_sum),
            "conversion_percent": percent(r.won, r.deals),
        }
    for src, n in clients.items():
        out.setdefault(
            src,
            {
                "lead_source": src,
                "clients": n,
                "deals": 0,
                "deals_sum": "0.00",
                "won": 0,
                "won_sum": "0.00",
                "conversion_percent": None,
            },
        )
    return sorted(out.values(), key=lambda r: (-r["deals"], -r["clients"], r["lead_source"]))


async def lost_reasons(
    session: AsyncSession, start: datetime, end: datetime, user_id: int | None = None
) -> list[dict[str, Any]]:
    """Deals lost in the period, by the stage they were in when lost (the last move into a
    losing stage says where from) and the reason given."""
    await custom_plans(session)
    d, s, m = Deal, DealStage, DealStageMove
    from_stage = aliased(DealStage)
    last_move = (
        select(m.deal_id, func.max(m.id).label("move_id"))
        .join(s, s.id == m.to_stage_id)
        .where(s.is_closed, ~s.is_won)
        .group_by(m.deal_id)
        .subquery()
    )
    q = (
        select(
            func.coalesce(from_stage.name, "").label("stage"),
            func.coalesce(func.nullif(func.trim(d.lost_reason), ""), "").label("reason"),
            func.count().label("deals"),
            func.coalesce(func.sum(d.amount), 0).label("amount"),
        )
        .select_from(d)
        .join(s, and_(s.id == d.stage_id, s.is_closed, ~s.is_won))
        .outerjoin(last_move, last_move.c.deal_id == d.id)
        .outerjoin(m, m.id == last_move.c.move_id)
        .outerjoin(from_stage, from_stage.id == m.from_stage_id)
        .where(d.closed_at >= start, d.closed_at < end)
        .group_by("stage", "reason")
        .order_by(func.count().desc(), "stage", "reason")
    )
    if user_id is not None:
        q = q.where(d.responsible_id == user_id)
    return [
        {
            "stage": r.stage or None,
            "reason": r.reason or None,
            "deals": r.deals,
            "sum": money(r.amount),
        }
        for r in await session.execute(q)
    ]
