from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from crm_core.calls.models import ActiveCall
from crm_core.errors import Forbidden, Invalid, NotFound
from crm_core.inputs import Day, Id
from crm_core.models_common import utcnow
from crm_core.policy import is_staff
from crm_core.presence import rules as presence_rules
from crm_core.presence import service as presence
from crm_core.presence.settings import PresenceSettings
from crm_core.reports import queues, results_report, sales, service
from crm_core.reports.rules import csv_text, queue_figures
from crm_core.reports.schemas import (
    BoardFinishedOut,
    BoardOut,
    DayReportOut,
    DayRow,
    HourlyOut,
    HourRow,
    LeadSourceRow,
    LeadSourcesOut,
    LostReasonRow,
    LostReasonsOut,
    ManagerFigures,
    PresenceTimeOut,
    PresenceTimeRow,
    QueueFiguresOut,
    QueueReportOut,
    ReportOut,
    ResultsReportOut,
    ResultsRow,
)
from crm_core.routing.rules import ROUTABLE_ROLES
from crm_core.users.models import User
from web.deps import CurrentUser, Session, Staff, container

router = APIRouter(prefix="/api", tags=["reports"])

Format = Literal["json", "csv"]
# every table can be had as CSV with ?format=csv (the same figures, one header line)
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(container(request).settings.core.default_timezone)


def _day_start(request: Request, day: date | None = None) -> datetime:
    tz = _tz(request)
    day = day or utcnow().astimezone(tz).date()
    return datetime.combine(day, time(0), tz)


async def _period(
    request: Request, date_from: Day | None = None, date_to: Day | None = None
) -> tuple[datetime, datetime]:
    """[date_from, date_to] as days in the company's time zone (default: today)."""
    start = _day_start(request, date_from)
    end = _day_start(request, date_to or (date_from or start.date())) + timedelta(days=1)
    if end <= start:
        raise Invalid("date_to is before date_from", code="period.reversed")
    if end - start > timedelta(days=366):
        raise Invalid("a report covers at most a year", code="period.too_long")
    return start, end


# the ?date_from=&date_to= query of every period report, as [start, end) datetimes
Period = Annotated[tuple[datetime, datetime], Depends(_period)]


