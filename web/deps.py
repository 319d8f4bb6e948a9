"""Request-scoped dependencies: the unit of work, the current user, role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import unit_of_work
from crm_core.policy import STAFF_ROLES
from crm_core.users.models import User
from crm_core.users.sessions import SignedIn, signed_in
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

NO_TOKEN = "not authenticated: send a bearer token from POST /api/auth/token"
BAD_TOKEN = "invalid, expired or signed-out token"


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def signin_from_token(session: AsyncSession, token: str | None) -> SignedIn:
    """The live session behind a bearer token (one indexed query), or 401."""
    if not token:
        raise unauthorized(NO_TOKEN)
    found = await signed_in(session, token)
    if found is None:
        raise unauthorized(BAD_TOKEN)
    return found


async def user_from_token(c: Container, session: AsyncSession, token: str | None) -> User:
    return (await signin_from_token(session, token)).user


async def current_signin(
    session: Session, token: Annotated[str | None, Depends(oauth2)]
) -> SignedIn:
    return await signin_from_token(session, token)


CurrentSignIn = Annotated[SignedIn, Depends(current_signin)]


async def current_user(signin: CurrentSignIn) -> User:
    return signin.user


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
