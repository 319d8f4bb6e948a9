"""Presence in and out of the API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_core.outputs import IsoDatetime


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # wrap-up is started by a call; "available" ends it early
    state: Literal["available", "paused", "dnd"]
    # for paused: a reason of the list (its code or name); ignored otherwise
    reason: str | None = Field(default=None, max_length=100)


class PresenceOut(BaseModel):
    user_id: int
    full_name: str
    extension: str | None
    state: str  # available | paused | dnd | wrapup
    reason: str | None
    since: IsoDatetime | None  # None: never set
    until: IsoDatetime | None  # wrap-up's end
    seconds_in_state: float | None  # None: never set


class PauseReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=100)
    position: int | None = Field(default=None, ge=0, le=1000)
    is_active: bool | None = None


class PauseReasonPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    position: int | None = Field(default=None, ge=0, le=1000)
    is_active: bool | None = None


class PauseReasonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    position: int
    is_active: bool
