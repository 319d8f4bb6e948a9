from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from crm_core.clients.models import Client
from crm_core.inputs import Id, Patch, Text
from crm_core.outputs import IsoDatetime, RowOut

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class PhoneIn(BaseModel):
    number: Text = Field(min_length=1, max_length=64)
    label: Text | None = Field(default=None, max_length=32)


class ContactIn(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    position: Text | None = Field(default=None, max_length=100)
    phone: Text | None = Field(default=None, max_length=64)
    email: Text | None = Field(default=None, max_length=254, pattern=_EMAIL)


def _phones(value: object) -> object:
    # accept plain strings as well as {"number": ..., "label": ...}
    if isinstance(value, list):
        return [{"number": v} if isinstance(v, str) else v for v in value]
    return value


class ClientCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    kind: Literal["person", "company"] = "person"
    company: Text | None = Field(default=None, max_length=200)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    emails: list[Text] = Field(default_factory=list, max_length=20)
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)
    lead_source: Text | None = Field(default=None, max_length=100)
    responsible_id: Id | None = None
    readiness: int = Field(default=0, ge=0, le=10)
    notes: Text = Field(default="", max_length=20000)

    _p = field_validator("phones", mode="before")(_phones)

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        import re

        for email in value:
            if not re.match(_EMAIL, email):
                raise ValueError(f"{email!r} is not an email address")
        return [e.strip().lower() for e in value]


class ClientUpdate(Patch):
    nullable = frozenset(
        {"company", "lead_source", "responsible_id", "phones", "emails", "contacts"}
    )

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["person", "company"] | None = None
    company: Text | None = Field(default=None, max_length=200)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    emails: list[Text] | None = Field(default=None, max_length=20)
    contacts: list[ContactIn] | None = Field(default=None, max_length=50)
    lead_source: Text | None = Field(default=None, max_length=100)
    responsible_id: Id | None = None
    readiness: int | None = Field(default=None, ge=0, le=10)
    notes: Text | None = Field(default=None, max_length=20000)

    _p = field_validator("phones", mode="before")(_phones)
    _e = field_validator("emails")(ClientCreate._emails.__func__)  # type: ignore[attr-defined]


class PhoneOut(BaseModel):
    number: str  # E.164
    raw: str  # as it was written
    label: str | None


class ContactOut(RowOut):
    name: str
    position: str | None
    phone: str | None
    email: str | None


class ClientOut(BaseModel):
    id: int
    kind: str
    name: str
    company: str | None
    phones: list[PhoneOut]
    emails: list[str]
    contacts: list[ContactOut]
    lead_source: str | None
    responsible_id: int | None
    readiness: int
    notes: str
    created_at: IsoDatetime | None

    @classmethod
    def from_row(cls, c: Client) -> ClientOut:
        return cls(
            id=c.id,
            kind=c.kind,
            name=c.name,
            company=c.company,
            phones=[PhoneOut(number=p.e164, raw=p.raw, label=p.label) for p in c.phones],
            emails=[e.email for e in c.emails],
            contacts=[ContactOut.from_row(p) for p in c.contacts],
            lead_source=c.lead_source,
            responsible_id=c.responsible_id,
            readiness=c.readiness,
            notes=c.notes,
            created_at=c.created_at,
        )
