from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Identity, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import created_at


class EventLogEntry(Base):
    """Events for people, numbered and kept a while so a reconnecting browser catches up."""

    __tablename__ = "event_log"
    __table_args__ = (Index("ix_event_log_channel_seq", "channel", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[created_at]
