from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from crm_core.users.schemas import UserOut
from crm_core.users.sessions import end_session
from web.deps import CurrentSignIn, CurrentUser, Session, container
from web.signin import sign_in

router = APIRouter(prefix="/api/auth", tags=["auth"])


class TokenOut(BaseModel):
    """OAuth2's password-flow answer (Swagger UI's Authorize reads it), with the user signed in."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    user: UserOut


def client_address(request: Request) -> str:
    # behind a load balancer uvicorn puts the forwarded client here (FORWARDED_ALLOW_IPS)
    return request.client.host if request.client else "unknown"


@router.post(
    "/token",
    responses={
        401: {"description": "wrong login or password"},
        429: {"description": "too many attempts for this login or address (Retry-After)"},
    },
)
async def token(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenOut:
    """Sign in: a bearer token naming a new server-side session (TOKEN_TTL_MINUTES)."""
    address = client_address(request)
    granted = await sign_in(container(request), form.username, form.password, address)
    return TokenOut(access_token=granted.token, user=UserOut.from_row(granted.user))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(session: Session, signin: CurrentSignIn) -> Response:
    """Sign out: this token stops working on every instance, its websockets are closed."""
    await end_session(session, signin.session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    return UserOut.from_row(user)
