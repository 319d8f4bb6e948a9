from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from crm_core.inputs import Patch, Text
from crm_core.outputs import RowOut
from crm_core.texts import LOCALES, Locale
from crm_core.users.models import Role


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


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


class UserPublic(RowOut):
    """What every signed-in user may know of a colleague: who, and which phone rings them."""

    id: int
    full_name: str
    extension: str | None


class UserOut(RowOut):
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

    @field_validator("locale", mode="before")
    @classmethod
    def _known_locale(cls, value: object) -> object:
        # a locale the pages have no catalogue for reads as none set (the company's default)
        return value if value in LOCALES else None
