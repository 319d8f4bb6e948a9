"""The models and the migrations describe the same schema: Alembic's autogenerate, run against the
test database migrated to head, finds nothing to add, drop or alter.

Alembic's comparison does not see CHECK constraints, so a second test compares their names (the
expressions PostgreSQL prints back differ in form from the models' text, so not those). Nor does
it see what only the migrations create, none of it in the models: the routing_pick and
crm_notify_schedules plpgsql functions, their triggers and the routing_ticket_seq sequence
(0002, 0004); tests/crm_core/test_routing_service.py exercises those.

Production databases get their schema from the migrations only, so a model that drifts from them
is wrong (or needs a new migration); this test says which, listing every difference it finds.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import crm_core.models  # noqa: F401  (every feature's models, so the metadata is complete)
from crm_core.db import Base

# Differences Alembic reports although the schema is the same; each with its reason.
KNOWN_FALSE_POSITIVES: dict[str, str] = {
    # (none today: add "kind table.name" -> why, and keep the reason honest)
}


def _describe(diff: Any) -> str:
    """One autogenerate diff (a tuple, or a list of column-modification tuples) as a line."""
    if isinstance(diff, list):
        return "; ".join(_describe(d) for d in diff)
    kind = diff[0]
    if kind.startswith("modify_"):
        _, _schema, table, column, _info, old, new = diff
        return f"{kind} {table}.{column}: database {old!r}, model {new!r}"
    obj = diff[-1] if kind.startswith(("add_", "remove_")) else diff[1:]
    name = getattr(obj, "name", None)
    table = getattr(getattr(obj, "table", None), "name", None)
    where = f"{table}.{name}" if table and name != table else name
    return f"{kind} {where if where else repr(obj)}"


def _key(diff: Any) -> str:
    line = _describe(diff)
    return line.split(":", 1)[0]


def _compare(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True},
    )
    return compare_metadata(context, Base.metadata)


async def test_models_match_the_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        diffs = await conn.run_sync(_compare)
    drift = [_describe(d) for d in diffs if _key(d) not in KNOWN_FALSE_POSITIVES]
    assert not drift, "models and migrations disagree:\n" + "\n".join(drift)


def _model_checks() -> set[str]:
    prepare = postgresql.dialect().identifier_preparer
    return {
        f"{table.name}.{prepare.format_constraint(c)}"
        for table in Base.metadata.tables.values()
        for c in table.constraints
        if isinstance(c, CheckConstraint)
    }


async def test_check_constraints_match_the_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT rel.relname, con.conname FROM pg_constraint con "
                "JOIN pg_class rel ON rel.oid = con.conrelid "
                "JOIN pg_namespace ns ON ns.oid = rel.relnamespace "
                "WHERE con.contype = 'c' AND ns.nspname = 'public'"
            )
        )
        database = {f"{table}.{name}" for table, name in rows}
    models = _model_checks()
    assert models, "the models declare CHECK constraints: the query above must see them"
    assert database == models, (
        f"only in the migrations: {sorted(database - models)}; "
        f"only in the models: {sorted(models - database)}"
    )
