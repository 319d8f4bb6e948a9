from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Identity, Index, Integer, String, Uuid
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


class EventStaged(Base):
    """Messages written in the transaction of the work they announce, moved to event_log (and
    numbered) once it has committed; left here only by a crash in between, until the hub's
    next look (notifier/hub/event_log.py:release_leftovers)."""

    __tablename__ = "event_staged"

    batch: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    staged_at: Mapped[created_at]
