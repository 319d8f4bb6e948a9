from __future__ import annotations

from fastapi import APIRouter, Request, status

from crm_core.inputs import Id
from crm_core.policy import may_see_user
from crm_core.users import service
from crm_core.users.models import User
from crm_core.users.schemas import UserCreate, UserOut, UserPublic, UserUpdate
from web.deps import Admin, CurrentUser, Session, container

router = APIRouter(prefix="/api/users", tags=["users"])


def _shown(viewer: User, u: User) -> UserOut | UserPublic:
    # operators and managers pick colleagues by name and extension (transfers, the schedules
    # page); logins, roles and e-mail addresses of others are the supervisors' business
    return UserOut.from_row(u) if may_see_user(viewer, u.id) else UserPublic.from_row(u)


@router.get("")
async def list_users(session: Session, user: CurrentUser) -> list[UserOut | UserPublic]:
    return [_shown(user, u) for u in await service.list_users(session)]


@router.get("/{user_id}")
async def get_user(user_id: Id, session: Session, user: CurrentUser) -> UserOut | UserPublic:
    return _shown(user, await service.get_user(session, user_id))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(
    data: UserCreate, request: Request, session: Session, admin: Admin
) -> UserOut:
    passwords = container(request).passwords
    return UserOut.from_row(await service.create_user(session, data, passwords))


@router.patch("/{user_id}")
async def update_user(
    user_id: Id, data: UserUpdate, request: Request, session: Session, admin: Admin
) -> UserOut:
    """A new password or `is_active: false` ends the user's sessions and closes their sockets."""
    passwords = container(request).passwords
    return UserOut.from_row(await service.update_user(session, user_id, data, passwords))
