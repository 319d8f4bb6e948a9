from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from crm_core.texts import Locale
from crm_core.users.models import User
from crm_core.users.schemas import UserOut
from crm_core.users.sessions import end_session
from web.deps import CurrentSignIn, CurrentUser, Session, container
from web.pages_routes import NavPage, nav_for
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


class MeOut(UserOut):
    """The signed-in user, and what their pages need to show things their way."""

    company_timezone: str = Field(description="the company's time zone (DEFAULT_TIMEZONE)")
    default_locale: Locale = Field(description="the language when neither user nor browser says")
    pages: list[NavPage] = Field(description="the pages this user's role may open, in order")


class MeUpdate(BaseModel):
    """What a user may change on their own profile (nothing privileged): their language.
    `null`: no choice, the browser's language decides."""

    model_config = ConfigDict(extra="forbid")

    locale: Locale | None


def _me(request: Request, user: User) -> MeOut:
    core = container(request).settings.core
    return MeOut(
        **UserOut.from_row(user).model_dump(),
        company_timezone=core.default_timezone,
        default_locale=core.default_locale,
        pages=nav_for(user.role),
    )


@router.get("/me")
async def me(request: Request, user: CurrentUser) -> MeOut:
    return _me(request, user)


@router.patch("/me")
async def update_me(request: Request, data: MeUpdate, user: CurrentUser) -> MeOut:
    """The user's own language, kept on their profile (the same unit of work commits it)."""
    user.locale = data.locale
    return _me(request, user)


class LocaleOut(BaseModel):
    default_locale: Locale = Field(
        description="DEFAULT_LOCALE: when the browser's language is neither"
    )


@router.get("/locale")
async def default_locale(request: Request) -> LocaleOut:
    """For the sign-in page (no token yet): the language to fall back on."""
    return LocaleOut(default_locale=container(request).settings.core.default_locale)
