from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import created_at

OUTBOX_KINDS = ("sms", "email")
# pending: waiting for its turn (next_attempt_at); sending: claimed by a worker until
# locked_until (a crashed worker's rows become claimable again then); done and failed are final.
OUTBOX_STATES = ("pending", "sending", "done", "failed")


class OutboxMessage(Base):
    """One SMS or email to send, written in the same transaction as its communication.

    The worker sends it after that transaction commits, so a rolled-back request never sends
    anything and a committed one is always sent (or marked failed), whatever crashes in between.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(f"kind IN {OUTBOX_KINDS!r}", name="kind"),
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),
        # what the workers poll: only the rows still to send, in due order
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            postgresql_where=text("state IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    communication_id: Mapped[int] = mapped_column(
        ForeignKey("communications.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    max_attempts: Mapped[int] = mapped_column(SmallInteger)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
