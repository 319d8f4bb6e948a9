from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from crm_core.deals import repository, service
from crm_core.deals.schemas import (
    Board,
    DealCreate,
    DealOut,
    DealUpdate,
    DealWithMoves,
    StageMove,
    StageMoveOut,
    StageOut,
)
from crm_core.errors import Forbidden
from crm_core.inputs import Day, Id, Text
from crm_core.policy import is_staff, may_assign_to
from web.deps import CurrentUser, Session

router = APIRouter(prefix="/api", tags=["deals"])


@router.get("/stages")
async def list_stages(session: Session, user: CurrentUser) -> list[StageOut]:
    return [StageOut.from_row(s) for s in await repository.stages(session)]


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
) -> list[DealOut]:
    rows = await repository.list_deals(
        session,
        stage_id=stage_id,
        client_id=client_id,
        responsible_id=responsible_id,
        open_only=open_only,
        limit=limit,
        offset=offset,
    )
    return [DealOut.from_row(d) for d in rows]


@router.post("/deals", status_code=status.HTTP_201_CREATED)
async def create_deal(data: DealCreate, session: Session, user: CurrentUser) -> DealOut:
    if not may_assign_to(user, data.responsible_id):
        raise Forbidden("only supervisors create deals for someone else", code="deal.not_yours")
    return DealOut.from_row(await service.create_deal(session, data, actor=user))


@router.get("/deals/board", response_model=Board)
async def deals_board(
    session: Session,
    user: CurrentUser,
    responsible: Annotated[
        str, Query(max_length=12, description="me, all (supervisors, admins) or a user id")
    ] = "me",
    lead_source: Annotated[Text | None, Query(max_length=100)] = None,
    date_from: Day | None = None,
    date_to: Day | None = None,
) -> Response:
    """Every stage in order with its deals: all open ones, the latest won and lost."""
    board = await service.board_json(
        session,
        viewer=user,
        responsible=responsible,
        lead_source=lead_source,
        date_from=date_from,
        date_to=date_to,
    )
    # JSON written by the database (tests check it against Board): thousands of cards are not
    # rebuilt and validated in Python (bench/deals_board_bench.py)
    return Response(board, media_type="application/json")


@router.get("/clients/{client_id}/deals")
async def client_deals(client_id: Id, session: Session, user: CurrentUser) -> list[DealOut]:
    """The client's deals, open and closed, newest first (the card's deals list)."""
    rows = await repository.list_deals(
        session,
        stage_id=None,
        client_id=client_id,
        responsible_id=None,
        open_only=False,
        limit=500,
        offset=0,
    )
    return [DealOut.from_row(d) for d in rows]


@router.get("/deals/{deal_id}")
async def get_deal(deal_id: Id, session: Session, user: CurrentUser) -> DealWithMoves:
    """The deal with its stage history: who moved it, when, from and to which stage."""
    deal = DealOut.from_row(await service.get_deal(session, deal_id))
    names = {s.id: s.name for s in await repository.stages(session)}
    moves = [
        StageMoveOut.from_row(m, stage_names=names, user_name=who)
        for m, who in await repository.moves_with_names(session, deal_id)
    ]
    return DealWithMoves(**deal.model_dump(), moves=moves)


@router.patch("/deals/{deal_id}")
async def update_deal(
    deal_id: Id, data: DealUpdate, session: Session, user: CurrentUser
) -> DealOut:
    if "responsible_id" in data.model_fields_set and not is_staff(user):
        raise Forbidden("only supervisors reassign deals", code="deal.not_yours")
    return DealOut.from_row(await service.update_deal(session, deal_id, data, actor=user))


@router.post("/deals/{deal_id}/stage")
async def move_stage(deal_id: Id, move: StageMove, session: Session, user: CurrentUser) -> DealOut:
    """Move the deal: a lost stage needs `lost_reason`, a won stage an amount (given as `amount`
    or already on the deal); else 422."""
    return DealOut.from_row(await service.move_stage(session, deal_id, move, actor=user))
