"""Queue entries from the call tracker's facts: who joined which queue, when they left, whether
someone answered them there, whether they hung up waiting. One row per stay in a queue, so a call
moved between queues or transferred into one counts in each queue it waited in."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.reports.models import QueueEntry

# Asterisk sends a queue call's DialEnd ANSWER just before QueueCallerLeave; an answer this close
# after the leave still belongs to the stay (events of one instant may come in either order).
ANSWER_GRACE = timedelta(seconds=2)
# a stay that ended within this of the call's end ended because the caller hung up
ABANDON_GRACE = timedelta(seconds=1)


async def _latest(session: AsyncSession, linkedid: str) -> QueueEntry | None:
    return await session.scalar(
        select(QueueEntry)
        .where(QueueEntry.linkedid == linkedid)
        .order_by(QueueEntry.joined_at.desc(), QueueEntry.id.desc())
        .limit(1)
    )


async def queue_changed(
    session: AsyncSession, linkedid: str, queue: str | None, at: datetime
) -> None:
    """The caller joined `queue`, or (None) left the queue they were in."""
    await session.execute(
        update(QueueEntry)
        .where(QueueEntry.linkedid == linkedid, QueueEntry.left_at.is_(None))
        .values(left_at=at)
    )
    if queue:
        session.add(QueueEntry(linkedid=linkedid, queue=queue[:80], joined_at=at, abandoned=False))
    await session.flush()


async def answered(
    session: AsyncSession, linkedid: str, extension: str | None, at: datetime
) -> None:
    """Someone answered the call: the stay it was in (or just left) was answered there."""
    entry = await _latest(session, linkedid)
    if entry is None or entry.answered_at is not None:
        return
    if entry.left_at is not None and at - entry.left_at > ANSWER_GRACE:
        return  # answered later, elsewhere (a direct transfer after the queue gave up)
    entry.answered_at = at
    entry.agent_extension = extension


async def call_ended(session: AsyncSession, linkedid: str, at: datetime) -> None:
    """The call is over: a stay still open ends now; unanswered stays that ended with the call
    were abandoned (the caller hung up waiting)."""
    entries = (
        await session.scalars(select(QueueEntry).where(QueueEntry.linkedid == linkedid))
    ).all()
    for e in entries:
        if e.left_at is None:
            e.left_at = at
        if e.answered_at is None and at - e.left_at <= ABANDON_GRACE:
            e.abandoned = True
