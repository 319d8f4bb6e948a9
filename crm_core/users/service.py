from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import Conflict, NotFound
from crm_core.users.models import User
from crm_core.users.schemas import UserCreate, UserUpdate
from crm_core.users.security import INLINE, PasswordWorkers
from crm_core.users.sessions import end_user_sessions


async def create_user(
    session: AsyncSession, data: UserCreate, passwords: PasswordWorkers = INLINE
) -> User:
    user = User(
        login=data.login,
        password_hash=await passwords.hash(data.password),
        role=data.role.value,
        full_name=data.full_name or data.login,
        extension=data.extension,
        email=data.email,
        timezone=data.timezone,
        locale=data.locale,
        is_active=True,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"login {data.login!r} or extension {data.extension!r} is already taken",
            code="user.taken",
        ) from None
    return user


async def update_user(
    session: AsyncSession, user_id: int, data: UserUpdate, passwords: PasswordWorkers = INLINE
) -> User:
    """Change a user; a new password or a disabled account ends all their sign-ins at once."""
    user = await get_user(session, user_id)
    fields = data.model_dump(exclude_unset=True)
    sign_out = fields.get("is_active") is False
    if "password" in fields:
        password = fields.pop("password")
        if password:
            user.password_hash = await passwords.hash(password)
            sign_out = True
    if "role" in fields and fields["role"] is not None:
        fields["role"] = fields["role"].value
    for key, value in fields.items():
        setattr(user, key, value)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("extension is already taken", code="user.extension_taken") from None
    if sign_out:
        await end_user_sessions(session, user.id)
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user.not_found")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.id))).all())


async def password_hash_of(session: AsyncSession, login: str) -> tuple[int, str] | None:
    """(id, password hash) of the active user with this login; None for any other login.

    Only the lookup: the caller checks the password after releasing the connection, so a
    ~0.3 s argon2 verification never holds one of the pool's few connections.
    """
    row = (
        await session.execute(
            select(User.id, User.password_hash).where(User.login == login, User.is_active)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def users_by_extension(session: AsyncSession, extensions: list[str]) -> dict[str, User]:
    """The users behind these phone extensions, by extension."""
    if not extensions:
        return {}
    rows = await session.scalars(_BY_EXTENSION, {"extensions": extensions})
    return {u.extension: u for u in rows if u.extension}


# Built once (every call's end reads it): a statement built per call costs as much again.
_BY_EXTENSION = select(User).where(User.extension.in_(bindparam("extensions", expanding=True)))
