"""Shared types for everything sent out: moments and times as the service has always written
them, and the page of a list.

Response schemas are built from rows with `from_row`; these types keep the JSON the pages read
byte for byte what it was when handlers wrote `value.isoformat()` themselves (pydantic would
write UTC as `Z`, a page comparing strings or a test asserting one would see the change).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, PlainSerializer

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
