from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from crm_core.inputs import Id, Moment, Patch, Text
from crm_core.outputs import IsoDatetime
from crm_core.tasks.models import Task


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


class TaskOut(BaseModel):
    id: int
    title: str
    description: str
    kind: str
    due_at: IsoDatetime | None
    assignee_id: int | None
    client_id: int | None
    deal_id: int | None
    communication_id: int | None
    done: bool
    done_at: IsoDatetime | None
    overdue: bool  # open and past due at `now`

    @classmethod
    def from_row(cls, t: Task, now: datetime | None = None) -> TaskOut:
        return cls(
            id=t.id,
            title=t.title,
            description=t.description,
            kind=t.kind,
            due_at=t.due_at,
            assignee_id=t.assignee_id,
            client_id=t.client_id,
            deal_id=t.deal_id,
            communication_id=t.communication_id,
            done=t.done,
            done_at=t.done_at,
            overdue=bool(now and not t.done and t.due_at and t.due_at < now),
        )
