from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class TaskCreate(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20000)
    kind: Literal["callback", "meeting", "other"] = "other"
    due_at: datetime | None = None
    assignee_id: int | None = None
    client_id: int | None = None
    deal_id: int | None = None


class TaskUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=20000)
    due_at: datetime | None = None
    assignee_id: int | None = None
    done: bool | None = None
