"""Callbacks driven by calls: an answered call closes the client's open callback.

(A missed call makes or hurries one: crm_core.tasks.service.create_callback_once.)

Hooked in where a finished call is logged (crm_core.calls.service.log_call), in the same
transaction as the call's communication, so the task and the call never disagree.
"""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import collect_event
from crm_core.models_common import utcnow
from crm_core.tasks.models import Task
from crm_core.tasks.service import DONE, changed_event

logger = logging.getLogger(__name__)


# Built once (every answered call's log reads it): a statement built per call costs as much again.
_OPEN_CALLBACK = (
    select(Task)
    .where(
        Task.client_id == bindparam("client_id"),
        Task.kind == "callback",
        Task.done.is_(False),
    )
    .with_for_update()
)


async def on_answered_call(
    session: AsyncSession, client_id: int, communication_id: int
) -> Task | None:
    """A call with the client was answered (either direction): their open callback is done,
    closed by that call. Returns the task closed, if any."""
    task = await session.scalar(_OPEN_CALLBACK, {"client_id": client_id})
    if task is None:
        return None
    task.done = True
    task.done_at = utcnow()
    task.closed_by_communication_id = communication_id
    await session.flush()
    logger.info(
        "callback task %s closed by answered call %s",
        task.id,
        communication_id,
        extra={"task_id": task.id, "communication_id": communication_id},
    )
    collect_event(session, changed_event(DONE, task))
    return task
