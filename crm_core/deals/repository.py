"""All SQL about deals and the pipeline."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.deals.models import Deal, DealStage, DealStageMove


async def stages(session: AsyncSession) -> list[DealStage]:
    return list((await session.scalars(select(DealStage).order_by(DealStage.position))).all())


async def first_stage(session: AsyncSession) -> DealStage:
    stage = await session.scalar(select(DealStage).order_by(DealStage.position).limit(1))
    assert stage is not None, "the pipeline has no stages: run the migrations"
    return stage


async def stage_by(
    session: AsyncSession, *, stage_id: int | None, name: str | None
) -> DealStage | None:
    if stage_id is not None:
        return await session.get(DealStage, stage_id)
    return await session.scalar(select(DealStage).where(DealStage.name == name))


async def open_deal_of(session: AsyncSession, client_id: int) -> Deal | None:
    """The client's most recent open deal (a partial index keeps this one probe)."""
    return await session.scalar(
        select(Deal)
        .where(Deal.client_id == client_id, Deal.closed_at.is_(None))
        .order_by(Deal.id.desc())
        .limit(1)
    )


async def list_deals(
    session: AsyncSession,
    *,
    stage_id: int | None,
    client_id: int | None,
    responsible_id: int | None,
    open_only: bool,
    limit: int,
    offset: int,
) -> list[Deal]:
    stmt = select(Deal)
    if stage_id is not None:
        stmt = stmt.where(Deal.stage_id == stage_id)
    if client_id is not None:
        stmt = stmt.where(Deal.client_id == client_id)
    if responsible_id is not None:
        stmt = stmt.where(Deal.responsible_id == responsible_id)
    if open_only:
        stmt = stmt.where(Deal.closed_at.is_(None))
    rows = await session.scalars(stmt.order_by(Deal.id.desc()).limit(limit).offset(offset))
    return list(rows.all())


async def moves_of(session: AsyncSession, deal_id: int) -> list[DealStageMove]:
    rows = await session.scalars(
        select(DealStageMove).where(DealStageMove.deal_id == deal_id).order_by(DealStageMove.id)
    )
    return list(rows.all())
