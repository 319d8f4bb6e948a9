"""Reminders that fire exactly once: claimed in the database, whichever instance gets there.

A reminder is armed while `remind_at` is set, `reminded_at` is NULL and the task is open. The
claim (`reminded_at = now()` on due rows locked FOR UPDATE SKIP LOCKED) happens in the same
transaction that writes the reminder's message into the event log and its email row, so a
reminder is either claimed with all of that or not at all: two schedulers racing never both
get a row, and a crash before the commit leaves it armed for the next one (after a restart too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.events.types import TaskReminder
from crm_core.models_common import utcnow
from crm_core.queries import leased
from crm_core.tasks.models import ReminderEmail, Task
from crm_core.tasks.open_pages import present_users
from crm_core.tasks.reminder_text import pick_locale, reminder_email
from crm_core.tasks.service import client_names
from crm_core.users.models import User


@dataclass(frozen=True, slots=True)
class EmailPolicy:
    """Whether and how an absent assignee is emailed."""

    enabled: bool  # SMTP configured
    presence_ttl: timedelta  # a heartbeat older than this is no open page
    default_locale: str
    page_url: str  # where the email sends them: the agenda page
    sender: str  # SMTP_FROM, for the Message-ID's domain


async def claim_due(
    session: AsyncSession, policy: EmailPolicy, *, batch: int = 100
) -> list[TaskReminder]:
    """Claim every due reminder this instance can lock; their events and emails are written by
    the caller's transaction (commit it, with the events in the event log, to deliver)."""
    due = (
        select(Task.id)
        .where(Task.reminded_at.is_(None), Task.done.is_(False), Task.remind_at <= func.now())
        .order_by(Task.remind_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    rows = (
        await session.execute(
            update(Task)
            .where(Task.id.in_(due))
            .values(reminded_at=func.now())
            .returning(
                Task.id,
                Task.title,
                Task.kind,
                Task.goal,
                Task.due_at,
                Task.remind_at,
                Task.assignee_id,
                Task.client_id,
                Task.deal_id,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    claimed = [r for r in rows if r.assignee_id is not None]
    if not claimed:
        return []
    client_ids = {r.client_id for r in claimed if r.client_id is not None}
    names = await client_names(session, client_ids) if client_ids else {}
    users = {
        u.id: u
        for u in (
            await session.scalars(select(User).where(User.id.in_({r.assignee_id for r in claimed})))
        ).all()
    }
    present = (
        await present_users(session, users.keys(), policy.presence_ttl) if policy.enabled else set()
    )
    events: list[TaskReminder] = []
    domain = policy.sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    for r in sorted(claimed, key=lambda r: (r.remind_at or utcnow(), r.id)):
        user = users.get(r.assignee_id)
        if user is None or not user.is_active:
            continue
        client_name = names.get(r.client_id) if r.client_id is not None else None
        events.append(
            TaskReminder(
                task_id=r.id,
                assignee_id=user.id,
                payload={
                    "title": r.title,
                    "kind": r.kind,
                    "due_at": _iso(r.due_at),
                    "remind_at": _iso(r.remind_at),
                    "client_id": r.client_id,
                    "client_name": client_name,
                    "deal_id": r.deal_id,
                },
            )
        )
        if policy.enabled and user.email and user.id not in present:
            subject, body = reminder_email(
                locale=pick_locale(user.locale, policy.default_locale),
                title=r.title,
                kind=r.kind,
                due_at=r.due_at,
                client_name=client_name,
                goal=r.goal,
                timezone=user.timezone,
                page_url=policy.page_url,
            )
            session.add(
                ReminderEmail(
                    task_id=r.id,
                    user_id=user.id,
                    address=user.email,
                    subject=subject[:500],
                    body=body,
                    message_id=make_msgid(domain=domain),
                    state="pending",
                    attempts=0,
                )
            )
    await session.flush()
    return events


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest armed reminder (to sleep until then), maybe already past."""
    return await session.scalar(
        select(func.min(Task.remind_at)).where(Task.reminded_at.is_(None), Task.done.is_(False))
    )


@dataclass(frozen=True, slots=True)
class ClaimedEmail:
    id: int
    address: str
    subject: str
    body: str
    message_id: str
    attempts: int  # this attempt's number; also the fencing token of the claim


async def claim_emails(
    session: AsyncSession, *, lease: timedelta, batch: int = 20
) -> list[ClaimedEmail]:
    """Pending reminder emails, and those whose sender's lease ran out, leased to this one."""
    due = (
        select(ReminderEmail.id)
        .where(
            (ReminderEmail.state == "pending")
            | ((ReminderEmail.state == "sending") & (ReminderEmail.locked_until < func.now()))
        )
        .order_by(ReminderEmail.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    rows = await leased(
        session,
        ReminderEmail,
        due,
        lease,
        ReminderEmail.id,
        ReminderEmail.address,
        ReminderEmail.subject,
        ReminderEmail.body,
        ReminderEmail.message_id,
        ReminderEmail.attempts,
    )
    return [ClaimedEmail(*r) for r in rows]


async def email_finished(
    session: AsyncSession,
    item: ClaimedEmail,
    *,
    error: str | None,
    retry_in: timedelta | None,
) -> None:
    """Record a send: sent, retried after `retry_in` (lease extended), or failed for good."""
    values: dict[str, object]
    if error is None:
        values = {"state": "sent", "sent_at": func.now(), "locked_until": None, "last_error": None}
    elif retry_in is not None:
        values = {"locked_until": func.now() + retry_in, "last_error": error[:2000]}
    else:
        values = {"state": "failed", "locked_until": None, "last_error": error[:2000]}
    await session.execute(
        update(ReminderEmail)
        .where(ReminderEmail.id == item.id, ReminderEmail.attempts == item.attempts)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
