from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from crm_core.communications.models import Communication
from crm_core.inputs import Id, Text
from crm_core.outputs import IsoDatetime


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


class RecordingRef(BaseModel):
    """What a page needs to offer a player: where to ask for its link, whether it holds audio."""

    link: str
    empty: bool  # never answered: the file holds no audio

    @classmethod
    def of(cls, communication_id: int, rec: Any) -> RecordingRef | None:
        if not isinstance(rec, dict) or not rec.get("file"):
            return None
        return cls(
            link=f"/api/calls/{communication_id}/recording/link", empty=bool(rec.get("empty"))
        )


class CommunicationOut(BaseModel):
    """One entry of a timeline. Inbound email adds `sender_verified`; calls add the fields from
    `direction_name` down (absent, not null, on other kinds)."""

    id: int
    kind: str
    direction: str
    status: str
    phone: str | None
    email: str | None
    client_id: int
    deal_id: int
    user_id: int | None
    external_id: str | None
    occurred_at: IsoDatetime | None
    answered_at: IsoDatetime | None
    ended_at: IsoDatetime | None
    subject: str | None
    body: str | None
    extra: dict[str, Any]
    # inbound email only. None: received before senders were checked; False: the From may be
    # anyone's
    sender_verified: bool | None = None
    # calls only
    direction_name: Literal["inbound", "outbound"] | None = None
    missed: bool | None = None
    agent_extension: str | None = None
    agents_rung: list[str] | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    transfers: list[dict[str, Any]] | None = None
    legs: list[dict[str, Any]] | None = None
    hung_up_by: str | None = None
    recording: RecordingRef | None = None
    hold_seconds: int | float | None = None

    @classmethod
    def from_row(cls, c: Communication) -> CommunicationOut:
        extra = c.extra or {}
        fields: dict[str, Any] = {}
        if c.kind == "email" and c.direction == "in":
            auth = extra.get("sender_auth")
            fields["sender_verified"] = (
                bool(auth.get("verified")) if isinstance(auth, dict) else None
            )
        if c.kind == "call":
            fields.update(
                direction_name="inbound" if c.direction == "in" else "outbound",
                missed=bool(extra.get("missed", False)),
                agent_extension=c.agent_extension,
                agents_rung=list(extra.get("agents_rung", [])),
                ring_seconds=c.ring_seconds,
                talk_seconds=c.talk_seconds,
                transfers=list(extra.get("transfers", [])),
                legs=list(extra.get("legs", [])),
                hung_up_by=extra.get("hung_up_by"),
                recording=RecordingRef.of(c.id, extra.get("recording")),
                hold_seconds=extra.get("hold_s"),
            )
        return cls(
            id=c.id,
            kind=c.kind,
            direction=c.direction,
            status=c.status,
            phone=c.phone,
            email=c.email,
            client_id=c.client_id,
            deal_id=c.deal_id,
            user_id=c.user_id,
            external_id=c.external_id,
            occurred_at=c.occurred_at,
            answered_at=c.answered_at,
            ended_at=c.ended_at,
            subject=c.subject,
            body=c.body,
            extra=extra,
            **fields,
        )
