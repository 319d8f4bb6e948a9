from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import FiniteDateTime, created_at, intpk

TASK_KINDS = ("callback", "meeting", "other")
# how the contact a task plans is made (Expo-Volga's contact planning: type and goal)
CONTACT_TYPES = ("call", "meeting", "email", "sms", "visit", "other")
REMINDER_EMAIL_STATES = ("pending", "sending", "sent", "failed")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(f"kind IN {TASK_KINDS!r}", name="kind"),
        CheckConstraint(f"contact_type IN {CONTACT_TYPES!r}", name="contact_type"),
        Index("ix_tasks_open_due", "due_at", postgresql_where="NOT done"),
        Index("ix_tasks_assignee_open", "assignee_id", postgresql_where="NOT done"),
        # one open callback per client, however many times the number called before it was done
        Index(
            "uq_tasks_open_callback_per_client",
            "client_id",
            unique=True,
            postgresql_where="kind = 'callback' AND NOT done",
        ),
        # what every instance's reminder scheduler polls: armed reminders only
        Index(
            "ix_tasks_reminder_due",
            "remind_at",
            postgresql_where="reminded_at IS NULL AND NOT done",
        ),
    )

    id: Mapped[intpk]
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="other")
    contact_type: Mapped[str | None] = mapped_column(String(16))
    goal: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(FiniteDateTime)
    # when the assignee is reminded (default: the due time); reminded_at is the claim that makes
    # the reminder go out exactly once, cleared when the task is rescheduled (re-armed)
    remind_at: Mapped[datetime | None] = mapped_column(FiniteDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    communication_id: Mapped[int | None] = mapped_column(
        ForeignKey("communications.id", ondelete="SET NULL")
    )
    # callbacks: missed calls counted on the one open callback, the latest of them, and the
    # answered call (either direction) that closed it
    tries: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    last_missed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_communication_id: Mapped[int | None] = mapped_column(
        ForeignKey("communications.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[created_at]


class ReminderEmail(Base):
    """A reminder's email to an assignee with no page open, written with the reminder's claim.

    Sent after that commit by whichever instance claims it (SKIP LOCKED, lease `locked_until`),
    so a crash between the claim and the send leaves it pending, never lost.
    """

    __tablename__ = "reminder_emails"
    __table_args__ = (
        CheckConstraint(f"state IN {REMINDER_EMAIL_STATES!r}", name="state"),
        Index(
            "ix_reminder_emails_due",
            "id",
            postgresql_where=text("state IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OpenPage(Base):
    """Which users have a page open (a live websocket) on which instance, as of `seen_at`.

    Each instance rewrites its own rows every few seconds (a heartbeat); rows older than a few
    heartbeats are an instance that died. The reminder scheduler reads it to decide on email.
    """

    __tablename__ = "open_pages"

    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
