from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from crm_core.inputs import Id, Moment, Patch, Text
from crm_core.outputs import IsoDatetime
from crm_core.tasks.models import Task

ContactType = Literal["call", "meeting", "email", "sms", "visit", "other"]
# today: open, due today in the viewer's zone; overdue: open, past due; upcoming: open, due after
# today or with no due time; done: closed
TaskState = Literal["today", "overdue", "upcoming", "done"]


class TaskCreate(BaseModel):
    title: Text = Field(min_length=1, max_length=300)
    description: Text = Field(default="", max_length=20000)
    kind: Literal["callback", "meeting", "other"] = "other"
    contact_type: ContactType | None = None
    goal: Text | None = Field(default=None, max_length=2000)
    due_at: Moment | None = None
    remind_at: Moment | None = Field(default=None, description="default: the due time")
    assignee_id: Id | None = None
    client_id: Id | None = None
    deal_id: Id | None = None


class TaskUpdate(Patch):
    nullable = frozenset({"due_at", "remind_at", "assignee_id", "contact_type", "goal"})

    title: Text | None = Field(default=None, min_length=1, max_length=300)
    description: Text | None = Field(default=None, max_length=20000)
    contact_type: ContactType | None = None
    goal: Text | None = Field(default=None, max_length=2000)
    due_at: Moment | None = Field(
        default=None, description="rescheduling re-arms the reminder (it keeps its lead time)"
    )
    remind_at: Moment | None = None
    assignee_id: Id | None = None
    done: bool | None = None


class Reschedule(BaseModel):
    due_at: Moment
    remind_at: Moment | None = Field(default=None, description="default: keep the lead time")


class TaskOut(BaseModel):
    id: int
    title: str
    description: str
    kind: str
    contact_type: str | None
    goal: str | None
    due_at: IsoDatetime | None
    remind_at: IsoDatetime | None
    reminded_at: IsoDatetime | None
    assignee_id: int | None
    client_id: int | None
    deal_id: int | None
    communication_id: int | None
    tries: int
    last_missed_at: IsoDatetime | None
    closed_by_communication_id: int | None
    created_by_id: int | None
    done: bool
    done_at: IsoDatetime | None
    overdue: bool  # open and past due at `now`
    client_name: str | None = None

    @classmethod
    def from_row(
        cls, t: Task, now: datetime | None = None, client_name: str | None = None
    ) -> TaskOut:
        return cls(
            client_name=client_name,
            id=t.id,
            title=t.title,
            description=t.description,
            kind=t.kind,
            contact_type=t.contact_type,
            goal=t.goal,
            due_at=t.due_at,
            remind_at=t.remind_at,
            reminded_at=t.reminded_at,
            assignee_id=t.assignee_id,
            client_id=t.client_id,
            deal_id=t.deal_id,
            communication_id=t.communication_id,
            tries=t.tries or 0,
            last_missed_at=t.last_missed_at,
            closed_by_communication_id=t.closed_by_communication_id,
            created_by_id=t.created_by_id,
            done=t.done,
            done_at=t.done_at,
            overdue=bool(now and not t.done and t.due_at and t.due_at < now),
        )
