from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.models import Client
from crm_core.db import collect_event
from crm_core.deals.models import Deal
from crm_core.errors import Forbidden, Invalid, NotFound
from crm_core.events.messages import TaskDoneMessage, TaskUpdatedMessage
from crm_core.events.types import TaskChanged, TaskCreated
from crm_core.models_common import utcnow
from crm_core.policy import can_change_assigned, is_staff
from crm_core.tasks.models import Task
from crm_core.tasks.schemas import Reschedule, TaskCreate, TaskState, TaskUpdate
from crm_core.users.models import User

UPDATED = TaskUpdatedMessage.TYPE
DONE = TaskDoneMessage.TYPE


async def create_task(session: AsyncSession, data: TaskCreate, *, actor: User) -> Task:
    assignee = data.assignee_id if data.assignee_id is not None else actor.id
    if assignee != actor.id and not is_staff(actor):
        raise Forbidden("only supervisors assign tasks to others", code="task.not_yours")
    client_id = data.client_id
    if data.deal_id is not None:
        # a task names one client's deal: a deal of another client would file the work (and
        # show the task) on the wrong card
        deal_client = await session.scalar(select(Deal.client_id).where(Deal.id == data.deal_id))
        if deal_client is None:
            raise Invalid(
                f"cannot create the task: no such deal {data.deal_id}", code="deal.not_found"
            )
        if client_id is None:
            client_id = deal_client
        elif deal_client != client_id:
            raise Invalid(
                f"deal {data.deal_id} is not client {client_id}'s", code="deal.other_client"
            )
    task = Task(
        title=data.title,
        description=data.description,
        kind=data.kind,
        contact_type=data.contact_type,
        goal=data.goal,
        due_at=data.due_at,
        remind_at=data.remind_at if data.remind_at is not None else data.due_at,
        assignee_id=assignee,
        client_id=client_id,
        deal_id=data.deal_id,
        created_by_id=actor.id,
        done=False,
        tries=0,
    )
    session.add(task)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a client, deal or assignee id that does not exist
        raise Invalid(
            "cannot create the task: no such client, deal or assignee", code="task.bad_refs"
        ) from None
    collect_event(session, TaskCreated(task.id, task.kind, task.assignee_id, task.client_id))
    return task


async def create_callback_once(
    session: AsyncSession,
    *,
    client_id: int,
    deal_id: int | None,
    assignee_id: int | None,
    due_at: datetime,
    title: str,
    communication_id: int | None,
    missed_at: datetime | None = None,
) -> tuple[Task, bool]:
    """One open callback per client. A repeated missed call adds none: it counts a try on the
    open one and moves it earlier, never later (crm_core.tasks.callbacks)."""
    at = missed_at or utcnow()
    stmt = (
        insert(Task)
        .values(
            title=title,
            description="",
            kind="callback",
            contact_type="call",
            due_at=due_at,
            remind_at=due_at,
            assignee_id=assignee_id,
            client_id=client_id,
            deal_id=deal_id,
            communication_id=communication_id,
            tries=1,
            last_missed_at=at,
            done=False,
            created_at=utcnow(),
        )
        # the predicate must match the partial index: kind = 'callback' AND NOT done
        .on_conflict_do_nothing(
            index_elements=["client_id"],
            index_where=text("kind = 'callback' AND NOT done"),
        )
        .returning(Task.id)
    )
    new_id = await session.scalar(stmt)
    if new_id is None:
        existing = await session.scalar(
            select(Task)
            .where(Task.client_id == client_id, Task.kind == "callback", Task.done.is_(False))
            .with_for_update()
        )
        assert existing is not None
        await _count_missed_try(session, existing, due_at, at)
        return existing, False
    task = await session.get(Task, new_id)
    assert task is not None
    collect_event(session, TaskCreated(task.id, task.kind, task.assignee_id, task.client_id))
    return task, True


async def _count_missed_try(
    session: AsyncSession, task: Task, due_at: datetime, missed_at: datetime
) -> None:
    """The client called again: one more try, and the callback is due no later than `due_at`."""
    task.tries = (task.tries or 0) + 1
    task.last_missed_at = max(missed_at, task.last_missed_at or missed_at)
    if task.due_at is None or due_at < task.due_at:
        _move_due(task, due_at, None)
    await session.flush()
    collect_event(session, changed_event(UPDATED, task))


def _move_due(task: Task, due_at: datetime | None, remind_at: datetime | None) -> None:
    """Reschedule and re-arm: the reminder keeps its lead time unless one is given."""
    if remind_at is None and due_at is not None:
        lead = (
            task.due_at - task.remind_at
            if task.due_at is not None and task.remind_at is not None
            else timedelta(0)
        )
        remind_at = due_at - max(lead, timedelta(0))
    task.due_at = due_at
    _arm(task, remind_at)


