from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from crm_core.inputs import Id
from crm_core.models_common import utcnow
from crm_core.tasks import service
from crm_core.tasks.schemas import TaskCreate, TaskOut, TaskUpdate
from web.deps import CurrentUser, Session

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get("")
async def list_tasks(
    session: Session,
    user: CurrentUser,
    assignee_id: Id | None = None,
    client_id: Id | None = None,
    open_only: bool = False,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TaskOut]:
    now = utcnow()
    rows = await service.list_tasks(
        session,
        assignee_id=assignee_id,
        client_id=client_id,
        open_only=open_only,
        overdue_at=now if overdue else None,
        limit=limit,
        offset=offset,
    )
    return [TaskOut.from_row(t, now) for t in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_task(data: TaskCreate, session: Session, user: CurrentUser) -> TaskOut:
    return TaskOut.from_row(await service.create_task(session, data, actor=user), utcnow())


@router.patch("/{task_id}")
async def update_task(
    task_id: Id, data: TaskUpdate, session: Session, user: CurrentUser
) -> TaskOut:
    return TaskOut.from_row(await service.update_task(session, task_id, data, actor=user), utcnow())
