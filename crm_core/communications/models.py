from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import created_at, intpk

KINDS = ("call", "sms", "email", "note")
DIRECTIONS = ("in", "out")


class Communication(Base):
    """Every contact with a client, of any kind, on the client's deal."""

    __tablename__ = "communications"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        CheckConstraint(f"direction IN {DIRECTIONS!r}", name="direction"),
        # the same event logged twice stays one row (AMI Linkedid, Twilio SID, Message-ID)
        Index("uq_communications_kind_external_id", "kind", "external_id", unique=True),
        Index("ix_communications_client_time", "client_id", "occurred_at"),
        Index("ix_communications_deal_time", "deal_id", "occurred_at"),
        Index("ix_communications_time", "occurred_at"),
        # the reports' missed calls (and the agents they rang) without reading every row's JSON
        Index(
            "ix_communications_missed",
            "occurred_at",
            postgresql_where=text("kind = 'call' AND (extra ->> 'missed') = 'true'"),
        ),
    )

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    agent_extension: Mapped[str | None] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[created_at]
