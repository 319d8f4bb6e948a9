"""Callbacks driven by calls: a repeated missed call hurries the open callback and counts the
try; an answered call with the client (either direction) closes it, naming the call."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.schemas import CallRecord
from crm_core.calls.service import log_call
from crm_core.communications.models import Communication
from crm_core.models_common import utcnow
from crm_core.tasks.models import Task
from tests.telephony.pbx import call_rows, replayed_pbx

NUMBER = "+79161234567"  # the caller of the recorded answered call (inbound_answered.ami)


def _call(
    n: int, *, at: datetime, missed: bool, direction: str = "in", number: str = NUMBER
) -> CallRecord:
    return CallRecord(
        linkedid=f"test-{n}",
        direction=direction,
        status="abandoned" if missed else "answered",
        missed=missed,
        client_number=number,
        client_name=None,
        answered_by=None if missed else "101",
        agent_extension=None if missed else "101",
        final_agent=None,
        agents_rung=["101"],
        ring_seconds=3.0,
        talk_seconds=0.0 if missed else 20.0,
        started_at=at - timedelta(seconds=5),
        answered_at=None if missed else at - timedelta(seconds=3),
        ended_at=at,
    )


async def _log(
    sessions: async_sessionmaker[AsyncSession], record: CallRecord, due_in: timedelta
) -> Communication:
    async with sessions() as s:
        logged = await log_call(
            s, record, region="RU", company_numbers=frozenset(), callback_due=due_in
        )
        await s.commit()
    assert logged is not None
    return logged.communication


async def _callbacks(sessions: async_sessionmaker[AsyncSession]) -> list[Task]:
    async with sessions() as s:
        return list((await s.scalars(select(Task).where(Task.kind == "callback"))).all())


async def test_a_repeated_missed_call_moves_the_callback_earlier_and_counts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    first = await _log(sessions, _call(1, at=now, missed=True), timedelta(hours=2))
    [task] = await _callbacks(sessions)
    assert (task.tries, task.communication_id, task.done) == (1, first.id, False)
    assert task.due_at == now + timedelta(hours=2) and task.remind_at == task.due_at

    # the client tries again a minute later: due no later than a callback for that call
    again = now + timedelta(minutes=1)
    await _log(sessions, _call(2, at=again, missed=True), timedelta(minutes=30))
    [task] = await _callbacks(sessions)
    assert task.tries == 2
    assert task.due_at == again + timedelta(minutes=30)
    assert task.remind_at == task.due_at and task.reminded_at is None  # re-armed
    assert task.last_missed_at == again

    # a third try whose own callback would be later moves nothing back
    later = now + timedelta(minutes=2)
    await _log(sessions, _call(3, at=later, missed=True), timedelta(hours=5))
    [task] = await _callbacks(sessions)
    assert (task.tries, task.due_at) == (3, again + timedelta(minutes=30))


async def test_an_answered_outbound_call_closes_the_callback_with_its_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    await _log(sessions, _call(1, at=now, missed=True), timedelta(minutes=30))
    # an unanswered call back does not close it
    await _log(sessions, _call(2, at=now, missed=True, direction="out"), timedelta(minutes=30))
    [task] = await _callbacks(sessions)
    assert task.done is False
    back = await _log(
        sessions,
        _call(3, at=now + timedelta(minutes=5), missed=False, direction="out"),
        timedelta(minutes=30),
    )
    [task] = await _callbacks(sessions)
    assert task.done is True and task.closed_by_communication_id == back.id
    # another client's answered call closes nothing of theirs
    other = await _log(
        sessions, _call(4, at=now, missed=True, number="+79035550000"), timedelta(minutes=30)
    )
    assert other.client_id != back.client_id


async def test_a_replayed_answered_call_from_the_same_number_closes_the_callback(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _log(sessions, _call(1, at=utcnow(), missed=True), timedelta(minutes=30))
    async with replayed_pbx(sessions) as pbx:
        await pbx.play("inbound_answered")
    answered = [c for c in await call_rows(sessions) if c.status == "answered"]
    assert len(answered) == 1 and answered[0].phone == NUMBER
    [task] = await _callbacks(sessions)
    assert task.done is True
    assert task.closed_by_communication_id == answered[0].id
    assert task.client_id == answered[0].client_id
