from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from crm_core.clients import repository, service
from crm_core.clients.schemas import ClientCreate, ClientOut, ClientUpdate
from crm_core.errors import Forbidden, Invalid
from crm_core.inputs import Id, Text
from crm_core.outputs import Page
from crm_core.phones import InvalidPhone, normalize_phone
from crm_core.policy import is_staff, may_assign_to
from web.deps import CurrentUser, Session, Staff, container

router = APIRouter(prefix="/api/clients", tags=["clients"])


def _region(request: Request) -> str:
    return container(request).settings.core.phone_default_region


@router.get("")
async def search_clients(
    request: Request,
    session: Session,
    user: CurrentUser,
    q: Annotated[Text | None, Query(max_length=200, description="name or company")] = None,
    phone: Annotated[Text | None, Query(max_length=64, description="any written form")] = None,
    responsible_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ClientOut]:
    e164 = None
    if phone is not None:
        try:
            e164 = normalize_phone(phone, _region(request))
        except InvalidPhone as exc:
            raise Invalid(str(exc), code="phone.invalid") from None
    rows, total = await repository.search(
        session, text=q, phone_e164=e164, responsible_id=responsible_id, limit=limit, offset=offset
    )
    items = [ClientOut.from_row(c) for c in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_client(
    request: Request, data: ClientCreate, session: Session, user: CurrentUser
) -> ClientOut:
    if not may_assign_to(user, data.responsible_id):
        raise Forbidden("only supervisors create clients for someone else", code="client.not_yours")
    if data.responsible_id is None and user.role == "manager":
        data.responsible_id = user.id
    client = await service.create_client(session, data, region=_region(request))
    return ClientOut.from_row(client)


@router.get("/{client_id}")
async def get_client(client_id: Id, session: Session, user: CurrentUser) -> ClientOut:
    return ClientOut.from_row(await service.get_card(session, client_id))


@router.patch("/{client_id}")
async def update_client(
    request: Request, client_id: Id, data: ClientUpdate, session: Session, user: CurrentUser
) -> ClientOut:
    # every role edits cards (an operator fills in the card of a new caller); reassigning is staff's
    if "responsible_id" in data.model_fields_set and not is_staff(user):
        card = await service.get_card(session, client_id)
        if data.responsible_id != card.responsible_id:
            raise Forbidden(
                "only supervisors reassign a client's responsible manager",
                code="client.not_yours",
            )
    client = await service.update_client(session, client_id, data, region=_region(request))
    return ClientOut.from_row(client)


@router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(client_id: Id, session: Session, staff: Staff) -> None:
    await session.delete(await service.get_card(session, client_id))
