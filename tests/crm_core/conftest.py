"""Fixtures of the domain tests: a scratch database for what must start from nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture
async def scratch_url(engine: AsyncEngine, database_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty database on the test server (no migrations), dropped after."""
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield (
            database_url.replace("/postgres?", f"/{name}?")
            if "/postgres?" in database_url
            else (database_url.rsplit("/", 1)[0] + f"/{name}")
        )
    finally:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
