"""Shared constrained types for everything sent in: text, ids, days and moments.

Request schemas and routes type their fields with these, so poison input (a NUL byte, a lone
surrogate, an id past PostgreSQL's integer, year 1 or 9999, a naive datetime) is refused with a
422 at the edge instead of failing inside PostgreSQL with a 500 or, worse, being stored and then
breaking every later read of the row. Messages that arrive from outside and must never be lost
(inbound SMS and email) go through `sanitize` instead: kept, with the bad characters replaced.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Self

from annotated_types import Interval
from pydantic import AfterValidator, AwareDatetime, BaseModel, model_validator

# PostgreSQL `integer` (every id column): anything larger cannot name a row.
INT32_MAX = 2**31 - 1
# Far beyond any business date, far inside what Python and PostgreSQL both represent in every
# time zone (year 1 shifted by +03:00 is year 0, which Python cannot read back).
EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)

REPLACEMENT = "\ufffd"


def _bad_char(c: str) -> bool:
    # PostgreSQL text cannot hold NUL; UTF-8 cannot encode a lone surrogate
    return c == "\x00" or "\ud800" <= c <= "\udfff"


def check_text(value: str) -> str:
    if any(_bad_char(c) for c in value):
        raise ValueError("text must not contain NUL characters or lone surrogates")
    return value


def sanitize(value: str) -> str:
    """`value` with NUL characters and lone surrogates replaced by U+FFFD: storable as is."""
    if not any(_bad_char(c) for c in value):
        return value
    return "".join(REPLACEMENT if _bad_char(c) else c for c in value)


def sanitize_all(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON-like mapping with `sanitize` applied to every string in it, keys included."""
    cleaned: dict[str, Any] = _sanitize_json(value)
    return cleaned


def _sanitize_json(value: Any) -> Any:
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, dict):
        return {_sanitize_json(k): _sanitize_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize_json(v) for v in value]
    return value


def escape_like(value: str) -> str:
    """`value` for a LIKE pattern with `\\` as the escape: its wildcards match themselves."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_day(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"date must be between {EARLIEST} and {LATEST}")
    return value


def check_moment(value: datetime) -> datetime:
    check_day(value.date())
    return value


Text = Annotated[str, AfterValidator(check_text)]
Id = Annotated[int, Interval(ge=1, le=INT32_MAX)]
Day = Annotated[date, AfterValidator(check_day)]
# with a time zone: a naive datetime means a different moment on every server
Moment = Annotated[AwareDatetime, AfterValidator(check_moment)]


class Patch(BaseModel):
    """A partial update: a field left out is kept, null empties only the fields in `nullable`.

    Without this, `{"amount": null}` reaches a NOT NULL column and fails there (a 500).
    """

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _null_only_where_allowed(self) -> Self:
        bad = sorted(
            n for n in self.model_fields_set if getattr(self, n) is None and n not in self.nullable
        )
        if bad:
            raise ValueError(f"{', '.join(bad)} cannot be null (leave a field out to keep it)")
        return self
