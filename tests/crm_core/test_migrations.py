from __future__ import annotations

import asyncpg
from sqlalchemy import text

from crm_core.db import make_engine
from crm_core.migrate import downgrade, upgrade
from crm_core.models import Base


async def test_migrations_from_empty_to_head_and_back(scratch_url: str) -> None:
    upgrade(scratch_url)
    scratch = make_engine(scratch_url)
    async with scratch.connect() as conn:
        tables = {
            r[0]
            for r in await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            )
        }
        stages = [
            r[0] for r in await conn.execute(text("SELECT name FROM deal_stages ORDER BY position"))
        ]
    await scratch.dispose()
    assert set(Base.metadata.tables) <= tables
    assert stages == [
        "Unsorted",
        "First contact",
        "Negotiation",
        "Deciding",
        "Contract",
        "Won",
        "Lost",
    ]
    downgrade(scratch_url, "base")
    scratch = make_engine(scratch_url)
    async with scratch.connect() as conn:
        left = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_tables WHERE schemaname='public' "
                "AND tablename <> 'alembic_version'"
            )
        )
    await scratch.dispose()
    assert left == 0


def test_asyncpg_is_the_driver(database_url: str) -> None:
    assert asyncpg.__version__
    assert make_engine(database_url).dialect.driver == "asyncpg"
