"""A new user's working hours (DEFAULT_SCHEDULE), so that a new operator is routed calls.

The router rings only people on duty, and a user without any schedule is never on duty: a new
operator would silently get no calls. As Bitrix24 and Kommo give a new employee the company's
working hours, a new user with an extension gets DEFAULT_SCHEDULE ("Mon-Fri 09:00-18:00" by
default) in their own time zone (the company's, DEFAULT_TIMEZONE, unless given); the schedules
page changes it. "none" leaves new users without one (and the pages say "never routed").
"""

from __future__ import annotations

import re
from datetime import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.schedules.models import ScheduleInterval
from crm_core.users.models import User

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(
    r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$"
)

Weekly = list[tuple[int, time, time]]  # (weekday, start, end), Monday = 0


def _time(text: str) -> time:
    hours, minutes = (int(x) for x in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(0)  # "…-24:00": until midnight
    return time(hours, minutes)


def parse_weekly(spec: str) -> Weekly:
    """`"Mon-Fri 09:00-18:00; Sat 10:00-14:00"` as intervals; `"none"` or empty: none.

    ValueError for anything else, so a typo in DEFAULT_SCHEDULE stops the start, not the routing.
    """
    text = spec.strip().lower()
    if text in ("", "none"):
        return []
    out: Weekly = []
    for part in (p.strip() for p in text.split(";")):
        match = _PART.match(part)
        days = (match["first"], match["last"] or match["first"]) if match else ("", "")
        if match is None or not set(days) <= set(WEEKDAYS):
            raise ValueError(f"not a weekly schedule: {part!r} (e.g. 'Mon-Fri 09:00-18:00')")
        first, last = WEEKDAYS.index(days[0]), WEEKDAYS.index(days[1])
        if last < first:
            raise ValueError(f"not a range of weekdays: {part!r}")
        try:
            start, end = _time(match["start"]), _time(match["end"])
        except ValueError:
            raise ValueError(f"not a time of day in {part!r}") from None
        out.extend((day, start, end) for day in range(first, last + 1))
    return out


async def has_schedule(session: AsyncSession, user_id: int) -> bool:
    found = await session.scalar(
        select(ScheduleInterval.id).where(ScheduleInterval.user_id == user_id).limit(1)
    )
    return found is not None


async def give_default_schedule(session: AsyncSession, user: User, spec: str) -> bool:
    """Give `user` the weekly hours of `spec` when they have an extension and no hours yet;
    whether they got them."""
    weekly = parse_weekly(spec)
    if not weekly or not user.extension or await has_schedule(session, user.id):
        return False
    for weekday, start, end in weekly:
        session.add(
            ScheduleInterval(user_id=user.id, weekday=weekday, start_time=start, end_time=end)
        )
    await session.flush()
    return True
