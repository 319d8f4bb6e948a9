from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base


class ActiveCall(Base):
    """A call in progress: what dashboards show, who it is with, and what a restart resumes.

    Three owners, never overwriting each other's columns: the call columns are the PBX's view at
    the last saved fact (crm_core.calls.active.save_calls), the client columns what the CRM
    matched when the call started (crm_core.calls.progress.who_is_calling, then open_card for a
    new caller), and `tracker_state` the tracker's own resumable state (opaque here:
    telephony.tracker.CallTracker.snapshot).
    """

    __tablename__ = "active_calls"

    linkedid: Mapped[str] = mapped_column(String(64), primary_key=True)
    tracker_state: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # the call as the PBX shows it
    direction: Mapped[str | None] = mapped_column(Text)  # inbound | outbound
    state: Mapped[str | None] = mapped_column(Text)  # waiting | ringing | talking
    caller_number: Mapped[str | None] = mapped_column(Text)
    caller_name: Mapped[str | None] = mapped_column(Text)
    did_or_dialled: Mapped[str | None] = mapped_column(Text)
    agent_extension: Mapped[str | None] = mapped_column(Text)
    ringing: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'")
    )
    talking: Mapped[str | None] = mapped_column(Text)
    queue: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # who the call is with (no foreign keys: a hint for the pop and the log, not a relation)
    client_id: Mapped[int | None] = mapped_column(Integer)
    deal_id: Mapped[int | None] = mapped_column(Integer)
    client_name: Mapped[str | None] = mapped_column(Text)
    client_number: Mapped[str | None] = mapped_column(Text)  # E.164
    client_created: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    @property
    def view(self) -> dict[str, Any]:
        """The call as dashboards and pop cards show it (crm_core.events.messages.CallView)."""
        return {
            "linkedid": self.linkedid,
            "direction": self.direction,
            "state": self.state,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "did_or_dialled": self.did_or_dialled,
            "agent_extension": self.agent_extension,
            "ringing": list(self.ringing or ()),
            "talking": self.talking,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "queue": self.queue,
            "queued_at": self.queued_at.isoformat() if self.queued_at else None,
            "client_id": self.client_id,
            "deal_id": self.deal_id,
            "client_name": self.client_name,
            "client_number": self.client_number,
        }


class AgentState(Base):
    """What an agent's phone is doing now: ringing, talking or free (seen by every instance)."""

    __tablename__ = "agent_states"

    extension: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # ringing | talking | free
    linkedid: Mapped[str | None] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PbxSync(Base):
    """Whether agent_states follow the PBX right now: one row (id 1), written by the instance
    that follows it (crm_core.calls.pbx_sync), read by every router.

    Not in sync from the moment the AMI link is lost (or a follower starts) until its
    reconnect's reconcile commits: calls may have ended unseen meanwhile, their agents still
    "talking". No row: nobody ever followed a PBX (AMI off): agent_states are all there is. A
    follower that dies marks nothing (the next one's claim does); routers ignore an episode
    over 10 minutes old (crm_core/routing/repository.py:BATCH_SQL).
    """

    __tablename__ = "pbx_sync"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    # the follower that claimed it last: the only one whose writes count
    follower: Mapped[uuid.UUID] = mapped_column(Uuid)
    synced: Mapped[bool] = mapped_column(Boolean)
    # +1 each time it goes out of sync: a router that waited in vain for one episode does not
    # wait again for the same one (crm_core.routing.router.Router)
    epoch: Mapped[int] = mapped_column(BigInteger)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
