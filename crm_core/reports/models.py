"""What reports need beyond communications and deals: queue entries and sales plans."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import intpk


class QueueEntry(Base):
    """A caller's stay in one Asterisk queue (a call moved between queues has several)."""

    __tablename__ = "queue_entries"
    __table_args__ = (
        Index("ix_queue_entries_joined", "joined_at"),
        Index("ix_queue_entries_linkedid", "linkedid"),
    )

    id: Mapped[intpk]
    linkedid: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(80))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    agent_extension: Mapped[str | None] = mapped_column(String(16))
    # the caller hung up while waiting here (not: left for another queue, or answered)
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)


class SalesPlan(Base):
    """A manager's sales target for a month (`month` is its first day)."""

    __tablename__ = "sales_plans"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
