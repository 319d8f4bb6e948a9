from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from crm_core.communications.models import Communication
from crm_core.inputs import Id, Text


@dataclass(slots=True)
class CommunicationIn:
    """One contact with a client, as a channel (PBX, Twilio, SMTP, a person) reports it."""

    kind: str
    direction: str
    status: str
    occurred_at: datetime
    phone: str | None = None  # any written form; stored E.164
    email: str | None = None
    contact_name: str | None = None  # used to name a new card for an unknown number
    client_id: int | None = None
    deal_id: int | None = None
    user_id: int | None = None
    agent_extension: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    subject: str | None = None
    body: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    lead_source: str = "inbound call"


@dataclass(slots=True)
class Logged:
    communication: Communication
    created: bool  # False: the same external id was logged before
    client_created: bool = False
    deal_created: bool = False


class NoteCreate(BaseModel):
    client_id: Id
    deal_id: Id | None = None
    body: Text = Field(min_length=1, max_length=20000)
    subject: Text | None = Field(default=None, max_length=500)
    # a formal result of a call, e.g. "sent offer", "call back later"
    result: Text | None = Field(default=None, max_length=100)
    direction: Literal["in", "out"] = "out"
