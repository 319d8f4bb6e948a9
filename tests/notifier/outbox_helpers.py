"""Helpers of the SMS and email tests: read back a queued message, run the outbox until empty."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from crm_core.messaging import service
from crm_core.messaging.models import OutboxMessage
from notifier.outbox import OutboxWorker


async def communication(sessions: async_sessionmaker[AsyncSession], comm_id: int) -> Communication:
    async with sessions() as s:
        comm = await s.get(Communication, comm_id)
        assert comm is not None
        return comm


async def outbox_row(sessions: async_sessionmaker[AsyncSession], comm_id: int) -> OutboxMessage:
    async with sessions() as s:
        row = await s.scalar(select(OutboxMessage).where(OutboxMessage.communication_id == comm_id))
        assert row is not None
        return row


async def drain(worker: OutboxWorker, *, rounds: int = 50) -> None:
    """Run the worker until nothing is left to send (bounded)."""
    for _ in range(rounds):
        async with worker._sessions() as s:
            due = await service.seconds_until_due(s, worker.kinds)
        if due is None:
            return
        if due > 0:
            await asyncio.sleep(min(due, 0.2))
        await worker.run_once()
    raise AssertionError("the outbox did not drain")
