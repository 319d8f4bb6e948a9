"""crm_core.calls.service.identify_caller: a new caller's card and deal are opened with the
fewest statements (no second look-up, no lock on a card nobody else can see) and stay one card
and one deal when two calls from the same new number race."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.calls.schemas import CallerContext
from crm_core.calls.service import identify_caller
from crm_core.clients.models import Client, ClientPhone
from crm_core.deals.models import Deal, DealStageMove

pytestmark = pytest.mark.usefixtures("db")

NUMBER = "+79035550001"


async def _identify(s: AsyncSession) -> CallerContext:
    caller = await identify_caller(s, NUMBER, None, region="RU", company_numbers=frozenset())
    assert caller is not None
    return caller


async def _counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int, int]:
    async with sessions() as s:
        return (
            await s.scalar(select(func.count()).select_from(Client)) or 0,
            await s.scalar(select(func.count()).select_from(ClientPhone)) or 0,
            await s.scalar(select(func.count()).select_from(Deal)) or 0,
            await s.scalar(select(func.count()).select_from(DealStageMove)) or 0,
        )


async def test_a_new_caller_gets_one_card_one_deal_in_the_first_stage(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s, s.begin():
        first = await _identify(s)
    assert first.client_created
    async with sessions() as s, s.begin():
        again = await _identify(s)
    assert not again.client_created
    assert (again.client_id, again.deal_id) == (first.client_id, first.deal_id)
    assert await _counts(sessions) == (1, 1, 1, 1)
    async with sessions() as s:
        deal = await s.get(Deal, first.deal_id)
        assert deal is not None and deal.client_id == first.client_id and deal.closed_at is None
        move = await s.scalar(select(DealStageMove).where(DealStageMove.deal_id == deal.id))
        assert move is not None and move.to_stage_id == deal.stage_id


async def test_two_calls_from_one_new_number_at_once_share_the_card_and_the_deal(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    async with sessions() as first_s:
        await first_s.begin()
        first = await _identify(first_s)  # opened, not committed yet

        async def second() -> CallerContext:
            async with sessions() as s, s.begin():
                return await _identify(s)

        task = asyncio.create_task(second())
        # the second transaction waits on the number's unique index for the first one
        async with asyncio.timeout(30), db.connect() as watch:
            while not await watch.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ):
                # pg_stat_activity is a snapshot taken once per transaction: end it
                # so the next poll sees the second transaction start waiting
                await watch.rollback()
                await asyncio.sleep(0.02)
        await first_s.commit()
    other = await task
    assert not other.client_created
    assert (other.client_id, other.deal_id) == (first.client_id, first.deal_id)
    assert await _counts(sessions) == (1, 1, 1, 1)
