"""What an operator's workspace lists of calls: missed calls to act on, their recent calls."""

from __future__ import annotations

from sqlalchemy import and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.tasks.models import Task
from crm_core.workspace.schemas import MissedCallOut, RecentCallOut


async def missed_calls(
    session: AsyncSession, *, assignee_id: int | None, include_done: bool, limit: int
) -> list[MissedCallOut]:
    """Callbacks made by missed calls (one per client, its tries counted), open first, latest
    missed first; with `include_done` also those already called back."""
    first_call = Communication.__table__.alias("first_call")
    stmt = (
        select(Task, Client.name, first_call.c.phone, first_call.c.occurred_at)
        .join(Client, Client.id == Task.client_id)
        .outerjoin(first_call, first_call.c.id == Task.communication_id)
        .where(Task.kind == "callback", Task.communication_id.is_not(None))
    )
    if assignee_id is not None:
        stmt = stmt.where(Task.assignee_id == assignee_id)
    if not include_done:
        stmt = stmt.where(Task.done.is_(False))
    stmt = stmt.order_by(Task.done, Task.last_missed_at.desc().nulls_last(), Task.id.desc()).limit(
        limit
    )
    out = []
    for task, name, phone, first_at in (await session.execute(stmt)).all():
        out.append(
            MissedCallOut(
                task_id=task.id,
                client_id=task.client_id or 0,
                client_name=name,
                phone=phone,
                deal_id=task.deal_id,
                assignee_id=task.assignee_id,
                first_missed_at=first_at or task.created_at,
                last_missed_at=task.last_missed_at or first_at or task.created_at,
                tries=task.tries or 1,
                due_at=task.due_at,
                done=task.done,
                done_at=task.done_at,
                called_back=task.closed_by_communication_id is not None,
                closed_by_communication_id=task.closed_by_communication_id,
                communication_id=task.communication_id,
            )
        )
    return out


async def recent_calls(
    session: AsyncSession, *, user_id: int, extension: str | None, limit: int
) -> list[RecentCallOut]:
    """The user's calls, latest first: made or taken by them, or ringing their phone."""
    mine = [Communication.user_id == user_id]
    if extension:
        mine.append(Communication.agent_extension == extension)
        mine.append(Communication.extra["agents_rung"].contains([extension]))
    stmt = (
        select(Communication, Client.name)
        .join(Client, Client.id == Communication.client_id)
        .where(and_(Communication.kind == "call", or_(false(), *mine)))
        .order_by(Communication.occurred_at.desc(), Communication.id.desc())
        .limit(limit)
    )
    return [
        RecentCallOut(
            id=c.id,
            direction=c.direction,
            status=c.status,
            missed=bool((c.extra or {}).get("missed")),
            occurred_at=c.occurred_at,
            talk_seconds=c.talk_seconds,
            phone=c.phone,
            client_id=c.client_id,
            client_name=name,
            deal_id=c.deal_id,
            user_id=c.user_id,
        )
        for c, name in (await session.execute(stmt)).all()
    ]
