"""Test fixtures: one throwaway embedded PostgreSQL per run, migrated once, emptied per test."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.db import asyncpg_dsn, make_engine, make_session_factory
from crm_core.migrate import upgrade
from crm_core.settings import CoreSettings
from crm_core.users.models import User
from crm_core.users.schemas import UserCreate
from crm_core.users.service import create_user
from crm_core.users.sessions import start_session
from telephony.settings import TelephonySettings
from tests.mailbox import Mailbox, serving_mailbox
from web.app import create_app
from web.container import Container
from web.settings import Settings, WebSettings

# Real Asterisk 22 traffic, its truth files and the AGI request, kept in the repository.
RECORDINGS = Path(__file__).resolve().parents[1] / "asterisk" / "recordings"
KEEP_TABLES = {"deal_stages", "alembic_version", "pause_reasons"}  # seeded by migrations


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """DATABASE_URL when given (a scratch database there), else an embedded server."""
    given = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # make test's workers: gw0, gw1
    if given and worker:
        # each worker truncates every table per test: one database each on that server
        there = make_url(given)
        base = there.database or there.username or "postgres"  # libpq's default: the user
        own = there.set(database=f"{base}_{worker}").render_as_string(hide_password=False)
        asyncio.run(_recreate(given, own))
        upgrade(own)
        yield own
        asyncio.run(_recreate(given, own, create=False))
        return
    if given:
        upgrade(given)
        yield given
        return
    from crm_core.embedded import start_embedded

    folder = Path(tempfile.mkdtemp(prefix="crm-test-"))
    url, server = start_embedded(folder / "pgdata", throwaway=True)
    upgrade(url)
    yield url
    del server


async def _recreate(server: str, database: str, *, create: bool = True) -> None:
    """`database` (a URL on the same server as `server`) dropped, and created empty."""
    name = make_url(database).database
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def _tables(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        return sorted(r[0] for r in rows if r[0] not in KEEP_TABLES)


@pytest.fixture
async def db(engine: AsyncEngine, _tables: list[str]) -> AsyncEngine:
    """A database emptied of everything but the seeded pipeline stages."""
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(_tables)} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture
def sessions(db: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(db)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as s:
        yield s


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        core=CoreSettings(DATABASE_URL=database_url, PHONE_DEFAULT_REGION="RU"),
        web=WebSettings(SECRET_KEY="test-secret-key-that-is-32-bytes-long!"),
        # subsystems that talk to a PBX start only in the tests that give them one
        telephony=TelephonySettings(AMI_ENABLED=False, AGI_ENABLED=False),
    )


@pytest.fixture
def container(
    settings: Settings, db: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> Container:
    return Container(
        settings=settings, database_url=settings.core.database_url, engine=db, sessions=sessions
    )


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


UserFactory = Callable[..., Awaitable[tuple[User, dict[str, str]]]]


@pytest.fixture
def make_user(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> UserFactory:
    """`await make_user(role=..., extension=...)` -> (user, auth headers)."""
    counter = {"n": 0}

    async def factory(
        *,
        role: str = "manager",
        extension: str | None = None,
        login: str | None = None,
        password: str = "secret",
        timezone: str = "Europe/Moscow",
        **extra: Any,
    ) -> tuple[User, dict[str, str]]:
        counter["n"] += 1
        async with sessions() as s:
            user = await create_user(
                s,
                UserCreate(
                    login=login or f"{role}{counter['n']}",
                    password=password,
                    role=role,  # type: ignore[arg-type]
                    extension=extension,
                    timezone=timezone,
                    **extra,
                ),
            )
            token, _ = await start_session(s, user.id, timedelta(hours=1))
            await s.commit()
        return user, {"Authorization": f"Bearer {token}"}

    return factory


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    """An SMTP server on loopback keeping what it is sent (tests/mailbox.py)."""
    async with serving_mailbox() as box:
        yield box


@pytest.fixture(autouse=True)
def messages_match_catalogue(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every message a unit of work would send or the hub publishes, and every control frame /ws
    sends, fits its schema in GET /api/events/schema.

    The failures are collected and asserted at teardown: a publisher's exception could be logged
    and swallowed by the code under test, and the mismatch would go unnoticed.
    """
    import crm_core.db
    import notifier.hub.event_hub
    import web.ws
    from notifier.channels import messages_for
    from tests.event_contract import violations

    found: list[str] = []
    real_messages_for = notifier.hub.event_hub.messages_for
    real_control_frame = web.ws.control_frame
    real_commit = AsyncSession.commit

    def checked_messages_for(events: Any) -> Any:
        messages = real_messages_for(events)
        for m in messages:
            found.extend(violations(m.type, m.payload))
        return messages

    def checked_control_frame(type_: str, **fields: Any) -> str:
        found.extend(violations(type_, fields))
        return real_control_frame(type_, **fields)

    async def checked_commit(self: AsyncSession) -> None:
        # every unit of work, whoever publishes it (the hub, a test's list, or nobody: a
        # pipeline run with publish=None still makes the messages it would send)
        for m in messages_for(self.info.get(crm_core.db._EVENTS_KEY, ())):
            found.extend(violations(m.type, m.payload))
        await real_commit(self)

    monkeypatch.setattr(notifier.hub.event_hub, "messages_for", checked_messages_for)
    monkeypatch.setattr(AsyncSession, "commit", checked_commit)
    monkeypatch.setattr(web.ws, "control_frame", checked_control_frame)
    yield found
    assert found == [], "messages that do not match GET /api/events/schema"
