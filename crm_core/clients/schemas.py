from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class PhoneIn(BaseModel):
    number: str = Field(min_length=1, max_length=64)
    label: str | None = Field(default=None, max_length=32)


class ContactIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    position: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254, pattern=_EMAIL)


def _phones(value: object) -> object:
    # accept plain strings as well as {"number": ..., "label": ...}
    if isinstance(value, list):
        return [{"number": v} if isinstance(v, str) else v for v in value]
    return value


class ClientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["person", "company"] = "person"
    company: str | None = Field(default=None, max_length=200)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    emails: list[str] = Field(default_factory=list, max_length=20)
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)
    lead_source: str | None = Field(default=None, max_length=100)
    responsible_id: int | None = None
    readiness: int = Field(default=0, ge=0, le=10)
    notes: str = Field(default="", max_length=20000)

    _p = field_validator("phones", mode="before")(_phones)

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        import re

        for email in value:
            if not re.match(_EMAIL, email):
                raise ValueError(f"{email!r} is not an email address")
        return [e.strip().lower() for e in value]


class ClientUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["person", "company"] | None = None
    company: str | None = Field(default=None, max_length=200)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    emails: list[str] | None = Field(default=None, max_length=20)
    contacts: list[ContactIn] | None = Field(default=None, max_length=50)
    lead_source: str | None = Field(default=None, max_length=100)
    responsible_id: int | None = None
    readiness: int | None = Field(default=None, ge=0, le=10)
    notes: str | None = Field(default=None, max_length=20000)

    _p = field_validator("phones", mode="before")(_phones)
    _e = field_validator("emails")(ClientCreate._emails.__func__)  # type: ignore[attr-defined]
