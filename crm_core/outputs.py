"""Shared types for everything sent out: moments and times as the service has always written
them, and the page of a list.

Response schemas are built from rows with `from_row`; these types keep the JSON the pages read
byte for byte what it was when handlers wrote `value.isoformat()` themselves (pydantic would
write UTC as `Z`, a page comparing strings or a test asserting one would see the change).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer

# `isoformat()`: "+00:00" for UTC, as before (pydantic's own form would be "Z")
IsoDatetime = Annotated[
    datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json")
]
IsoTime = Annotated[
    time, PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json")
]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: `items`, and the `total` matching rows for the pager."""

    items: list[T]
    total: int
    limit: int
    offset: int


class RowOut(BaseModel):
    """A response whose fields are the row's attributes of the same names."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_row(cls, row: object) -> Self:
        return cls.model_validate(row)
