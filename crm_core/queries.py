"""Query helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Row, Select, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

S = TypeVar("S", bound=Select[Any])


def where_given(stmt: S, *filters: tuple[InstrumentedAttribute[Any], object]) -> S:
    """`stmt` narrowed by `column == value` for each filter whose value is given (not None):
    a list's optional query parameters."""
    for column, value in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


async def leased(
    session: AsyncSession,
    table: type[Any],
    due: Select[Any],
    lease: timedelta,
    *returning: InstrumentedAttribute[Any],
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The `due` ids of `table` (selected FOR UPDATE SKIP LOCKED, so other workers' rows are
    skipped, never waited for) taken by this worker for `lease`: "sending", one more attempt.
    `table` is a queue of work with the columns id, state, attempts and locked_until."""
    rows = await session.execute(
        update(table)
        .where(table.id.in_(due.scalar_subquery()))
        .values(state="sending", attempts=table.attempts + 1, locked_until=func.now() + lease)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    )
    return rows.all()
