"""Alembic environment: async engine, URL given by crm_core.migrate (never read at import)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from crm_core.db import make_engine
from crm_core.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "crm_core.migrate sets sqlalchemy.url"
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported")
asyncio.run(_run_async())
