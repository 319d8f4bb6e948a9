"""Who is on duty at an instant: pure rules over weekly intervals and exceptions.

Everything is evaluated in wall-clock time of the schedule owner's time zone, so "09:00-18:00"
means nine to six there, on DST change days too. A shift that crosses midnight belongs to the day
it starts: a day off on Monday also cancels Monday's 22:00-06:00 shift, and Sunday's night shift
still runs into Monday morning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class WeeklyInterval:
    weekday: int  # Monday = 0
    start: time
    end: time  # <= start: ends the next day

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    kind: str  # day_off | vacation | extra_shift
    start_date: date
    end_date: date
    start: time | None = None  # extra shifts only
    end: time | None = None
    note: str = ""

    def covers(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


@dataclass(frozen=True, slots=True)
class Schedule:
    user_id: int
    timezone: str
    intervals: tuple[WeeklyInterval, ...] = ()
    changes: tuple[ScheduleChange, ...] = ()


def _within(start: time, end: time, day: date, shift_day: date, now: datetime) -> bool:
    """Is local wall time `now` inside [start, end) of a shift that began on `shift_day`?"""
    begin = datetime.combine(shift_day, start)
    finish = datetime.combine(shift_day + timedelta(days=1 if end <= start else 0), end)
    return begin <= now.replace(tzinfo=None) < finish


def _off(schedule: Schedule, day: date) -> bool:
    return any(c.kind in ("day_off", "vacation") and c.covers(day) for c in schedule.changes)


def is_on_duty(schedule: Schedule, instant: datetime) -> bool:
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    local = instant.astimezone(ZoneInfo(schedule.timezone))
    today = local.date()
    for shift_day in (today, today - timedelta(days=1)):
        for change in schedule.changes:
            if (
                change.kind == "extra_shift"
                and change.covers(shift_day)
                and change.start is not None
                and change.end is not None
                and _within(change.start, change.end, today, shift_day, local)
            ):
                return True
        if _off(schedule, shift_day):
            continue
        for interval in schedule.intervals:
            if interval.weekday != shift_day.weekday():
                continue
            if shift_day != today and not interval.crosses_midnight:
                continue
            if _within(interval.start, interval.end, today, shift_day, local):
                return True
    return False


def on_duty(schedules: list[Schedule], instant: datetime) -> list[int]:
    """The ids of the users on duty at `instant`, in the order given."""
    return [s.user_id for s in schedules if is_on_duty(s, instant)]
