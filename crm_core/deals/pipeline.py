"""The admins' pipeline: add, rename, reorder and retype stages, remove unused ones."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.deals import repository
from crm_core.deals.models import Deal, DealStage
from crm_core.deals.schemas import Order, StageCreate, StageUpdate
from crm_core.errors import Conflict, Invalid, NotFound

_KIND_FLAGS = {"open": (False, False), "won": (True, True), "lost": (True, False)}


async def _get(session: AsyncSession, stage_id: int) -> DealStage:
    stage = await session.get(DealStage, stage_id)
    if stage is None:
        raise NotFound(f"stage {stage_id} not found", code="stage.not_found")
    return stage


async def _check_name_free(session: AsyncSession, name: str, *, but: int | None = None) -> None:
    found = await repository.stage_by(session, stage_id=None, name=name)
    if found is not None and found.id != but:
        raise Conflict(f"a stage is already named {name!r}", code="stage.taken", name=name)


def _check_kinds_left(kinds: list[str]) -> None:
    """New deals start in an open stage; the board's Won and Lost zones need a stage each."""
    missing = [k for k in _KIND_FLAGS if k not in kinds]
    if missing:
        raise Conflict(
            f"the pipeline must keep at least one {missing[0]} stage",
            code=f"stage.keep_{missing[0]}",
        )


async def create_stage(session: AsyncSession, data: StageCreate) -> DealStage:
    await repository.lock_stages(session)
    await _check_name_free(session, data.name)
    stages = await repository.stages(session)
    closed, won = _KIND_FLAGS[data.kind]
    if closed:
        position = max((s.position for s in stages), default=-1) + 1
    else:
        # a new open stage goes after the last open one, before the closing ones
        position = max((s.position for s in stages if not s.is_closed), default=-1) + 1
        for s in stages:
            if s.position >= position:
                s.position += 1
    stage = DealStage(name=data.name, position=position, is_closed=closed, is_won=won)
    session.add(stage)
    await session.flush()
    return stage


async def update_stage(session: AsyncSession, stage_id: int, data: StageUpdate) -> DealStage:
    await repository.lock_stages(session)
    stage = await _get(session, stage_id)
    if data.name is not None and data.name != stage.name:
        await _check_name_free(session, data.name, but=stage.id)
        stage.name = data.name
    if data.kind is not None and data.kind != stage.kind:
        # deals in the stage would be open in a closing stage, or closed without a reason
        holding = await session.scalar(select(func.count()).where(Deal.stage_id == stage.id))
        if holding:
            raise Conflict(
                f"{holding} deal(s) are in this stage: move them before retyping it",
                code="stage.holds_deals",
                n=holding,
            )
        others = [s.kind for s in await repository.stages(session) if s.id != stage.id]
        _check_kinds_left([*others, data.kind])
        stage.is_closed, stage.is_won = _KIND_FLAGS[data.kind]
    await session.flush()
    return stage


async def reorder_stages(session: AsyncSession, order: Order) -> list[DealStage]:
    await repository.lock_stages(session)
    stages = {s.id: s for s in await repository.stages(session)}
    if sorted(order.ids) != sorted(stages):
        raise Invalid("give every stage id exactly once", code="order.stale")
    for position, stage_id in enumerate(order.ids):
        stages[stage_id].position = position
    await session.flush()
    return await repository.stages(session)


async def delete_stage(session: AsyncSession, stage_id: int) -> None:
    await repository.lock_stages(session)
    stage = await _get(session, stage_id)
    if await repository.stage_in_use(session, stage.id):
        raise Conflict(
            "deals are in this stage or passed through it: rename it instead",
            code="stage.in_use",
        )
    _check_kinds_left([s.kind for s in await repository.stages(session) if s.id != stage.id])
    await session.delete(stage)
    await session.flush()
