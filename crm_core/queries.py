"""Query helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import Row, Select, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapped

S = TypeVar("S", bound=Select[Any])


def where_given(stmt: S, *filters: tuple[InstrumentedAttribute[Any], object]) -> S:
    """`stmt` narrowed by `column == value` for each filter whose value is given (not None):
    a list's optional query parameters."""
    for column, value in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


class WorkQueue(Protocol):
    """A table of work `leased` takes rows of: the columns it reads and sets (ClassVar: the
    mapped class's columns, so a model without them is refused by mypy)."""

    id: ClassVar[Mapped[int]]
    state: ClassVar[Mapped[str]]
    attempts: ClassVar[Mapped[int]]
    locked_until: ClassVar[Mapped[datetime | None]]


async def leased(
    session: AsyncSession,
    table: type[WorkQueue],
    due: Select[Any],
    lease: timedelta,
    *returning: InstrumentedAttribute[Any],
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The `due` ids of `table` (selected FOR UPDATE SKIP LOCKED, so other workers' rows are
    skipped, never waited for) taken by this worker for `lease`: "sending", one more attempt."""
    rows = await session.execute(
        update(table)
        .where(table.id.in_(due.scalar_subquery()))
        .values(state="sending", attempts=table.attempts + 1, locked_until=func.now() + lease)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    )
    return rows.all()
