"""Request-scoped dependencies: the unit of work, the current user, role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import unit_of_work
from crm_core.policy import STAFF_ROLES
from crm_core.users.models import User
from web.auth import decode_token
from web.container import Container

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit when the handler returns, roll back when it raises; before the response is sent."""
    c = container(request)
    async with unit_of_work(c.sessions, c.publish) as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session, scope="function")]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def user_from_token(c: Container, session: AsyncSession, token: str | None) -> User:
    if not token:
        raise _unauthorized("not authenticated: send a bearer token from POST /api/auth/token")
    try:
        user_id = decode_token(token, c.settings.web.secret_key)
    except jwt.PyJWTError:
        raise _unauthorized("invalid or expired token") from None
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise _unauthorized("the token's user no longer exists or is disabled")
    return user


async def current_user(
    request: Request, session: Session, token: Annotated[str | None, Depends(oauth2)]
) -> User:
    return await user_from_token(container(request), session, token)


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: str) -> Callable[[User], Coroutine[Any, Any, User]]:
    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {user.role!r} may not do this (allowed: {', '.join(roles)})",
            )
        return user

    return check


Staff = Annotated[User, Depends(require_roles(*STAFF_ROLES))]
Admin = Annotated[User, Depends(require_roles("admin"))]
