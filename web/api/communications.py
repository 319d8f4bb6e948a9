from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status

from crm_core.communications import repository, service
from crm_core.communications.schemas import CommunicationOut, NoteCreate
from crm_core.errors import Forbidden
from crm_core.inputs import Id
from crm_core.outputs import Page as Listing
from crm_core.policy import may_see_user
from web.deps import CurrentUser, Session, container

router = APIRouter(prefix="/api", tags=["communications"])

# response_model_exclude_unset: CommunicationOut's keys of one kind (a call's, an inbound
# email's) stay absent on the others, as the pages have always received them

Kind = Literal["call", "sms", "email", "note"]


class Page:
    """The filters and page every timeline takes (newest first)."""

    def __init__(
        self,
        kind: Kind | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> None:
        self.kind, self.limit, self.offset = kind, limit, offset


PageQuery = Annotated[Page, Depends()]


async def _timeline(
    session: Session,
    page: Page,
    *,
    client_id: Id | None = None,
    deal_id: Id | None = None,
    user_id: Id | None = None,
) -> Listing[CommunicationOut]:
    rows, total = await repository.timeline(
        session,
        client_id=client_id,
        deal_id=deal_id,
        kind=page.kind,
        user_id=user_id,
        limit=page.limit,
        offset=page.offset,
    )
    items = [CommunicationOut.from_row(c) for c in rows]
    return Listing(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/communications", response_model_exclude_unset=True)
async def list_communications(
    session: Session,
    user: CurrentUser,
    page: PageQuery,
    client_id: Id | None = None,
    deal_id: Id | None = None,
    user_id: Id | None = None,
) -> Listing[CommunicationOut]:
    """Every kind or one (`kind=call|sms|email|note`), newest first; `items` holds the page."""
    if user_id is not None and not may_see_user(user, user_id):
        # every card's timeline is open to all, but one colleague's work is a report of them
        raise Forbidden(
            "only supervisors list another user's communications", code="supervisors_only"
        )
    return await _timeline(session, page, client_id=client_id, deal_id=deal_id, user_id=user_id)


@router.get("/clients/{client_id}/communications", response_model_exclude_unset=True)
async def client_timeline(
    client_id: Id, session: Session, user: CurrentUser, page: PageQuery
) -> Listing[CommunicationOut]:
    return await _timeline(session, page, client_id=client_id)


@router.get("/deals/{deal_id}/communications", response_model_exclude_unset=True)
async def deal_timeline(
    deal_id: Id, session: Session, user: CurrentUser, page: PageQuery
) -> Listing[CommunicationOut]:
    return await _timeline(session, page, deal_id=deal_id)


@router.post("/notes", status_code=status.HTTP_201_CREATED, response_model_exclude_unset=True)
async def add_note(
    request: Request, data: NoteCreate, session: Session, user: CurrentUser
) -> CommunicationOut:
    core = container(request).settings.core
    return CommunicationOut.from_row(
        await service.add_note(
            session,
            data,
            actor=user,
            region=core.phone_default_region,
            locale=core.default_locale,
        )
    )
