from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import FiniteDateTime, created_at, intpk

# what a result does to the deal: postponed -> a task, refused -> Lost, sale -> Won
RESULT_KINDS = ("postponed", "refused", "offer_sent", "sale", "wrong_number", "other")


class ContactResult(Base):
    """One entry of the admin-editable list of formal contact results."""

    __tablename__ = "contact_results"
    __table_args__ = (CheckConstraint(f"kind IN {RESULT_KINDS!r}", name="kind"),)

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(SmallInteger, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class ContactResultRecord(Base):
    """A result set on a contact (a communication) or on a card without one."""

    __tablename__ = "contact_result_records"
    # the results report: the records set in a period
    __table_args__ = (Index("ix_contact_result_records_created_at", "created_at"),)

    id: Mapped[intpk]
    result_id: Mapped[int] = mapped_column(ForeignKey("contact_results.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # the result's kind when it was set
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    communication_id: Mapped[int | None] = mapped_column(
        ForeignKey("communications.id", ondelete="SET NULL"), index=True
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    date: Mapped[datetime | None] = mapped_column(FiniteDateTime)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    created_at: Mapped[created_at]
