from __future__ import annotations

import enum

from sqlalchemy import Boolean, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import created_at, intpk


class Role(enum.StrEnum):
    operator = "operator"
    manager = "manager"
    supervisor = "supervisor"
    admin = "admin"


ROLES = tuple(r.value for r in Role)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    id: Mapped[intpk]
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    extension: Mapped[str | None] = mapped_column(String(16), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]

    def __repr__(self) -> str:
        return f"User({self.id}, {self.login!r}, {self.role})"


__all__ = ["ROLES", "Role", "User"]
