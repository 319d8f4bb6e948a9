from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from crm_core.inputs import Id, Moment, Patch, Text


class TaskCreate(BaseModel):
    title: Text = Field(min_length=1, max_length=300)
    description: Text = Field(default="", max_length=20000)
    kind: Literal["callback", "meeting", "other"] = "other"
    due_at: Moment | None = None
    assignee_id: Id | None = None
    client_id: Id | None = None
    deal_id: Id | None = None


class TaskUpdate(Patch):
    nullable = frozenset({"due_at", "assignee_id"})

    title: Text | None = Field(default=None, min_length=1, max_length=300)
    description: Text | None = Field(default=None, max_length=20000)
    due_at: Moment | None = None
    assignee_id: Id | None = None
    done: bool | None = None
