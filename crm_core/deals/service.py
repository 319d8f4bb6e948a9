from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import repository as clients_repo
from crm_core.db import collect_event
from crm_core.deals import repository
from crm_core.deals.models import Deal, DealStage, DealStageMove
from crm_core.deals.schemas import DealCreate, DealUpdate, StageMove
from crm_core.errors import Forbidden, Invalid, NotFound
from crm_core.events.types import DealStageChanged
from crm_core.models_common import utcnow
from crm_core.policy import can_change_assigned
from crm_core.users.models import User


async def create_deal(session: AsyncSession, data: DealCreate, *, actor: User | None) -> Deal:
    if await clients_repo.get_card(session, data.client_id) is None:
        raise Invalid(f"client {data.client_id} does not exist")
    stage = (
        await repository.stage_by(session, stage_id=data.stage_id, name=None)
        if data.stage_id is not None
        else await repository.first_stage(session)
    )
    if stage is None:
        raise Invalid(f"stage {data.stage_id} does not exist")
    responsible = data.responsible_id if data.responsible_id is not None else (actor and actor.id)
    deal = Deal(
        client_id=data.client_id,
        title=data.title,
        amount=data.amount,
        currency=data.currency,
        responsible_id=responsible,
        lead_source=data.lead_source,
        stage_id=stage.id,
        closed_at=utcnow() if stage.is_closed else None,
    )
    session.add(deal)
    await session.flush()
    session.add(
        DealStageMove(
            deal_id=deal.id,
            from_stage_id=None,
            to_stage_id=stage.id,
            user_id=actor.id if actor else None,
        )
    )
    await session.flush()
    return deal


async def get_deal(session: AsyncSession, deal_id: int) -> Deal:
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    return deal


def _check_owner(actor: User, deal: Deal) -> None:
    if not can_change_assigned(actor, deal.responsible_id):
        raise Forbidden("only the deal's responsible manager or a supervisor may change it")


async def update_deal(
    session: AsyncSession, deal_id: int, data: DealUpdate, *, actor: User
) -> Deal:
    deal = await get_deal(session, deal_id)
    _check_owner(actor, deal)
    for key, value in data.model_dump(exclude_unset=True).items():
        if key == "title" and value is None:
            continue
        setattr(deal, key, value)
    await session.flush()
    return deal


async def move_stage(session: AsyncSession, deal_id: int, move: StageMove, *, actor: User) -> Deal:
    deal = await get_deal(session, deal_id)
    _check_owner(actor, deal)
    if move.stage_id is None and move.stage is None:
        raise Invalid("give stage_id or stage")
    stage: DealStage | None = await repository.stage_by(
        session, stage_id=move.stage_id, name=move.stage
    )
    if stage is None:
        raise Invalid(f"no such stage: {move.stage_id or move.stage!r}")
    if stage.id == deal.stage_id:
        return deal
    from_id = deal.stage_id
    deal.stage_id = stage.id
    deal.closed_at = utcnow() if stage.is_closed else None
    deal.lost_reason = move.lost_reason if stage.is_closed and not stage.is_won else None
    session.add(
        DealStageMove(
            deal_id=deal.id, from_stage_id=from_id, to_stage_id=stage.id, user_id=actor.id
        )
    )
    await session.flush()
    await session.refresh(deal, ["stage"])
    collect_event(
        session,
        DealStageChanged(
            deal_id=deal.id,
            client_id=deal.client_id,
            from_stage_id=from_id,
            to_stage_id=stage.id,
            user_id=actor.id,
        ),
    )
    return deal


async def ensure_open_deal(
    session: AsyncSession, client_id: int, *, responsible_id: int | None, title: str
) -> tuple[Deal, bool]:
    """The client's open deal, or a new one in the first stage; race-free per client."""
    await clients_repo.lock_client(session, client_id)
    deal = await repository.open_deal_of(session, client_id)
    if deal is not None:
        return deal, False
    stage = await repository.first_stage(session)
    deal = Deal(client_id=client_id, title=title, responsible_id=responsible_id, stage_id=stage.id)
    session.add(deal)
    await session.flush()
    session.add(DealStageMove(deal_id=deal.id, from_stage_id=None, to_stage_id=stage.id))
    await session.flush()
    return deal, True
