from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from crm_core.errors import Forbidden
from crm_core.inputs import Id
from crm_core.models_common import utcnow
from crm_core.policy import may_see_user
from crm_core.schedules import service
from crm_core.schedules.schemas import ScheduleIn
from web import serializers
from web.deps import CurrentUser, Session, Staff

router = APIRouter(prefix="/api/schedules", tags=["schedules"])


@router.get("/on-duty")
async def on_duty_now(session: Session, user: CurrentUser) -> dict[str, Any]:
    now = utcnow()
    return {"at": now.isoformat(), "user_ids": await service.users_on_duty(session, now)}


@router.get("/{user_id}")
async def get_schedule(user_id: Id, session: Session, user: CurrentUser) -> dict[str, Any]:
    if not may_see_user(user, user_id):
        raise Forbidden("only supervisors see other people's schedules")
    _, schedule = await service.get_schedule(session, user_id)
    return serializers.schedule(schedule)


@router.put("/{user_id}")
async def put_schedule(
    user_id: Id, data: ScheduleIn, session: Session, staff: Staff
) -> dict[str, Any]:
    return serializers.schedule(await service.replace_schedule(session, user_id, data))
