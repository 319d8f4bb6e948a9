from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request

from crm_core.errors import Invalid
from crm_core.inputs import Day
from crm_core.models_common import utcnow
from crm_core.policy import is_staff
from crm_core.reports import service
from crm_core.reports.schemas import BoardOut, ReportOut
from web.deps import CurrentUser, Session, Staff, container

router = APIRouter(prefix="/api", tags=["reports"])


def _day_start(request: Request, day: date | None = None) -> datetime:
    tz = ZoneInfo(container(request).settings.core.default_timezone)
    day = day or utcnow().astimezone(tz).date()
    return datetime.combine(day, time(0), tz)


@router.get("/dashboard")
async def dashboard(request: Request, session: Session, staff: Staff) -> BoardOut:
    """The supervisors' live board: calls in progress, agents, queue, missed calls, today."""
    return BoardOut.model_validate(await service.live_board(session, utcnow(), _day_start(request)))


# team and lead_sources stay absent, not null, for managers and operators
@router.get("/reports", response_model_exclude_unset=True)
async def reports(
    request: Request,
    session: Session,
    user: CurrentUser,
    date_from: Day | None = None,
    date_to: Day | None = None,
) -> ReportOut:
    """Per manager and team for [date_from, date_to] (days in the company's time zone; default
    today). Managers and operators see their own row and no team totals."""
    start = _day_start(request, date_from)
    end = _day_start(request, date_to or (date_from or start.date())) + timedelta(days=1)
    if end <= start:
        raise Invalid("date_to is before date_from", code="period.reversed")
    if end - start > timedelta(days=366):
        raise Invalid("a report covers at most a year", code="period.too_long")
    result = await service.report(session, start, end)
    if not is_staff(user):
        result["per_manager"] = [r for r in result["per_manager"] if r["user_id"] == user.id]
        result.pop("team")
        result.pop("lead_sources")
    return ReportOut.model_validate(result)
