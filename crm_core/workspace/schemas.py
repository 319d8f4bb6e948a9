from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from crm_core.inputs import Id, Moment, Text
from crm_core.outputs import IsoDatetime, RowOut


class MissedCallOut(BaseModel):
    """A client's missed calls to act on: their one callback task and how it stands."""

    task_id: int
    client_id: int
    client_name: str
    phone: str | None
    deal_id: int | None
    assignee_id: int | None
    first_missed_at: IsoDatetime
    last_missed_at: IsoDatetime
    tries: int  # missed calls counted on this callback
    due_at: IsoDatetime | None
    done: bool
    done_at: IsoDatetime | None
    called_back: bool  # closed by an answered call with the client
    closed_by_communication_id: int | None
    communication_id: int | None  # the first missed call


class RecentCallOut(BaseModel):
    id: int
    direction: str
    status: str
    missed: bool
    occurred_at: IsoDatetime
    talk_seconds: float | None
    phone: str | None
    client_id: int
    client_name: str
    deal_id: int
    user_id: int | None


class CommentCreate(BaseModel):
    body: Text = Field(min_length=1, max_length=10000)


class CommentOut(BaseModel):
    id: int
    communication_id: int
    user_id: int | None
    user_name: str | None
    body: str
    created_at: IsoDatetime


class MergeInto(BaseModel):
    into_client_id: Id


class MergeOut(BaseModel):
    client_id: int  # the card kept
    merged_client_id: int  # the card that went
    moved: dict[str, int]  # rows moved, by kind


class ResultCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=100)
    kind: str = Field(pattern="^(postponed|refused|offer_sent|sale|wrong_number|other)$")
    position: int = Field(default=0, ge=0, le=1000)
    is_active: bool = True


class ResultUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=100)
    position: int | None = Field(default=None, ge=0, le=1000)
    is_active: bool | None = None


class ResultOut(RowOut):
    id: int
    name: str
    kind: str
    position: int
    is_active: bool


class SetResult(BaseModel):
    result_id: Id
    reason: Text | None = Field(default=None, max_length=2000)
    date: Moment | None = Field(default=None, description="postponed: when to contact again")
    amount: Decimal | None = Field(default=None, ge=0, le=Decimal("999999999999.99"))
    deal_id: Id | None = Field(default=None, description="default: the contact's or client's deal")


class ResultRecordOut(BaseModel):
    id: int
    result_id: int
    kind: str
    client_id: int
    deal_id: int | None
    communication_id: int | None
    task_id: int | None
    user_id: int | None
    reason: str | None
    date: IsoDatetime | None
    amount: str | None
    deal_stage_id: int | None  # where the deal is now
    created_at: IsoDatetime
