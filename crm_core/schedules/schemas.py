from __future__ import annotations

from datetime import date, time
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from crm_core.inputs import Day, Text
from crm_core.outputs import IsoDatetime, IsoTime, RowOut
from crm_core.schedules.rules import Schedule


class IntervalIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="Monday = 0")
    start: time
    end: time = Field(description="at or before start: the shift ends the next day")


class ExceptionIn(BaseModel):
    kind: Literal["day_off", "vacation", "extra_shift"]
    start_date: Day
    end_date: Day | None = None
    start: time | None = None
    end: time | None = None
    note: Text = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _check(self) -> ExceptionIn:
        if self.end_date is None:
            self.end_date = self.start_date
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if self.kind == "extra_shift" and (self.start is None or self.end is None):
            raise ValueError("an extra shift needs start and end times")
        return self


class ScheduleIn(BaseModel):
    intervals: list[IntervalIn] = Field(default_factory=list, max_length=100)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=500)
    timezone: Text | None = None


class IntervalOut(RowOut):
    weekday: int  # Monday = 0
    start: IsoTime
    end: IsoTime  # at or before start: the shift ends the next day


class ExceptionOut(RowOut):
    kind: str  # day_off | vacation | extra_shift
    start_date: date
    end_date: date
    start: IsoTime | None  # extra shifts only
    end: IsoTime | None
    note: str


class ScheduleOut(BaseModel):
    user_id: int
    timezone: str
    intervals: list[IntervalOut]
    exceptions: list[ExceptionOut]

    @classmethod
    def from_rules(cls, s: Schedule) -> ScheduleOut:
        return cls(
            user_id=s.user_id,
            timezone=s.timezone,
            intervals=[IntervalOut.from_row(i) for i in s.intervals],
            exceptions=[ExceptionOut.from_row(c) for c in s.changes],
        )


class OnDutyOut(BaseModel):
    at: IsoDatetime
    user_ids: list[int]  # on duty at `at`
