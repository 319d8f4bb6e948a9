"""Call recordings: a signed link for the player, and the audio itself (with HTTP ranges).

The browser's <audio> element fetches its `src` with no Authorization header, so a page first
asks `POST …/recording/link` (bearer auth, access checked) for a URL carrying a short-lived token
tied to that user and that call; `GET …/recording` takes either. Access is checked on every
request, so a link stops working when its user loses the right to hear the call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal
from crm_core.errors import Forbidden, NotFound
from crm_core.inputs import Id
from crm_core.policy import may_hear_call
from crm_core.users.models import User
from crm_core.users.sessions import session_alive
from web.auth import decode_recording_token, issue_recording_token
from web.deps import CurrentSignIn, Session, container, oauth2, user_from_token
from web.recording_files import Recording, locate

router = APIRouter(prefix="/api/calls", tags=["recordings"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "the user may not hear this call"},
    404: {"description": "no such call, it has no recording, or the file is missing"},
}


class RecordingLink(BaseModel):
    url: str  # relative to the service; works without headers until expires_at
    expires_at: datetime
    media_type: str
    empty: bool  # the call was never answered: the file holds no audio


def _recording_of(comm: Communication) -> dict[str, Any]:
    rec = (comm.extra or {}).get("recording")
    if not isinstance(rec, dict) or not rec.get("file"):
        raise NotFound(f"call {comm.id} has no recording", code="recording.none")
    return rec


async def _audible_call(session: AsyncSession, user: User, communication_id: int) -> Communication:
    """The call, once `user` may hear it (NotFound / Forbidden otherwise)."""
    comm = await session.get(Communication, communication_id)
    if comm is None or comm.kind != "call":
        raise NotFound(f"call {communication_id} not found")
    extra = comm.extra or {}
    extensions = {comm.agent_extension, extra.get("answered_by"), extra.get("final_agent")}
    extensions |= {leg.get("extension") for leg in extra.get("legs", [])}
    client = await session.get(Client, comm.client_id)
    deal = await session.get(Deal, comm.deal_id)
    owners = {client.responsible_id if client else None, deal.responsible_id if deal else None}
    allowed = may_hear_call(
        user,
        call_user_id=comm.user_id,
        agent_extensions={e for e in extensions if isinstance(e, str) and e},
        owner_ids=owners - {None},
    )
    if not allowed:
        raise Forbidden(
            f"you may not hear call {communication_id}: not your call or client",
            code="recording.not_yours",
        )
    return comm


@router.post("/{communication_id}/recording/link", responses=_ERRORS)
async def recording_link(
    communication_id: Id, request: Request, session: Session, signin: CurrentSignIn
) -> RecordingLink:
    """A URL for a player's `src`, valid for RECORDING_LINK_TTL_SECONDS; 404 when the file is
    missing (checked now, so a page can say so instead of showing a dead player)."""
    settings = container(request).settings.web
    user = signin.user
    comm = await _audible_call(session, user, communication_id)
    rec = _recording_of(comm)
    found = locate(str(rec["file"]), settings)
    ttl = settings.recording_link_ttl_seconds
    token = issue_recording_token(user.id, signin.session_id, comm.id, settings.secret_key, ttl)
    return RecordingLink(
        url=f"/api/calls/{comm.id}/recording?token={token}",
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        media_type=found.media_type,
        empty=bool(rec.get("empty")),
    )


async def _listener(
    request: Request,
    session: Session,
    communication_id: Id,
    bearer: Annotated[str | None, Depends(oauth2)],
    token: str | None = None,
) -> User:
    """The user behind a bearer token, or behind a recording token issued for this call."""
    c = container(request)
    if token is None:
        return await user_from_token(c, session, bearer)
    try:
        user_id, session_id, call_id = decode_recording_token(token, c.settings.web.secret_key)
    except jwt.PyJWTError:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or expired link") from None
    if call_id != communication_id:
        raise Forbidden("this link is for another call")
    # the link lives no longer than the sign-in it came from (sign-out, new password, disabled)
    user = await session.get(User, user_id)
    if user is None or not await session_alive(session, session_id, user_id):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the link's sign-in has ended")
    return user


@router.get(
    "/{communication_id}/recording",
    response_class=FileResponse,
    responses={
        **_ERRORS,
        206: {"description": "the byte range asked for (`Range: bytes=…`)"},
        307: {"description": "RECORDINGS_URL_TEMPLATE: the recording on the PBX"},
        416: {"description": "the range lies outside the file"},
    },
)
async def recording(
    communication_id: Id,
    request: Request,
    session: Session,
    user: Annotated[User, Depends(_listener)],
) -> Response:
    """The recording's audio: `Accept-Ranges: bytes`, `Range` answered with 206 (the browser
    seeks this way), 416 outside the file; a remote PBX's recording is a redirect."""
    comm = await _audible_call(session, user, communication_id)
    found: Recording = locate(str(_recording_of(comm)["file"]), container(request).settings.web)
    if found.url is not None:
        return RedirectResponse(found.url, status.HTTP_307_TEMPORARY_REDIRECT)
    assert found.path is not None
    # Starlette's FileResponse answers Range/If-Range itself (206, 416, multipart ranges)
    return FileResponse(
        found.path,
        media_type=found.media_type,
        filename=found.path.name,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=300"},
    )
