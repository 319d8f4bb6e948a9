from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import Invalid, NotFound
from crm_core.schedules.models import ScheduleException, ScheduleInterval
from crm_core.schedules.rules import Schedule, ScheduleChange, WeeklyInterval, on_duty
from crm_core.schedules.schemas import ScheduleIn
from crm_core.users.models import User


async def load_schedules(
    session: AsyncSession, user_ids: list[int] | None = None
) -> list[Schedule]:
    """Every active user's schedule (or those asked for), as pure rule objects. Three queries."""
    stmt = select(User).where(User.is_active.is_(True)).order_by(User.id)
    if user_ids is not None:
        stmt = stmt.where(User.id.in_(user_ids))
    users = list((await session.scalars(stmt)).all())
    ids = [u.id for u in users]
    intervals: dict[int, list[WeeklyInterval]] = {i: [] for i in ids}
    changes: dict[int, list[ScheduleChange]] = {i: [] for i in ids}
    for row in await session.scalars(
        select(ScheduleInterval).where(ScheduleInterval.user_id.in_(ids))
    ):
        intervals[row.user_id].append(WeeklyInterval(row.weekday, row.start_time, row.end_time))
    for exc in await session.scalars(
        select(ScheduleException).where(ScheduleException.user_id.in_(ids))
    ):
        changes[exc.user_id].append(
            ScheduleChange(
                exc.kind, exc.start_date, exc.end_date, exc.start_time, exc.end_time, exc.note
            )
        )
    return [Schedule(u.id, u.timezone, tuple(intervals[u.id]), tuple(changes[u.id])) for u in users]


async def users_on_duty(session: AsyncSession, instant: datetime) -> list[int]:
    return on_duty(await load_schedules(session), instant)


async def get_schedule(session: AsyncSession, user_id: int) -> tuple[User, Schedule]:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user.not_found")
    schedules = await load_schedules(session, [user_id])
    schedule = schedules[0] if schedules else Schedule(user_id, user.timezone)
    return user, schedule


async def replace_schedule(session: AsyncSession, user_id: int, data: ScheduleIn) -> Schedule:
    """The weekly grid and the exceptions are edited as a whole, as a grid page does."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user.not_found")
    if data.timezone:
        try:
            ZoneInfo(data.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"unknown time zone {data.timezone!r}", code="timezone.unknown") from None
        user.timezone = data.timezone
    await session.execute(delete(ScheduleInterval).where(ScheduleInterval.user_id == user_id))
    await session.execute(delete(ScheduleException).where(ScheduleException.user_id == user_id))
    for i in data.intervals:
        session.add(
            ScheduleInterval(user_id=user_id, weekday=i.weekday, start_time=i.start, end_time=i.end)
        )
    for e in data.exceptions:
        assert e.end_date is not None
        session.add(
            ScheduleException(
                user_id=user_id,
                kind=e.kind,
                start_date=e.start_date,
                end_date=e.end_date,
                start_time=e.start,
                end_time=e.end,
                note=e.note,
            )
        )
    await session.flush()
    return (await get_schedule(session, user_id))[1]
