"""Sales plans per manager per month: set by supervisors and admins, read by everyone for
themselves (reports compare them with what was won)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path

from crm_core.errors import Forbidden, Invalid, NotFound
from crm_core.inputs import Id
from crm_core.policy import is_staff
from crm_core.reports import plans
from crm_core.reports.plan_schemas import PlanIn, PlanOut
from crm_core.reports.rules import money
from web.deps import CurrentUser, Session, Staff

router = APIRouter(prefix="/api/plans", tags=["plans"])

Month = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


def _month(value: str) -> date:
    try:
        first = date(int(value[:4]), int(value[5:7]), 1)
    except ValueError:
        raise Invalid(f"month {value!r} is not a month (YYYY-MM)") from None
    if first.year < 2000 or first.year > 2100:
        raise Invalid("month out of range (2000-2100)")
    return first


@router.put("/{user_id}/{month}")
async def put_plan(
    user_id: Id, month: Month, data: PlanIn, session: Session, staff: Staff
) -> PlanOut:
    row = await plans.set_plan(session, user_id, _month(month), data.amount)
    return PlanOut(user_id=row.user_id, month=month, amount=money(row.amount))


@router.get("/{month}")
async def month_plans(month: Month, session: Session, user: CurrentUser) -> list[PlanOut]:
    """Everyone's plans for the month (supervisors), one's own otherwise."""
    rows = await plans.plans_of_month(session, _month(month))
    return [
        PlanOut(user_id=r.user_id, month=month, amount=money(r.amount))
        for r in rows
        if is_staff(user) or r.user_id == user.id
    ]


@router.get("/{user_id}/{month}")
async def get_plan(user_id: Id, month: Month, session: Session, user: CurrentUser) -> PlanOut:
    if not is_staff(user) and user_id != user.id:
        raise Forbidden("managers see their own plan only")
    rows = await plans.plans_of_month(session, _month(month))
    row = next((r for r in rows if r.user_id == user_id), None)
    if row is None:
        raise NotFound(f"no plan for user {user_id} in {month}")
    return PlanOut(user_id=user_id, month=month, amount=money(row.amount))