def _csv(name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Response:
    return Response(
        csv_text(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _columns(model: type[Any]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


OutT = TypeVar("OutT", bound=BaseModel)


def _own(user: User) -> int | None:
    """Whose figures a report holds: None (everyone's) for staff, else the viewer's own."""
    return None if is_staff(user) else user.id


def _period_table(
    name: str,
    row: type[Any],
    out: type[OutT],
    period: tuple[datetime, datetime],
    items: Sequence[Mapping[str, Any]],
    format: str,
) -> OutT | Response:
    """A period's rows as CSV (`?format=csv`) or as `out` {from, to, items}."""
    if format == "csv":
        return _csv(name, items, _columns(row))
    start, end = period
    return out.model_validate({"from": start.isoformat(), "to": end.isoformat(), "items": items})


@router.get("/dashboard")
async def dashboard(request: Request, session: Session, staff: Staff) -> BoardOut:
    """The supervisors' live board: calls in progress, agents, queue, missed calls, today."""
    board = await service.live_board(session, utcnow(), _day_start(request))
    board["queue_stats"] = await _queues_today(request, session)
    return BoardOut.model_validate(board)


@router.get("/dashboard/finished")
async def dashboard_finished(request: Request, session: Session, staff: Staff) -> BoardFinishedOut:
    """What a finished call changes on the board (missed and recent calls, today's figures,
    queue figures): the board re-reads this once per call.ended, not the whole board."""
    part = await service.finished_calls(session, _day_start(request))
    part["queue_stats"] = await _queues_today(request, session)
    return BoardFinishedOut.model_validate({"at": utcnow().isoformat(), **part})


# team and lead_sources stay absent, not null, for managers and operators
@router.get(
    "/reports", response_model=ReportOut, response_model_exclude_unset=True, responses=CSV_RESPONSE
)
async def reports(
    session: Session, user: CurrentUser, period: Period, format: Format = "json"
) -> ReportOut | Response:
    """Per manager and team for [date_from, date_to] (days in the company's time zone; default
    today), with each manager's sales plan for the period against what was won. Managers and
    operators see their own row and no team totals."""
    start, end = period
    result = await service.report(session, start, end)
    if not is_staff(user):
        result["per_manager"] = [r for r in result["per_manager"] if r["user_id"] == user.id]
        result.pop("team")
        result.pop("lead_sources")
    if format == "csv":
        rows = list(result["per_manager"])
        if "team" in result:
            rows.append({**result["team"], "user_id": None, "name": "team", "extension": None})
        head = ["user_id", "name", "extension"]
        cols = head + [c for c in _columns(ManagerFigures) if c not in head]
        return _csv("report", rows, cols)
    return ReportOut.model_validate(result)


async def _queues_today(request: Request, session: Session) -> list[dict[str, Any]]:
    today = await _period(request)
    items: list[dict[str, Any]] = (
        await _queue_report(session, container(request).settings.presence, today)
    )["items"]
    return items


async def _queue_report(
    session: Session, s: PresenceSettings, period: tuple[datetime, datetime]
) -> dict[str, Any]:
    start, end = period
    items = await queues.queue_stats(
        session,
        start,
        end,
        service_level_s=s.service_level_seconds,
        short_abandon_s=s.short_abandon_seconds,
    )
    calls = [a.view for a in await session.scalars(select(ActiveCall))]
    live = queues.live_queues(service.waiting_callers(calls), utcnow())
    by_queue = {q["queue"]: q for q in items}
    for name in sorted(set(live) - set(by_queue)):
        by_queue[name] = queue_figures(name, 0, 0, 0, 0, 0, 0.0, 0.0)
    merged = [
        {**q, "callers_waiting": 0, "longest_wait_now_seconds": 0.0, **live.get(name, {})}
        for name, q in sorted(by_queue.items())
    ]
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "service_level_seconds": s.service_level_seconds,
        "short_abandon_seconds": s.short_abandon_seconds,
        "items": merged,
    }


@router.get("/reports/queues", response_model=QueueReportOut, responses=CSV_RESPONSE)
async def queue_report(
    request: Request, session: Session, staff: Staff, period: Period, format: Format = "json"
) -> QueueReportOut | Response:
    """Per Asterisk queue for callers who joined it in [date_from, date_to]: offered, answered,
    abandoned (short abandons apart), abandon %, service level, ASA, longest wait; and now:
    callers waiting and the longest wait."""
    result = await _queue_report(session, container(request).settings.presence, period)
    if format == "csv":
        return _csv("queues", result["items"], _columns(QueueFiguresOut))
    return QueueReportOut.model_validate(result)


async def _people(session: Session, viewer: User, user_id: int | None) -> list[User]:
    """Whose figures: one's own for managers and operators; anyone's (default all agents) for
    supervisors and admins."""
    if user_id is not None:
        if not is_staff(viewer) and user_id != viewer.id:
            raise Forbidden("managers and operators see their own figures only")
        target = await session.get(User, user_id)
        if target is None:
            raise NotFound(f"user {user_id} not found")
        return [target]
    if not is_staff(viewer):
        return [viewer]
    rows = await session.scalars(
        select(User)
        .where(User.is_active.is_(True), User.role.in_(ROUTABLE_ROLES))
        .order_by(User.id)
    )
    return list(rows.all())


@router.get("/reports/day", response_model=DayReportOut, responses=CSV_RESPONSE)
async def day_report(
    request: Request,
    session: Session,
    user: CurrentUser,
    date: Day | None = None,
    user_id: Id | None = None,
    format: Format = "json",
) -> DayReportOut | Response:
    """The manager's day: deals created and cancelled with sums, calls in/out answered and
    missed, emails and SMS in/out, sales of the day and month to date against the plan."""
    day_start = _day_start(request, date)
    people = await _people(session, user, user_id)
    month_start = day_start.replace(day=1)
    result = await sales.day_report(session, day_start, month_start, people)
    if not (is_staff(user) and user_id is None):
        result.pop("total")
    if format == "csv":
        rows = [*result["rows"], *([result["total"]] if "total" in result else [])]
        return _csv(f"day-{result['date']}", rows, _columns(DayRow))
    return DayReportOut.model_validate(result)


@router.get("/reports/hourly", response_model=HourlyOut, responses=CSV_RESPONSE)
async def hourly_report(
    request: Request,
    session: Session,
    user: CurrentUser,
    date: Day | None = None,
    format: Format = "json",
) -> HourlyOut | Response:
    """Calls per hour of a day (a manager: their own) and the queues' service level per hour."""
    day_start = _day_start(request, date)
    items = await queues.hourly(
        session,
        day_start,
        container(request).settings.core.default_timezone,
        service_level_s=container(request).settings.presence.service_level_seconds,
        user_id=_own(user),
    )
    if format == "csv":
        return _csv(f"hourly-{day_start.date()}", items, _columns(HourRow))
    return HourlyOut.model_validate({"date": day_start.date().isoformat(), "items": items})


@router.get("/reports/lead-sources", response_model=LeadSourcesOut, responses=CSV_RESPONSE)
async def lead_sources(
    session: Session, user: CurrentUser, period: Period, format: Format = "json"
) -> LeadSourcesOut | Response:
    """Per lead source: clients, deals, won deals and sums, conversion % (a manager: their own)."""
    items = await sales.lead_source_report(session, *period, _own(user))
    return _period_table("lead-sources", LeadSourceRow, LeadSourcesOut, period, items, format)


@router.get("/reports/lost-reasons", response_model=LostReasonsOut, responses=CSV_RESPONSE)
async def lost_reasons(
    session: Session, user: CurrentUser, period: Period, format: Format = "json"
) -> LostReasonsOut | Response:
    """Deals lost in the period by the stage they were lost at and the reason given."""
    items = await sales.lost_reasons(session, *period, _own(user))
    return _period_table("lost-reasons", LostReasonRow, LostReasonsOut, period, items, format)


@router.get("/reports/presence", response_model=PresenceTimeOut, responses=CSV_RESPONSE)
async def presence_time(
    session: Session, user: CurrentUser, period: Period, format: Format = "json"
) -> PresenceTimeOut | Response:
    """Time each agent spent available, paused, DND and in wrap-up in the period (up to now)."""
    start, end = period
    people = await _people(session, user, None)
    until = min(end, utcnow())
    spent = await presence.time_per_state(session, start, until, [u.id for u in people])
    items = [
        {
            "user_id": u.id,
            "name": u.full_name,
            **{
                f"{state}_seconds": round(spent.get(u.id, {}).get(state, 0.0), 1)
                for state in presence_rules.STATES
            },
        }
        for u in people
    ]
    return _period_table("presence", PresenceTimeRow, PresenceTimeOut, period, items, format)


# total stays absent, not null, for managers and operators
@router.get(
    "/reports/results",
    response_model=ResultsReportOut,
    response_model_exclude_unset=True,
    responses=CSV_RESPONSE,
)
async def contact_results(
    session: Session, user: CurrentUser, period: Period, format: Format = "json"
) -> ResultsReportOut | Response:
    """Contact results per manager (Expo-Volga's effectiveness of contacts): contacts with a
    result set in the period, the count of each result kind, effectiveness % = (offer sent +
    sale) / (contacts with a result - wrong numbers), and postponements per client (average and
    largest number of "postponed" results over the clients postponed at least once). Managers
    and operators see their own row; supervisors and admins everyone's and the team total."""
    start, end = period
    staff = is_staff(user)
    people = await _people(session, user, None)
    result = await results_report.results_report(session, start, end, _own(user), people)
    out: dict[str, Any] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "items": result["rows"],
    }
    if staff:
        out["total"] = result["total"]
    if format == "csv":
        return _csv(
            "results", [*out["items"], *([out["total"]] if staff else [])], _columns(ResultsRow)
        )
    return ResultsReportOut.model_validate(out)
