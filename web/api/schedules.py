from __future__ import annotations

from fastapi import APIRouter

from crm_core.errors import Forbidden
from crm_core.inputs import Id
from crm_core.models_common import utcnow
from crm_core.policy import may_see_user
from crm_core.schedules import service
from crm_core.schedules.schemas import OnDutyOut, ScheduleIn, ScheduleOut
from web.deps import CurrentUser, Session, Staff

router = APIRouter(prefix="/api/schedules", tags=["schedules"])


@router.get("/on-duty")
async def on_duty_now(session: Session, user: CurrentUser) -> OnDutyOut:
    now = utcnow()
    return OnDutyOut(at=now, user_ids=await service.users_on_duty(session, now))


@router.get("/{user_id}")
async def get_schedule(user_id: Id, session: Session, user: CurrentUser) -> ScheduleOut:
    if not may_see_user(user, user_id):
        raise Forbidden("only supervisors see other people's schedules", code="supervisors_only")
    _, schedule = await service.get_schedule(session, user_id)
    return ScheduleOut.from_rules(schedule)


@router.put("/{user_id}")
async def put_schedule(
    user_id: Id, data: ScheduleIn, session: Session, staff: Staff
) -> ScheduleOut:
    return ScheduleOut.from_rules(await service.replace_schedule(session, user_id, data))
