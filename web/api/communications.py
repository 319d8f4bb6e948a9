from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status

from crm_core.communications import repository, service
from crm_core.communications.schemas import NoteCreate
from web import serializers
from web.deps import CurrentUser, Session, container

router = APIRouter(prefix="/api", tags=["communications"])

Kind = Literal["call", "sms", "email", "note"]


async def _timeline(
    session: Session,
    *,
    client_id: int | None,
    deal_id: int | None,
    kind: Kind | None,
    user_id: int | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    rows, total = await repository.timeline(
        session,
        client_id=client_id,
        deal_id=deal_id,
        kind=kind,
        user_id=user_id,
        limit=limit,
        offset=offset,
    )
    return serializers.page([serializers.communication(c) for c in rows], total, limit, offset)


@router.get("/communications")
async def list_communications(
    session: Session,
    user: CurrentUser,
    kind: Kind | None = None,
    client_id: int | None = None,
    deal_id: int | None = None,
    user_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Newest first; `items` holds the page."""
    return await _timeline(
        session,
        client_id=client_id,
        deal_id=deal_id,
        kind=kind,
        user_id=user_id,
        limit=limit,
        offset=offset,
    )


@router.get("/clients/{client_id}/communications")
async def client_timeline(
    client_id: int,
    session: Session,
    user: CurrentUser,
    kind: Kind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    return await _timeline(
        session,
        client_id=client_id,
        deal_id=None,
        kind=kind,
        user_id=None,
        limit=limit,
        offset=offset,
    )


@router.get("/deals/{deal_id}/communications")
async def deal_timeline(
    deal_id: int,
    session: Session,
    user: CurrentUser,
    kind: Kind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    return await _timeline(
        session,
        client_id=None,
        deal_id=deal_id,
        kind=kind,
        user_id=None,
        limit=limit,
        offset=offset,
    )


@router.post("/notes", status_code=status.HTTP_201_CREATED)
async def add_note(
    request: Request, data: NoteCreate, session: Session, user: CurrentUser
) -> dict[str, Any]:
    region = container(request).settings.core.phone_default_region
    return serializers.communication(
        await service.add_note(session, data, actor=user, region=region)
    )
