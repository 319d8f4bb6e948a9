"""Column helpers shared by the domain models."""

from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import DateTime, Dialect, func
from sqlalchemy.orm import mapped_column
from sqlalchemy.types import TypeDecorator

intpk = Annotated[int, mapped_column(primary_key=True)]
created_at = Annotated[
    datetime, mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class FiniteDateTime(TypeDecorator[datetime]):
    """A timestamptz column read back as None when it holds +-infinity.

    asyncpg returns the infinities as naive datetime.max/min, which no aware datetime compares
    with: one such row (typed in by hand, or stored before input was checked) would fail every
    list, card and pop that reads it. An unknown moment is what it honestly is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime) or value.tzinfo is None:
            return None
        return value
