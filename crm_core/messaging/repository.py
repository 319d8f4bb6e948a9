"""All SQL about the outbox and about delivery statuses of messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.communications.models import Communication
from crm_core.messaging.models import OutboxMessage
from crm_core.messaging.schemas import Claimed
from crm_core.queries import leased

NOTIFY_CHANNEL = "crm_outbox"


async def notify(session: AsyncSession, kind: str) -> None:
    """Wake every instance's workers; PostgreSQL delivers it only if the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :kind)"), {"channel": NOTIFY_CHANNEL, "kind": kind}
    )


def _claimable(kinds: Sequence[str]) -> Any:
    now = func.now()
    return and_(
        OutboxMessage.kind.in_(list(kinds)),
        or_(
            and_(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now),
            # a worker that claimed it died or hung past its lease
            and_(OutboxMessage.state == "sending", OutboxMessage.locked_until < now),
        ),
    )


async def claim(
    session: AsyncSession, kinds: Sequence[str], *, limit: int, lease: timedelta
) -> list[Claimed]:
    """Take up to `limit` due rows; rows other workers hold are skipped, never waited for."""
    due = (
        select(OutboxMessage.id)
        .where(_claimable(kinds))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await leased(
        session,
        OutboxMessage,
        due,
        lease,
        OutboxMessage.id,
        OutboxMessage.kind,
        OutboxMessage.communication_id,
        OutboxMessage.payload,
        OutboxMessage.attempts,
        OutboxMessage.max_attempts,
    )
    claimed = [Claimed(*row) for row in rows]
    claimed.sort(key=lambda c: c.id)
    return claimed


async def next_due(session: AsyncSession, kinds: Sequence[str]) -> tuple[datetime | None, datetime]:
    """When the earliest row still to send becomes claimable (None: nothing left), and now.

    Both by the database's clock, so instances with skewed clocks agree on when a row is due.
    """
    when = func.min(
        case(
            (OutboxMessage.state == "sending", OutboxMessage.locked_until),
            else_=OutboxMessage.next_attempt_at,
        )
    )
    row = (
        await session.execute(
            select(when, func.now()).where(
                OutboxMessage.kind.in_(list(kinds)),
                OutboxMessage.state.in_(("pending", "sending")),
            )
        )
    ).one()
    return row[0], row[1]


def _held(item: Claimed) -> Any:
    # the claim is ours only while nobody re-claimed the row after our lease ran out
    return and_(
        OutboxMessage.id == item.id,
        OutboxMessage.state == "sending",
        OutboxMessage.attempts == item.attempts,
    )


async def finish(session: AsyncSession, item: Claimed, *, state: str, error: str | None) -> bool:
    values: dict[str, Any] = {"state": state, "locked_until": None, "finished_at": func.now()}
    if error is not None:  # a success keeps the error of the attempt before it, for the record
        values["last_error"] = error
    result = await session.execute(
        update(OutboxMessage).where(_held(item)).values(**values).returning(OutboxMessage.id)
    )
    return result.scalar() is not None


async def reschedule(session: AsyncSession, item: Claimed, *, error: str, delay: timedelta) -> bool:
    result = await session.execute(
        update(OutboxMessage)
        .where(_held(item))
        .values(
            state="pending",
            last_error=error,
            locked_until=None,
            next_attempt_at=func.now() + delay,
        )
        .returning(OutboxMessage.id)
    )
    return result.scalar() is not None


async def advance_status(
    session: AsyncSession,
    communication_id: int,
    status: str,
    *,
    only_from: Sequence[str],
    extra: dict[str, Any] | None = None,
) -> Communication | None:
    """Set the status if the current one is among `only_from`, in one statement (no race).

    Two callbacks of one message processed at once cannot both win, and neither moves it back.
    """
    values: dict[str, Any] = {"status": status}
    if extra:
        values["extra"] = Communication.extra.op("||")(extra)
    changed = await session.scalar(
        update(Communication)
        .where(Communication.id == communication_id, Communication.status.in_(list(only_from)))
        .values(**values)
        .returning(Communication.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        return None
    # the session may hold the row from before the update: read it afresh
    return await session.get(Communication, changed, populate_existing=True)


async def merge_extra(session: AsyncSession, communication_id: int, extra: dict[str, Any]) -> None:
    await session.execute(
        update(Communication)
        .where(Communication.id == communication_id)
        .values(extra=Communication.extra.op("||")(extra))
        .execution_options(synchronize_session=False)
    )


async def set_external_id(session: AsyncSession, communication_id: int, external_id: str) -> bool:
    """False when another row of the same kind already has that id (the unique index says so)."""
    comm = await session.get(Communication, communication_id)
    if comm is None:
        return False
    taken = await session.scalar(
        select(Communication.id).where(
            Communication.kind == comm.kind,
            Communication.external_id == external_id,
            Communication.id != communication_id,
        )
    )
    if taken is not None:
        return False
    await session.execute(
        update(Communication)
        .where(Communication.id == communication_id)
        .values(external_id=external_id)
        .execution_options(synchronize_session=False)
    )
    return True
