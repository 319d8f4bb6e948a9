"""Health tells the truth: the database is probed, parts that are down are named, and a frozen
database gives quick 503s rather than hung requests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_core.db import asyncpg_dsn, make_engine, make_session_factory
from telephony.settings import TelephonySettings
from tests.conftest import UserFactory
from web.app import create_app
from web.container import Container
from web.settings import Settings

pytestmark = pytest.mark.usefixtures("db")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client_for(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_health_is_ok_with_the_database_up(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "up"
    # the test settings turn the PBX parts off: said so, not reported as up
    assert body["parts"]["ami"] == "disabled" and body["parts"]["agi"] == "disabled"


async def test_health_is_503_naming_the_database_when_it_is_unreachable(
    settings: Settings,
) -> None:
    engine = make_engine(f"postgresql://crm@127.0.0.1:{_closed_port()}/crm", timeout=2)
    c = Container(
        settings=settings,
        database_url=settings.core.database_url,
        engine=engine,
        sessions=make_session_factory(engine),
    )
    try:
        async for client in _client_for(c):
            r = await client.get("/api/health")
            assert r.status_code == 503, r.text
            assert r.json()["database"] == "down" and r.json()["status"] == "down"
            # and an ordinary request is a 503 too, not a 500 (nor a hang)
            r = await client.get("/api/auth/me", headers={"Authorization": "Bearer x.y.z"})
            assert r.status_code in (401, 503)
            r = await client.post("/api/auth/token", data={"username": "a", "password": "b"})
            assert r.status_code == 503, r.text
    finally:
        await engine.dispose()


async def test_parts_that_should_run_but_do_not_are_named(
    container: Container, settings: Settings
) -> None:
    # AGI on, but its port is taken: the service runs on without it, and health says so
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings.telephony = TelephonySettings(
            AMI_ENABLED=False, AGI_ENABLED=True, AGI_HOST="127.0.0.1", AGI_PORT=port
        )
        app = create_app(container=container)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                r = await client.get("/api/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "degraded" and r.json()["parts"]["agi"] == "down"


@pytest.fixture
async def quick_engine(database_url: str, db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, timeout=1)
    yield engine
    await engine.dispose()


async def test_a_frozen_table_gives_503_then_the_service_comes_back(
    settings: Settings, quick_engine: AsyncEngine, make_user: UserFactory, database_url: str
) -> None:
    _, h = await make_user(role="admin")
    c = Container(
        settings=settings,
        database_url=database_url,
        engine=quick_engine,
        sessions=make_session_factory(quick_engine),
    )
    locker = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async for client in _client_for(c):
            assert (await client.get("/api/clients", headers=h)).status_code == 200
            tx = locker.transaction()
            await tx.start()
            # another session holds the table: every read of it waits behind the lock
            await locker.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
            r = await asyncio.wait_for(client.get("/api/clients", headers=h), timeout=60)
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"]
            await tx.rollback()
            r = await client.get("/api/clients", headers=h)
            assert r.status_code == 200, r.text
            assert (await client.get("/api/health")).status_code == 200
    finally:
        await locker.close()
