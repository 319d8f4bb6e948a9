from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from crm_core.clients.service import choose_phone, get_card
from crm_core.deals.service import ensure_open_deal, get_deal
from crm_core.errors import Invalid
from crm_core.inputs import Id, Text
from crm_core.texts import deal_title
from web.click_to_call import place_call
from web.deps import CurrentUser, Session, container

router = APIRouter(prefix="/api/calls", tags=["calls"])

_background: set[asyncio.Task[None]] = set()


class ClickToCall(BaseModel):
    client_id: Id
    phone: Text | None = Field(default=None, description="one of the card's phones; default first")
    deal_id: Id | None = Field(default=None, description="default: the client's open deal")


class CallPlaced(BaseModel):
    """The Originate is under way: the caller's phone rings first; failures come by websocket."""

    status: Literal["ringing your phone"]
    extension: str  # the caller's phone
    number: str  # the client's, E.164
    deal_id: int  # where the call will be logged


@router.post("/originate", status_code=status.HTTP_202_ACCEPTED)
async def originate(
    request: Request, data: ClickToCall, session: Session, user: CurrentUser
) -> CallPlaced:
    """Ring the caller's own phone, then the client; the call is logged on the deal by AMI."""
    if not user.extension:
        raise Invalid("you have no phone extension to call from", code="call.no_extension")
    c = container(request)
    card = await get_card(session, data.client_id)
    phone = choose_phone(card, data.phone, c.settings.core.phone_default_region)
    if data.deal_id is not None:
        deal = await get_deal(session, data.deal_id)
        if deal.client_id != card.id:
            raise Invalid(f"deal {deal.id} is not client {card.id}'s", code="deal.other_client")
    else:
        deal, _ = await ensure_open_deal(
            session,
            card.id,
            responsible_id=card.responsible_id or user.id,
            title=deal_title(c.settings.core.default_locale, "outbound call", phone),
        )
    # the dialplan dials digits; E.164's plus is the trunk's business
    number = phone.lstrip("+")
    task = asyncio.create_task(
        place_call(c, extension=user.extension, number=number, deal_id=deal.id, user_id=user.id)
    )
    _background.add(task)
    task.add_done_callback(_background.discard)
    return CallPlaced(
        status="ringing your phone", extension=user.extension, number=phone, deal_id=deal.id
    )
