from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import Conflict, NotFound
from crm_core.users.models import User
from crm_core.users.schemas import UserCreate, UserUpdate
from crm_core.users.security import hash_password, verify_password


async def create_user(session: AsyncSession, data: UserCreate) -> User:
    user = User(
        login=data.login,
        password_hash=hash_password(data.password),
        role=data.role.value,
        full_name=data.full_name or data.login,
        extension=data.extension,
        email=data.email,
        timezone=data.timezone,
        is_active=True,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"login {data.login!r} or extension {data.extension!r} is already taken"
        ) from None
    return user


async def update_user(session: AsyncSession, user_id: int, data: UserUpdate) -> User:
    user = await get_user(session, user_id)
    fields = data.model_dump(exclude_unset=True)
    if "password" in fields:
        password = fields.pop("password")
        if password:
            user.password_hash = hash_password(password)
    if "role" in fields and fields["role"] is not None:
        fields["role"] = fields["role"].value
    for key, value in fields.items():
        setattr(user, key, value)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("extension is already taken") from None
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.id))).all())


async def authenticate(session: AsyncSession, login: str, password: str) -> User | None:
    user = await session.scalar(select(User).where(User.login == login))
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None
    return user


async def users_by_extension(session: AsyncSession, extensions: list[str]) -> dict[str, User]:
    """The users behind these phone extensions, by extension."""
    if not extensions:
        return {}
    rows = await session.scalars(select(User).where(User.extension.in_(extensions)))
    return {u.extension: u for u in rows if u.extension}
