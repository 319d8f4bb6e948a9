from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from crm_core.users.service import authenticate
from web import serializers
from web.auth import issue_token
from web.deps import CurrentUser, Session, container

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/token")
async def token(
    request: Request, session: Session, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> dict[str, Any]:
    user = await authenticate(session, form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong login or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    web = container(request).settings.web
    return {
        "access_token": issue_token(user.id, user.role, web.secret_key, web.token_ttl_minutes),
        "token_type": "bearer",
        "user": serializers.user(user),
    }


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, Any]:
    return serializers.user(user)
