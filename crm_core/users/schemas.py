from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from crm_core.users.models import Role


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class UserCreate(BaseModel):
    login: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    password: str = Field(min_length=4, max_length=200)
    role: Role
    full_name: str = Field(default="", max_length=200)
    extension: str | None = Field(default=None, pattern=r"^\d{2,6}$")
    email: str | None = Field(default=None, max_length=254)
    timezone: str = "Europe/Moscow"

    _tz = field_validator("timezone")(_check_tz)


class UserUpdate(BaseModel):
    password: str | None = Field(default=None, min_length=4, max_length=200)
    role: Role | None = None
    full_name: str | None = Field(default=None, max_length=200)
    extension: str | None = Field(default=None, pattern=r"^\d{2,6}$")
    email: str | None = Field(default=None, max_length=254)
    timezone: str | None = None
    is_active: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_tz(value)
