"""deal_stages survives the per-test TRUNCATE (tests/conftest.py KEEP_TABLES): a test that edits
the pipeline puts it back as it found it, so the next test sees 0001's stages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@asynccontextmanager
async def pipeline_kept(engine: AsyncEngine) -> AsyncIterator[None]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT id, name, position, is_closed, is_won FROM deal_stages")
            )
        ).all()
    try:
        yield
    finally:
        async with engine.begin() as conn:
            ids = [r.id for r in rows]
            # deals may sit in stages the test added: they go, as every test's deals do
            await conn.execute(
                text("DELETE FROM deals WHERE NOT (stage_id = ANY(:ids))"), {"ids": ids}
            )
            await conn.execute(
                text(
                    "DELETE FROM deal_stage_moves WHERE NOT (to_stage_id = ANY(:ids)) "
                    "OR NOT (coalesce(from_stage_id, to_stage_id) = ANY(:ids))"
                ),
                {"ids": ids},
            )
            await conn.execute(
                text("DELETE FROM deal_stages WHERE NOT (id = ANY(:ids))"), {"ids": ids}
            )
            # two steps: a swap of names would collide on the unique name in one
            await conn.execute(text("UPDATE deal_stages SET name = '~' || id"))
            for r in rows:
                await conn.execute(
                    text(
                        "UPDATE deal_stages SET name = :name, position = :position, "
                        "is_closed = :is_closed, is_won = :is_won WHERE id = :id"
                    ),
                    r._asdict(),
                )
