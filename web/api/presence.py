"""Agent presence: each agent's state (available, paused, DND, wrap-up), set by the agent or by
a supervisor; the pause reasons list. A change is pushed to the PBX's queues after the commit,
by the instance that follows the PBX (in order with its wrap-up pushes)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Request
from sqlalchemy import select

from crm_core.errors import NotFound
from crm_core.inputs import Id
from crm_core.models_common import utcnow
from crm_core.policy import is_staff
from crm_core.presence import rules
from crm_core.presence import service as presence
from crm_core.presence.schemas import (
    PauseReasonIn,
    PauseReasonOut,
    PauseReasonPatch,
    PresenceIn,
    PresenceOut,
)
from crm_core.users.models import User
from web.container import Container
from web.deps import CurrentUser, Session, Staff, container

router = APIRouter(prefix="/api/presence", tags=["presence"])


def _out(user: User, p: rules.Presence | None, now: datetime) -> PresenceOut:
    e = rules.effective(p, now)
    return PresenceOut(
        user_id=user.id,
        full_name=user.full_name,
        extension=user.extension,
        state=e.state,
        reason=e.reason,
        since=e.since,
        until=e.until if e.state == rules.WRAPUP else None,
        seconds_in_state=(now - e.since).total_seconds() if e.since else None,
    )


def _push(c: Container, user_id: int, extension: str, state: str, reason: str | None) -> None:
    """After the commit: the PBX's queues agree (only if this instance follows the PBX; in
    another, a wrap-up ended here reaches the PBX at the wrap-up's end at the latest)."""
    pusher = c.call_tracking.pusher if c.call_tracking is not None else None
    if pusher is not None:
        pusher.push(user_id, extension, state, reason)


async def _set(
    request: Request, tasks: BackgroundTasks, session: Session, target: User, data: PresenceIn
) -> PresenceOut:
    now = utcnow()
    p, changed = await presence.set_state(session, target, data.state, data.reason, now)
    if changed and target.extension:
        tasks.add_task(_push, container(request), target.id, target.extension, p.state, p.reason)
    return _out(target, p, now)


@router.get("")
async def list_presence(session: Session, user: CurrentUser) -> list[PresenceOut]:
    """Everyone with an extension for supervisors; one's own row for others."""
    now = utcnow()
    q = select(User).where(User.is_active.is_(True)).order_by(User.id)
    q = q.where(User.extension.is_not(None)) if is_staff(user) else q.where(User.id == user.id)
    users = list((await session.scalars(q)).all())
    stored = await presence.current(session, [u.id for u in users])
    return [_out(u, stored.get(u.id), now) for u in users]


@router.get("/me")
async def my_presence(session: Session, user: CurrentUser) -> PresenceOut:
    return _out(user, (await presence.current(session, [user.id])).get(user.id), utcnow())


@router.put("/me")
async def put_my_presence(
    data: PresenceIn, request: Request, tasks: BackgroundTasks, session: Session, user: CurrentUser
) -> PresenceOut:
    """Available (ends a wrap-up early), paused with a reason of the list, or do not disturb."""
    return await _set(request, tasks, session, user, data)


@router.get("/reasons")
async def list_reasons(
    session: Session, user: CurrentUser, include_inactive: bool = False
) -> list[PauseReasonOut]:
    rows = await presence.reasons(session, active_only=not (include_inactive and is_staff(user)))
    return [PauseReasonOut.model_validate(r) for r in rows]


@router.post("/reasons", status_code=201)
async def add_reason(data: PauseReasonIn, session: Session, staff: Staff) -> PauseReasonOut:
    row = await presence.save_reason(session, None, data.model_dump())
    return PauseReasonOut.model_validate(row)


@router.patch("/reasons/{reason_id}")
async def edit_reason(
    reason_id: Id, data: PauseReasonPatch, session: Session, staff: Staff
) -> PauseReasonOut:
    row = await presence.save_reason(session, reason_id, data.model_dump())
    return PauseReasonOut.model_validate(row)


@router.put("/{user_id}")
async def put_presence(
    user_id: Id,
    data: PresenceIn,
    request: Request,
    tasks: BackgroundTasks,
    session: Session,
    staff: Staff,
) -> PresenceOut:
    """A supervisor sets any agent's presence."""
    target = await session.get(User, user_id)
    if target is None:
        raise NotFound(f"user {user_id} not found")
    return await _set(request, tasks, session, target, data)
