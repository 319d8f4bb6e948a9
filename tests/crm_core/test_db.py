"""The driver's connection a session lends its hot path: same connection, same transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.db import driver_connection, make_session_factory, unit_of_work

_WRITE = "INSERT INTO agent_states (extension, state, since) VALUES ($1, 'free', now())"


async def _written(db: AsyncEngine, extension: str) -> bool:
    async with db.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM agent_states WHERE extension = :e"), {"e": extension}
        )
    return bool(found)


async def test_a_driver_statement_first_in_a_transaction_is_rolled_back_with_it(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    # SQLAlchemy sends BEGIN with the session's first statement: had the driver's gone first,
    # alone, it would have committed by itself and stayed
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions) as session:
            await (await driver_connection(session)).execute(_WRITE, "701")
            raise RuntimeError("the batch fails")
    assert not await _written(db, "701")

    async with unit_of_work(sessions) as session:
        driver = await driver_connection(session)
        await driver.execute(_WRITE, "702")
        through_driver = await driver.fetchval("SELECT txid_current()")
        through_session = await session.scalar(text("SELECT txid_current()"))
    assert through_driver == through_session  # one transaction
    assert await _written(db, "702")


async def test_a_driver_read_sees_what_the_session_holds_unflushed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # as a statement through the session would (autoflush): a card added just before must be
    # found by the caller lookup that goes to the driver, or a second card would be opened
    async with unit_of_work(sessions) as session:
        session.add(Client(name="Anna"))
        driver = await driver_connection(session)
        assert await driver.fetchval("SELECT count(*) FROM clients WHERE name = 'Anna'") == 1


async def test_in_autocommit_each_driver_statement_stands_alone(db: AsyncEngine) -> None:
    sessions = make_session_factory(db.execution_options(isolation_level="AUTOCOMMIT"))
    async with unit_of_work(sessions) as session:
        driver = await driver_connection(session)
        assert not driver.is_in_transaction()
        first = await driver.fetchval("SELECT txid_current()")
        second = await driver.fetchval("SELECT txid_current()")
        await driver.execute(_WRITE, "703")
    assert first != second
    assert await _written(db, "703")