def _arm(task: Task, remind_at: datetime | None) -> None:
    """Armed again: the scheduler claims it when it comes due. A reminder moved into the past
    is not: dragging a task to yesterday should not make it ring now."""
    task.remind_at = remind_at
    now = utcnow()
    task.reminded_at = now if remind_at is not None and remind_at <= now else None


def changed_event(type_: str, task: Task, previous_assignee: int | None = None) -> TaskChanged:
    payload: dict[str, object] = {
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "remind_at": task.remind_at.isoformat() if task.remind_at else None,
        "done": task.done,
    }
    if type_ == DONE:
        payload = {"closed_by_communication_id": task.closed_by_communication_id}
    if previous_assignee is not None and previous_assignee != task.assignee_id:
        payload["previous_assignee_id"] = previous_assignee
    return TaskChanged(type_, task.id, task.kind, task.assignee_id, task.client_id, payload)


async def get_task(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found", code="task.not_found")
    return task


async def update_task(
    session: AsyncSession, task_id: int, data: TaskUpdate, *, actor: User
) -> Task:
    task = await get_task(session, task_id)
    if not can_change_assigned(actor, task.assignee_id):
        raise Forbidden(
            "only the assignee or a supervisor may change this task", code="task.not_yours"
        )
    fields = data.model_dump(exclude_unset=True)
    previous_assignee = task.assignee_id
    if (
        "assignee_id" in fields
        and fields["assignee_id"] != task.assignee_id
        and not is_staff(actor)
    ):
        raise Forbidden("only supervisors reassign tasks", code="task.not_yours")
    closing = fields.get("done") is True and not task.done
    if "done" in fields and fields["done"] is not None:
        task.done = fields["done"]
        task.done_at = utcnow() if fields["done"] else None
    if "due_at" in fields:
        _move_due(task, fields["due_at"], fields.get("remind_at"))
    elif "remind_at" in fields:
        _arm(task, fields["remind_at"])
    for key in ("title", "description", "contact_type", "goal", "assignee_id"):
        if key in fields and not (key in ("title", "description") and fields[key] is None):
            setattr(task, key, fields[key])
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # no such assignee; or reopening a second open callback
        raise Invalid(
            "cannot change the task: no such assignee, or it conflicts", code="task.bad_refs"
        ) from None
    collect_event(session, changed_event(DONE if closing else UPDATED, task, previous_assignee))
    return task


async def mark_done(session: AsyncSession, task_id: int, *, actor: User) -> Task:
    return await update_task(session, task_id, TaskUpdate(done=True), actor=actor)


async def reschedule(session: AsyncSession, task_id: int, data: Reschedule, *, actor: User) -> Task:
    fields = TaskUpdate.model_validate(data.model_dump(exclude_unset=True))
    return await update_task(session, task_id, fields, actor=actor)


def day_bounds(today_start: datetime) -> tuple[datetime, datetime]:
    return today_start, today_start + timedelta(days=1)


def state_filter(
    stmt: Select[Task], state: TaskState, now: datetime, today_start: datetime
) -> Select[Task]:
    """today / overdue / upcoming / done, with `today_start` midnight in the viewer's zone.

    Overdue tasks due earlier today are both today's and overdue: a page shows them in either.
    """
    start, end = day_bounds(today_start)
    if state == "done":
        return stmt.where(Task.done.is_(True))
    stmt = stmt.where(Task.done.is_(False))
    if state == "today":
        return stmt.where(Task.due_at >= start, Task.due_at < end)
    if state == "overdue":
        return stmt.where(Task.due_at < now)
    return stmt.where((Task.due_at >= end) | Task.due_at.is_(None))


async def list_tasks(
    session: AsyncSession,
    *,
    assignee_id: int | None,
    client_id: int | None,
    open_only: bool,
    overdue_at: datetime | None,
    limit: int,
    offset: int,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    state: TaskState | None = None,
    today_start: datetime | None = None,
) -> list[Task]:
    stmt = select(Task)
    if assignee_id is not None:
        stmt = stmt.where(Task.assignee_id == assignee_id)
    if client_id is not None:
        stmt = stmt.where(Task.client_id == client_id)
    if open_only or overdue_at is not None:
        stmt = stmt.where(Task.done.is_(False))
    if overdue_at is not None:
        stmt = stmt.where(Task.due_at < overdue_at)
    if date_from is not None:
        stmt = stmt.where(Task.due_at >= date_from)
    if date_to is not None:
        stmt = stmt.where(Task.due_at < date_to)
    if state is not None:
        now = utcnow()
        stmt = state_filter(stmt, state, now, today_start or now)
    order = (
        (Task.done_at.desc(), Task.id.desc())
        if state == "done"
        else (Task.due_at.asc().nulls_last(), Task.id)
    )
    rows = await session.scalars(stmt.order_by(*order).limit(limit).offset(offset))
    return list(rows.all())


async def client_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Client.id, Client.name).where(Client.id.in_(ids)))
    return dict(rows.all())
