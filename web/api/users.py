"""Users: everyone sees colleagues by name and extension; admins create, change, deactivate
users and reset their passwords (which ends all their sign-ins)."""

from __future__ import annotations

import secrets
from typing import Literal

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from crm_core.errors import Invalid
from crm_core.inputs import Id, Text
from crm_core.policy import may_see_user
from crm_core.users import service
from crm_core.users.models import User
from crm_core.users.schemas import UserCreate, UserOut, UserPublic, UserUpdate
from web.deps import Admin, CurrentUser, Session, container
from web.user_defaults import give_default_schedule, has_schedule

router = APIRouter(prefix="/api/users", tags=["users"])

NEVER_ROUTED = "no schedule: never routed"


def _shown(viewer: User, u: User) -> UserOut | UserPublic:
    # operators and managers pick colleagues by name and extension (transfers, the schedules
    # page); logins, roles and e-mail addresses of others are the supervisors' business
    return UserOut.from_row(u) if may_see_user(viewer, u.id) else UserPublic.from_row(u)


class NewUser(UserCreate):
    schedule: Literal["default", "none"] = Field(
        default="default",
        description="default: a user with an extension gets DEFAULT_SCHEDULE's weekly hours "
        "(without a schedule the router never rings them); none: no hours yet",
    )


class UserRow(UserOut):
    """A user on the admins' list: with whether calls can reach them."""

    has_schedule: bool
    # why the router will never ring this user, when it never will ("no schedule: never routed")
    routing_note: str | None


class PasswordReset(BaseModel):
    password: Text | None = Field(
        default=None, min_length=4, max_length=200, description="none: one is generated"
    )


class PasswordWasReset(BaseModel):
    user_id: int
    # the generated temporary password, shown this once (null when the admin chose one)
    temporary_password: str | None
    sessions_ended: bool


async def _row(session: Session, u: User) -> UserRow:
    scheduled = await has_schedule(session, u.id)
    never = u.is_active and bool(u.extension) and not scheduled
    return UserRow(
        **UserOut.from_row(u).model_dump(),
        has_schedule=scheduled,
        routing_note=NEVER_ROUTED if never else None,
    )


@router.get("")
async def list_users(session: Session, user: CurrentUser) -> list[UserOut | UserPublic]:
    return [_shown(user, u) for u in await service.list_users(session)]


@router.get("/roster")
async def roster(session: Session, admin: Admin) -> list[UserRow]:
    """Every user, for the admins' users page: with their schedule state."""
    return [await _row(session, u) for u in await service.list_users(session)]


@router.get("/{user_id}")
async def get_user(user_id: Id, session: Session, user: CurrentUser) -> UserOut | UserPublic:
    return _shown(user, await service.get_user(session, user_id))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(data: NewUser, request: Request, session: Session, admin: Admin) -> UserRow:
    """A user with an extension gets DEFAULT_SCHEDULE's hours unless `schedule` is "none"."""
    c = container(request)
    user = await service.create_user(
        session, UserCreate(**data.model_dump(exclude={"schedule"})), c.passwords
    )
    if data.schedule == "default":
        await give_default_schedule(session, user, c.settings.web.default_schedule)
    return await _row(session, user)


@router.patch("/{user_id}")
async def update_user(
    user_id: Id, data: UserUpdate, request: Request, session: Session, admin: Admin
) -> UserOut:
    """A new password or `is_active: false` ends the user's sessions and closes their sockets."""
    if user_id == admin.id and (data.is_active is False or data.role not in (None, "admin")):
        raise Invalid(
            "you cannot deactivate yourself or take away your own admin role",
            code="user.not_yourself",
        )
    passwords = container(request).passwords
    return UserOut.from_row(await service.update_user(session, user_id, data, passwords))


@router.post("/{user_id}/password")
async def reset_password(
    user_id: Id, data: PasswordReset, request: Request, session: Session, admin: Admin
) -> PasswordWasReset:
    """A new password (the one given, or a generated temporary one returned this once); every
    sign-in of the user ends at once, their open pages included."""
    generated = None if data.password else secrets.token_urlsafe(9)
    password = data.password or generated
    await service.update_user(
        session, user_id, UserUpdate(password=password), container(request).passwords
    )
    return PasswordWasReset(user_id=user_id, temporary_password=generated, sessions_ended=True)
