from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import created_at


class ActiveCall(Base):
    """A call in progress, kept in the database so that a restart of the service loses none."""

    __tablename__ = "active_calls"

    linkedid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # the public view for dashboards and screen-pops: caller, client, agents, phase
    view: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    started_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AgentState(Base):
    """What an agent's phone is doing now: ringing, talking or free (seen by every instance)."""

    __tablename__ = "agent_states"

    extension: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # ringing | talking | free
    linkedid: Mapped[str | None] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
