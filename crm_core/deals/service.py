from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import repository as clients_repo
from crm_core.db import collect_event
from crm_core.deals import board as board_view
from crm_core.deals import repository
from crm_core.deals.models import Deal, DealStage, DealStageMove
from crm_core.deals.schemas import DealCreate, DealUpdate, StageMove
from crm_core.errors import Forbidden, Invalid, NotFound
from crm_core.events.messages import DealCreatedMessage, DealUpdatedMessage
from crm_core.events.types import DealChanged, DealStageChanged
from crm_core.inputs import INT32_MAX
from crm_core.models_common import utcnow
from crm_core.policy import can_change_assigned, is_staff, may_see_user
from crm_core.users.models import User

CENTS = Decimal("0.01")


def _news(kind: str, deal: Deal, actor: User | None) -> DealChanged:
    return DealChanged(
        type=kind,
        deal_id=deal.id,
        client_id=deal.client_id,
        stage_id=deal.stage_id,
        responsible_id=deal.responsible_id,
        user_id=actor.id if actor else None,
    )


async def _check_responsible(session: AsyncSession, user_id: int | None) -> None:
    if user_id is None:
        return
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Invalid(f"user {user_id} does not exist or is deactivated", code="user.unknown")


async def create_deal(session: AsyncSession, data: DealCreate, *, actor: User | None) -> Deal:
    if await clients_repo.get_card(session, data.client_id) is None:
        raise Invalid(f"client {data.client_id} does not exist", code="client.not_found")
    stage = (
        await repository.stage_by(session, stage_id=data.stage_id, name=None)
        if data.stage_id is not None
        else await repository.first_stage(session)
    )
    if stage is None:
        raise Invalid(f"stage {data.stage_id} does not exist", code="stage.unknown")
    if stage.is_closed:
        # a won deal needs its amount, a lost one its reason: create it open, then move it
        raise Invalid("a deal starts in an open stage", code="deal.starts_open")
    responsible = data.responsible_id
    if responsible is None and actor is not None:
        responsible = actor.id
    await _check_responsible(session, responsible)
    deal = Deal(
        client_id=data.client_id,
        title=data.title,
        amount=data.amount,
        currency=data.currency,
        responsible_id=responsible,
        lead_source=data.lead_source,
        stage_id=stage.id,
        stage_since=utcnow(),
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
    collect_event(session, _news(DealCreatedMessage.TYPE, deal, actor))
    return deal


async def get_deal(session: AsyncSession, deal_id: int) -> Deal:
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found", code="deal.not_found")
    return deal


def _check_owner(actor: User, deal: Deal) -> None:
    if not can_change_assigned(actor, deal.responsible_id):
        raise Forbidden(
            "only the deal's responsible manager or a supervisor may change it",
            code="deal.not_yours",
        )


async def update_deal(
    session: AsyncSession, deal_id: int, data: DealUpdate, *, actor: User
) -> Deal:
    deal = await get_deal(session, deal_id)
    _check_owner(actor, deal)
    changes = data.model_dump(exclude_unset=True)
    if "responsible_id" in changes:
        await _check_responsible(session, changes["responsible_id"])
    if changes.get("amount") is not None and changes["amount"] <= 0 and deal.stage.is_won:
        raise Invalid("a won deal keeps an amount above zero", code="deal.won_amount_positive")
    for key, value in changes.items():
        setattr(deal, key, value)
    await session.flush()
    collect_event(session, _news(DealUpdatedMessage.TYPE, deal, actor))
    return deal


async def move_stage(session: AsyncSession, deal_id: int, move: StageMove, *, actor: User) -> Deal:
    deal = await get_deal(session, deal_id)
    _check_owner(actor, deal)
    if move.stage_id is None and move.stage is None:
        raise Invalid("give stage_id or stage", code="stage.unknown")
    stage: DealStage | None = await repository.stage_by(
        session, stage_id=move.stage_id, name=move.stage
    )
    if stage is None:
        raise Invalid(f"no such stage: {move.stage_id or move.stage!r}", code="stage.unknown")
    check_move(stage, deal, move)
    if move.amount is not None:
        deal.amount = move.amount.quantize(CENTS)  # as the column gives it back: "1500.00"
    if stage.id == deal.stage_id:
        await session.flush()
        return deal
    from_id = deal.stage_id
    now = utcnow()
    deal.stage_id = stage.id
    deal.stage_since = now
    deal.closed_at = now if stage.is_closed else None
    deal.lost_reason = move.lost_reason if stage.kind == "lost" else None
    session.add(
        DealStageMove(
            deal_id=deal.id,
            from_stage_id=from_id,
            to_stage_id=stage.id,
            user_id=actor.id,
            lost_reason=deal.lost_reason,
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
            responsible_id=deal.responsible_id,
        ),
    )
    return deal


def check_move(stage: DealStage, deal: Deal, move: StageMove) -> None:
    """A lost deal says why; a won deal says for how much (given now or already on it)."""
    if stage.kind == "lost" and not move.lost_reason:
        raise Invalid(
            "a move to a lost stage needs a lost_reason", code="deal.lost_reason_required"
        )
    if stage.kind == "won" and move.amount is None and not deal.amount:
        raise Invalid(
            "a move to a won stage needs an amount: the deal has none",
            code="deal.won_amount_required",
        )


async def ensure_open_deal(
    session: AsyncSession,
    client_id: int,
    *,
    responsible_id: int | None,
    title: str,
    new_client: bool = False,
) -> tuple[Deal, bool]:
    """The client's open deal, or a new one in the first stage; race-free per client.

    `new_client`: the card was opened in this very transaction, so no other one can see it nor
    has it a deal: the lock and the look-up are skipped (two statements of every new caller)."""
    if not new_client:
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


async def board_json(
    session: AsyncSession,
    *,
    viewer: User,
    responsible: str,
    lead_source: str | None,
    date_from: date | None,
    date_to: date | None,
) -> str:
    """The pipeline as columns, JSON text of schemas.Board: `responsible` is "me", "all" or a
    user id; operators and managers see only their own deals (the ones they may move),
    supervisors and admins any.

    The period picks open deals by when they were created and closed ones by when they closed;
    dates are whole days in the viewer's time zone.
    """
    responsible_id = _board_owner(viewer, responsible)
    start, end = board_view.period(date_from, date_to, viewer.timezone)
    if start is not None and end is not None and end <= start:
        raise Invalid("date_to is before date_from", code="period.reversed")
    now = utcnow()
    stages = await repository.stages(session)
    open_parts = await repository.board_open(
        session,
        responsible_id=responsible_id,
        lead_source=lead_source,
        created_from=start,
        created_before=end,
        now=now,
    )
    closed_parts = await repository.board_closed(
        session,
        stage_ids=[s.id for s in stages if s.is_closed],
        responsible_id=responsible_id,
        lead_source=lead_source,
        closed_from=start,
        closed_before=end,
        limit=board_view.CLOSED_LIMIT,
        now=now,
    )
    return board_view.to_json(stages, [*open_parts, *closed_parts])


def _board_owner(viewer: User, responsible: str) -> int | None:
    """The user whose deals the board shows, None for everyone's."""
    if responsible == "me":
        return viewer.id
    if responsible == "all":
        if not is_staff(viewer):
            raise Forbidden(
                "only supervisors and admins see everyone's deals", code="deal.not_yours"
            )
        return None
    if not responsible.isdigit() or not 1 <= int(responsible) <= INT32_MAX:
        raise Invalid("responsible is me, all or a user id", code="deal.bad_filter")
    if not may_see_user(viewer, int(responsible)):
        raise Forbidden(
            "only supervisors and admins see a colleague's deals", code="deal.not_yours"
        )
    return int(responsible)
