from __future__ import annotations

from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, status

from crm_core.errors import Forbidden, Invalid
from crm_core.inputs import Id, Moment, Text
from crm_core.models_common import utcnow
from crm_core.policy import is_staff
from crm_core.tasks import service
from crm_core.tasks.schemas import Reschedule, TaskCreate, TaskOut, TaskState, TaskUpdate
from crm_core.users.models import User
from web.deps import CurrentUser, Session

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {name!r}", code="timezone.unknown") from None


def _today_start(user: User, tz: str | None) -> datetime:
    """Midnight today where the viewer is (`tz`, else their profile's zone)."""
    zone = _zone(tz or user.timezone or "UTC")
    local_now = utcnow().astimezone(zone)
    return datetime.combine(local_now.date(), time(0), tzinfo=zone)


def _agenda_of(user: User, assignee: int | None, client_id: int | None) -> int | None:
    """Whose tasks a list shows: anyone's for supervisors; one's own otherwise (a card's tasks,
    by client, are open to all, as the card is)."""
    if assignee is not None and assignee != user.id and not is_staff(user):
        raise Forbidden("only supervisors read another user's agenda", code="task.not_yours")
    if assignee is None and client_id is None and not is_staff(user):
        return user.id
    return assignee


@router.get("")
async def list_tasks(
    session: Session,
    user: CurrentUser,
    assignee: Id | None = Query(default=None, description="whose agenda (supervisors: anyone's)"),
    assignee_id: Id | None = Query(default=None, description="the same as `assignee`"),
    client_id: Id | None = None,
    open_only: bool = False,
    overdue: bool = False,
    state: TaskState | None = Query(
        default=None,
        description="today: open, due today; overdue: open, past due; upcoming: open, due "
        "after today or undated; done: closed (latest first)",
    ),
    date_from: Moment | None = Query(default=None, description="due at or after"),
    date_to: Moment | None = Query(default=None, description="due before"),
    tz: Text | None = Query(default=None, description="the zone `today` is in (default: yours)"),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TaskOut]:
    now = utcnow()
    rows = await service.list_tasks(
        session,
        assignee_id=_agenda_of(user, assignee or assignee_id, client_id),
        client_id=client_id,
        open_only=open_only,
        overdue_at=now if overdue else None,
        limit=limit,
        offset=offset,
        date_from=date_from,
        date_to=date_to,
        state=state,
        today_start=_today_start(user, tz) if state in ("today", "upcoming") else None,
    )
    names = await service.client_names(session, {t.client_id for t in rows if t.client_id})
    return [TaskOut.from_row(t, now, names.get(t.client_id or 0)) for t in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_task(data: TaskCreate, session: Session, user: CurrentUser) -> TaskOut:
    return TaskOut.from_row(await service.create_task(session, data, actor=user), utcnow())


@router.get("/{task_id}")
async def get_task(task_id: Id, session: Session, user: CurrentUser) -> TaskOut:
    task = await service.get_task(session, task_id)
    if task.assignee_id != user.id and task.client_id is None and not is_staff(user):
        raise Forbidden("not your task", code="task.not_yours")
    return TaskOut.from_row(task, utcnow())


@router.patch("/{task_id}")
async def update_task(
    task_id: Id, data: TaskUpdate, session: Session, user: CurrentUser
) -> TaskOut:
    return TaskOut.from_row(await service.update_task(session, task_id, data, actor=user), utcnow())


@router.post("/{task_id}/done")
async def mark_done(task_id: Id, session: Session, user: CurrentUser) -> TaskOut:
    """Close the task (the assignee or a supervisor)."""
    return TaskOut.from_row(await service.mark_done(session, task_id, actor=user), utcnow())


@router.post("/{task_id}/reschedule")
async def reschedule(task_id: Id, data: Reschedule, session: Session, user: CurrentUser) -> TaskOut:
    """A new due time; the reminder is armed again (keeping its lead time unless given)."""
    return TaskOut.from_row(await service.reschedule(session, task_id, data, actor=user), utcnow())
