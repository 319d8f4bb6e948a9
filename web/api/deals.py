from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from crm_core.deals import repository, service
from crm_core.deals.schemas import DealCreate, DealUpdate, StageMove
from crm_core.errors import Forbidden
from crm_core.inputs import Id
from crm_core.policy import is_staff
from web import serializers
from web.deps import CurrentUser, Session

router = APIRouter(prefix="/api", tags=["deals"])


@router.get("/stages")
async def list_stages(session: Session, user: CurrentUser) -> list[dict[str, Any]]:
    return [serializers.stage(s) for s in await repository.stages(session)]


@router.get("/deals")
async def list_deals(
    session: Session,
    user: CurrentUser,
    stage_id: Id | None = None,
    client_id: Id | None = None,
    responsible_id: Id | None = None,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    rows = await repository.list_deals(
        session,
        stage_id=stage_id,
        client_id=client_id,
        responsible_id=responsible_id,
        open_only=open_only,
        limit=limit,
        offset=offset,
    )
    return [serializers.deal(d) for d in rows]


@router.post("/deals", status_code=status.HTTP_201_CREATED)
async def create_deal(data: DealCreate, session: Session, user: CurrentUser) -> dict[str, Any]:
    if data.responsible_id not in (None, user.id) and not is_staff(user):
        raise Forbidden("only supervisors create deals for someone else")
    return serializers.deal(await service.create_deal(session, data, actor=user))


@router.get("/deals/{deal_id}")
async def get_deal(deal_id: Id, session: Session, user: CurrentUser) -> dict[str, Any]:
    deal = await service.get_deal(session, deal_id)
    out = serializers.deal(deal)
    out["moves"] = [serializers.stage_move(m) for m in await repository.moves_of(session, deal_id)]
    return out


@router.patch("/deals/{deal_id}")
async def update_deal(
    deal_id: Id, data: DealUpdate, session: Session, user: CurrentUser
) -> dict[str, Any]:
    if "responsible_id" in data.model_fields_set and not is_staff(user):
        raise Forbidden("only supervisors reassign deals")
    return serializers.deal(await service.update_deal(session, deal_id, data, actor=user))


@router.post("/deals/{deal_id}/stage")
async def move_stage(
    deal_id: Id, move: StageMove, session: Session, user: CurrentUser
) -> dict[str, Any]:
    return serializers.deal(await service.move_stage(session, deal_id, move, actor=user))
