from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import collect_event
from crm_core.deals.models import Deal
from crm_core.errors import Forbidden, Invalid, NotFound
from crm_core.events.types import TaskCreated
from crm_core.models_common import utcnow
from crm_core.policy import can_change_assigned, is_staff
from crm_core.tasks.models import Task
from crm_core.tasks.schemas import TaskCreate, TaskUpdate
from crm_core.users.models import User


async def create_task(session: AsyncSession, data: TaskCreate, *, actor: User) -> Task:
    assignee = data.assignee_id if data.assignee_id is not None else actor.id
    if assignee != actor.id and not is_staff(actor):
        raise Forbidden("only supervisors assign tasks to others")
    client_id = data.client_id
    if data.deal_id is not None:
        # a task names one client's deal: a deal of another client would file the work (and
        # show the task) on the wrong card
        deal_client = await session.scalar(select(Deal.client_id).where(Deal.id == data.deal_id))
        if deal_client is None:
            raise Invalid(f"cannot create the task: no such deal {data.deal_id}")
        if client_id is None:
            client_id = deal_client
        elif deal_client != client_id:
            raise Invalid(f"deal {data.deal_id} is not client {client_id}'s")
    task = Task(
        title=data.title,
        description=data.description,
        kind=data.kind,
        due_at=data.due_at,
        assignee_id=assignee,
        client_id=client_id,
        deal_id=data.deal_id,
        created_by_id=actor.id,
        done=False,
    )
    session.add(task)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a client or deal id that does not exist
        raise Invalid("cannot create the task: no such client or deal") from None
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
) -> tuple[Task, bool]:
    """One open callback per client: a second missed call from the same number adds none."""
    stmt = (
        insert(Task)
        .values(
            title=title,
            description="",
            kind="callback",
            due_at=due_at,
            assignee_id=assignee_id,
            client_id=client_id,
            deal_id=deal_id,
            communication_id=communication_id,
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
            select(Task).where(
                Task.client_id == client_id, Task.kind == "callback", Task.done.is_(False)
            )
        )
        assert existing is not None
        return existing, False
    task = await session.get(Task, new_id)
    assert task is not None
    collect_event(session, TaskCreated(task.id, task.kind, task.assignee_id, task.client_id))
    return task, True


async def get_task(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def update_task(
    session: AsyncSession, task_id: int, data: TaskUpdate, *, actor: User
) -> Task:
    task = await get_task(session, task_id)
    if not can_change_assigned(actor, task.assignee_id):
        raise Forbidden("only the assignee or a supervisor may change this task")
    fields = data.model_dump(exclude_unset=True)
    if (
        "assignee_id" in fields
        and fields["assignee_id"] != task.assignee_id
        and not is_staff(actor)
    ):
        raise Forbidden("only supervisors reassign tasks")
    if "done" in fields and fields["done"] is not None:
        task.done_at = utcnow() if fields["done"] else None
    for key, value in fields.items():
        if key in ("title", "done") and value is None:
            continue
        setattr(task, key, value)
    await session.flush()
    return task


async def list_tasks(
    session: AsyncSession,
    *,
    assignee_id: int | None,
    client_id: int | None,
    open_only: bool,
    overdue_at: datetime | None,
    limit: int,
    offset: int,
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
    rows = await session.scalars(
        stmt.order_by(Task.due_at.asc().nulls_last(), Task.id).limit(limit).offset(offset)
    )
    return list(rows.all())
