from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from crm_core.inputs import Patch, Text
from crm_core.users.models import Role, User


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


# The languages the pages, messages and e-mails are written in.
Locale = Literal["ru", "en"]


class UserCreate(BaseModel):
    login: Text = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    password: Text = Field(min_length=4, max_length=200)
    role: Role
    full_name: Text = Field(default="", max_length=200)
    extension: Text | None = Field(default=None, pattern=r"^\d{2,6}$")
    email: Text | None = Field(default=None, max_length=254)
    timezone: Text = "Europe/Moscow"
    locale: Locale | None = None

    _tz = field_validator("timezone")(_check_tz)


class UserUpdate(Patch):
    nullable = frozenset({"password", "extension", "email", "locale"})

    password: Text | None = Field(default=None, min_length=4, max_length=200)
    role: Role | None = None
    full_name: Text | None = Field(default=None, max_length=200)
    extension: Text | None = Field(default=None, pattern=r"^\d{2,6}$")
    email: Text | None = Field(default=None, max_length=254)
    timezone: Text | None = None
    locale: Locale | None = None
    is_active: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_tz(value)


class UserPublic(BaseModel):
    """What every signed-in user may know of a colleague: who, and which phone rings them."""

    id: int
    full_name: str
    extension: str | None

    @classmethod
    def from_row(cls, u: User) -> UserPublic:
        return cls(id=u.id, full_name=u.full_name, extension=u.extension)


class UserOut(BaseModel):
    """A user as the user, a supervisor or an admin sees them."""

    id: int
    login: str
    role: Role
    full_name: str
    extension: str | None
    email: str | None
    timezone: str
    locale: Locale | None
    is_active: bool

    @classmethod
    def from_row(cls, u: User) -> UserOut:
        return cls(
            id=u.id,
            login=u.login,
            role=u.role,
            full_name=u.full_name,
            extension=u.extension,
            email=u.email,
            timezone=u.timezone,
            locale="ru" if u.locale == "ru" else "en" if u.locale == "en" else None,
            is_active=u.is_active,
        )
