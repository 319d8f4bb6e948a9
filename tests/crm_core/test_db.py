"""Units of work (commit, roll back, close without a turn of the loop) and the driver's connection a
session lends its hot path: same connection, same transaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.db import collect_event, driver_connection, make_session_factory, unit_of_work

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


class _OtherTask:
    """Another task on the loop, counting its turns: each one a wait for whoever yields (a
    screen-pop's batch waits behind every other lane's ready step)."""

    def __init__(self) -> None:
        self.turns = 0
        self._done = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _OtherTask:
        self._task = asyncio.create_task(self._spin())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._done = True
        assert self._task is not None
        await self._task

    async def _spin(self) -> None:
        while not self._done:
            self.turns += 1
            await asyncio.sleep(0)


async def test_a_committed_unit_of_work_closes_without_a_turn_of_the_loop(db: AsyncEngine) -> None:
    # SQLAlchemy's `async with session` closes in a task of its own (three turns); after a
    # commit there is nothing to send, so leaving the unit of work takes none: here the pop
    # lane's autocommit session, whose connection is checked out and given back meanwhile
    sessions = make_session_factory(db.execution_options(isolation_level="AUTOCOMMIT"))
    published: list[list[Any]] = []

    async def publish(events: list[Any]) -> None:
        published.append(events)

    async with _OtherTask() as other:
        async with unit_of_work(sessions, publish) as session:
            await (await driver_connection(session)).execute(_WRITE, "706")
            collect_event(session, "pop")
            before = other.turns
        taken = other.turns - before

    assert taken == 0
    assert published == [["pop"]]
    assert db.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _written(db, "706")


async def test_a_failed_unit_of_work_rolls_back_returns_its_connection_publishes_nothing(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    published: list[list[Any]] = []

    async def publish(events: list[Any]) -> None:
        published.append(events)

    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions, publish) as session:
            await (await driver_connection(session)).execute(_WRITE, "704")
            collect_event(session, "never")
            raise RuntimeError("the batch fails")
    assert not await _written(db, "704")
    assert published == []
    assert db.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_unit_of_work_cancelled_midway_rolls_back_and_returns_its_connection(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    started = asyncio.Event()

    async def stopped_while_waiting() -> None:
        async with unit_of_work(sessions) as session:
            await (await driver_connection(session)).execute(_WRITE, "705")
            started.set()
            await session.execute(text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(stopped_while_waiting())
    await started.wait()
    await asyncio.sleep(0.05)  # (inside pg_sleep, or about to be: cancelled either way)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await _written(db, "705")
    assert db.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_unit_of_work_cancelled_again_in_its_rollback_still_returns_its_connection(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a shutdown may cancel twice: the second lands in the rollback, and the close that gives
    # the connection back (SQLAlchemy's, in a task of its own) must still run to its end
    rollback = AsyncSession.rollback
    in_rollback = asyncio.Event()

    async def slow_rollback(self: AsyncSession) -> None:
        in_rollback.set()
        await asyncio.sleep(30)
        await rollback(self)

    monkeypatch.setattr(AsyncSession, "rollback", slow_rollback)
    started = asyncio.Event()

    async def stopped_twice() -> None:
        async with unit_of_work(sessions) as session:
            await (await driver_connection(session)).execute(_WRITE, "707")
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(stopped_twice())
    await started.wait()
    task.cancel()
    await in_rollback.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert db.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert not await _written(db, "707")
