"""Agent presence: the state each agent is in now, its history, and the list of pause reasons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import intpk


class PauseReason(Base):
    """A reason an agent may pause for (lunch, training…); admins edit the list."""

    __tablename__ = "pause_reasons"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(SmallInteger, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class AgentPresence(Base):
    """What an agent chose (or the PBX or a call's wrap-up set): one row per agent, now.

    No row means available. `until` is the end of a wrap-up; past it the agent is available
    again without anyone writing (the router compares it with now()).
    """

    __tablename__ = "agent_presence"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))  # available | paused | dnd | wrapup
    reason: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))  # api | pbx | call
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PresenceSpan(Base):
    """One stretch of one state, for reports of time per state (until NULL: still in it)."""

    __tablename__ = "presence_history"
    __table_args__ = (Index("ix_presence_history_user_since", "user_id", "since"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(100))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
