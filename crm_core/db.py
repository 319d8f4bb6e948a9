"""Database plumbing: declarative base, engine and session factory, the unit of work.

Services take an AsyncSession and never commit; the boundary (a request, an event handler) opens a
unit of work, which commits or rolls back and only then publishes the domain events it collected.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

logger = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_POSTGRES_SCHEMES = ("postgresql+asyncpg://", "postgres+asyncpg://", "postgresql://", "postgres://")


def _postgres_rest(url: str) -> str:
    """What follows the scheme of a PostgreSQL URL (SQLAlchemy's `+asyncpg` or plain)."""
    for prefix in _POSTGRES_SCHEMES:
        if url.startswith(prefix):
            return url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {url.split(':', 1)[0]}://…")


def to_async_url(url: str) -> str:
    """SQLAlchemy's form, `postgresql+asyncpg://…`: the engine always talks asyncpg."""
    return "postgresql+asyncpg://" + _postgres_rest(url)


def asyncpg_dsn(url: str) -> str:
    """asyncpg's own form, `postgresql://…`, for the connections the service keeps for itself."""
    return "postgresql://" + _postgres_rest(url)


def make_engine(
    url: str, *, pool_size: int = 5, echo: bool = False, timeout: float | None = None
) -> AsyncEngine:
    """An asyncpg engine; with `timeout` (seconds) no statement, connect or wait for a pooled
    connection lasts longer: a frozen or unreachable database then fails fast instead of
    holding every request (and its caller) until someone notices."""
    if timeout is None:
        return create_async_engine(
            to_async_url(url), pool_size=pool_size, max_overflow=10, echo=echo
        )
    return create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=10,
        pool_timeout=timeout,
        echo=echo,
        connect_args={
            "timeout": timeout,
            # the server cancels a statement waiting on a lock or running away (57014) …
            "server_settings": {"statement_timeout": str(int(timeout * 1000))},
            # … and the client gives up on a server that does not answer at all
            "command_timeout": timeout + 2,
        },
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


Publisher = Callable[[list[Any]], Awaitable[None]]


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The session's own connection at the driver, for the statements on a call's hot path: one
    costs the event loop about a fifth of the CPU it costs through the session (0.06 ms against
    0.3-0.4, bench/pop_latency_notes.md), and every pop waits for that loop.

    Its statements share the session's connection and transaction. SQLAlchemy sends BEGIN only
    with the session's first statement, so a transactional session that has not run one yet runs
    one here: what is sent to the driver then is inside the transaction, committed or rolled
    back with the rest. In autocommit each statement stands alone, as through the session.
    What the session holds unflushed is flushed first, as a statement through it would (its
    autoflush): a read here sees the rows the session's objects make."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        await session.flush()
    conn = await session.connection()
    driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
    options = conn.sync_connection.get_execution_options() if conn.sync_connection else {}
    autocommit = options.get("isolation_level") == "AUTOCOMMIT"
    if not autocommit and not driver.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return driver


@dataclass(frozen=True)
class TransactionalPublisher:
    """A publisher that writes a unit of work's events in its own transaction, just before the
    commit (the hub's event_log): committed together, so a crash between the commit and the
    publish cannot lose them, and a failed write rolls the work back. Called outside a unit of
    work, it publishes the usual way."""

    write: Callable[[AsyncSession, list[Any]], Awaitable[None]]
    publish: Publisher

    async def __call__(self, events: list[Any]) -> None:
        await self.publish(events)


@dataclass(frozen=True)
class StagedPublisher:
    """A publisher that stages a unit of work's events in its own transaction (`stage`, no
    lock held, returning what `release` needs) and releases them right after the commit: a
    crash in between leaves them staged, to be published later rather than lost (the hub's
    event_staged). Called outside a unit of work, it publishes the usual way."""

    stage: Callable[[AsyncSession, list[Any]], Awaitable[Any]]
    release: Callable[[Any, list[Any]], Awaitable[None]]
    publish: Publisher

    async def __call__(self, events: list[Any]) -> None:
        await self.publish(events)


_EVENTS_KEY = "domain_events"
# In a statement: its transaction commits without waiting for its WAL flush (SET LOCAL). For a
# statement that is its own transaction, on a hot path: a crash of the database may lose the
# last fraction of a second of such commits, never consistency.
NO_FLUSH_SQL = "set_config('synchronous_commit', 'off', true)"


def collect_event(session: AsyncSession, event: Any) -> None:
    """Buffer a domain event; it is published only if the transaction commits."""
    session.info.setdefault(_EVENTS_KEY, []).append(event)


async def discard_events(events: list[Any]) -> None:
    """A publisher for code that runs with nobody listening (CLI, tests)."""
    return None


@asynccontextmanager
async def unit_of_work(
    factory: async_sessionmaker[AsyncSession], publish: Publisher | None = None
) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on error; publish collected events after the commit only
    (or, for a TransactionalPublisher, write them in the transaction just before the commit;
    for a StagedPublisher, stage them there and release them after it)."""
    session = factory()
    staged: tuple[Any, list[Any]] | None = None
    try:
        yield session
        if isinstance(publish, TransactionalPublisher):
            written = session.info.pop(_EVENTS_KEY, None)
            if written:
                await publish.write(session, written)
        elif isinstance(publish, StagedPublisher):
            collected = session.info.pop(_EVENTS_KEY, None)
            if collected:
                staged = (await publish.stage(session, collected), collected)
        await session.commit()
    except BaseException:
        session.info.pop(_EVENTS_KEY, None)
        async with session:  # SQLAlchemy's exit: a close that a cancellation cannot cut short
            await session.rollback()
        raise
    # Committed, so the close has nothing to send and is done here. SQLAlchemy's `async with`
    # would run it in a task of its own: three more turns of the event loop per unit of work,
    # each a wait behind whatever else is ready (a screen-pop's batch waited up to ~3 ms).
    events: list[Any] = session.info.pop(_EVENTS_KEY, [])
    await session.close()
    if staged is not None and isinstance(publish, StagedPublisher):
        try:
            await publish.release(*staged)
        except Exception:  # as below; and what stays staged is published later, not lost
            logger.exception("releasing %d staged domain events failed", len(staged[1]))
    if events:
        try:
            await (publish or discard_events)(events)
        except Exception:  # delivery must never undo or fail a committed transaction
            logger.exception("publishing %d domain events failed", len(events))
