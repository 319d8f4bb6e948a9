"""Sales plans: a manager's target per month, and its share for a report's period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import NotFound
from crm_core.reports.models import SalesPlan
from crm_core.reports.rules import months_between, period_plan
from crm_core.users.models import User


async def set_plan(session: AsyncSession, user_id: int, month: date, amount: Decimal) -> SalesPlan:
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    stmt = insert(SalesPlan).values(user_id=user_id, month=month, amount=amount)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SalesPlan.user_id, SalesPlan.month], set_={"amount": amount}
        )
    )
    row = await session.get(SalesPlan, (user_id, month), populate_existing=True)
    assert row is not None
    return row


async def plans_of_month(session: AsyncSession, month: date) -> list[SalesPlan]:
    rows = await session.scalars(
        select(SalesPlan).where(SalesPlan.month == month).order_by(SalesPlan.user_id)
    )
    return list(rows.all())


async def period_plans(
    session: AsyncSession, first: date, last: date, user_ids: Sequence[int] | None = None
) -> dict[int, Decimal]:
    """Each user's plan for the days [first, last] (months prorated by days covered)."""
    p = SalesPlan
    q = select(p.user_id, p.month, p.amount).where(p.month.in_(months_between(first, last)))
    if user_ids is not None:
        q = q.where(p.user_id.in_(list(user_ids)))
    by_user: dict[int, dict[date, Decimal]] = {}
    for user_id, month, amount in await session.execute(q):
        by_user.setdefault(user_id, {})[month] = amount
    return {uid: period_plan(months, first, last) for uid, months in by_user.items()}
