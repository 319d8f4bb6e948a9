from __future__ import annotations

from datetime import date, time

from sqlalchemy import CheckConstraint, Date, ForeignKey, SmallInteger, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import intpk

EXCEPTION_KINDS = ("day_off", "vacation", "extra_shift")


class ScheduleInterval(Base):
    """A weekly working interval in its owner's time zone; end <= start crosses midnight."""

    __tablename__ = "schedule_intervals"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # Monday = 0
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class ScheduleException(Base):
    """A day off or a vacation (a date range), or an extra shift (dates with times)."""

    __tablename__ = "schedule_exceptions"
    __table_args__ = (
        CheckConstraint(f"kind IN {EXCEPTION_KINDS!r}", name="kind"),
        CheckConstraint("end_date >= start_date", name="range"),
    )

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)
    note: Mapped[str] = mapped_column(String(200), default="")
