"""Formal contact results (Expo-Volga's): an admin-editable list, each of a kind that says what
it does to the deal. postponed: a task to contact again; refused: the deal to Lost with the
reason; sale: the deal to Won with the amount; the others are recorded only."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import repository as clients_repo
from crm_core.communications.models import Communication
from crm_core.deals import repository as deals_repo
from crm_core.deals.models import Deal, DealStage
from crm_core.deals.schemas import StageMove
from crm_core.deals.service import move_stage
from crm_core.errors import Conflict, Invalid, NotFound
from crm_core.results.models import ContactResult, ContactResultRecord
from crm_core.tasks.schemas import TaskCreate
from crm_core.tasks.service import create_task
from crm_core.users.models import User
from crm_core.workspace.schemas import ResultCreate, ResultUpdate, SetResult

# the list a fresh install starts with, in DEFAULT_LOCALE (admins rename and add)
DEFAULT_RESULTS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("postponed", "Postponed"),
        ("refused", "Refused"),
        ("offer_sent", "Offer sent"),
        ("sale", "Sale"),
        ("wrong_number", "Wrong number"),
        ("other", "Other"),
    ],
    "ru": [
        ("postponed", "Отложено"),
        ("refused", "Отказ"),
        ("offer_sent", "Отправлено КП"),
        ("sale", "Продажа"),
        ("wrong_number", "Ошибочный номер"),
        ("other", "Другое"),
    ],
}


async def ensure_seeded(session: AsyncSession, locale: str) -> None:
    """Seed the list once, when it has never had an entry (deactivate rather than delete)."""
    if await session.scalar(select(func.count()).select_from(ContactResult)):
        return
    rows = DEFAULT_RESULTS.get(locale, DEFAULT_RESULTS["en"])
    await session.execute(
        insert(ContactResult)
        .values(
            [
                {"name": name, "kind": kind, "position": i, "is_active": True}
                for i, (kind, name) in enumerate(rows)
            ]
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )


async def list_results(
    session: AsyncSession, *, locale: str, include_inactive: bool
) -> list[ContactResult]:
    await ensure_seeded(session, locale)
    stmt = select(ContactResult).order_by(ContactResult.position, ContactResult.id)
    if not include_inactive:
        stmt = stmt.where(ContactResult.is_active.is_(True))
    return list((await session.scalars(stmt)).all())


async def create_result(session: AsyncSession, data: ResultCreate, *, locale: str) -> ContactResult:
    await ensure_seeded(session, locale)
    result = ContactResult(**data.model_dump())
    session.add(result)
    await _flush_unique(session, data.name)
    return result


async def update_result(session: AsyncSession, result_id: int, data: ResultUpdate) -> ContactResult:
    result = await session.get(ContactResult, result_id)
    if result is None:
        raise NotFound(f"result {result_id} not found", code="result.not_found")
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(result, key, value)
    await _flush_unique(session, data.name or result.name)
    return result


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a result named {name!r} exists", code="choice.taken", name=name) from None


async def _deal_for(
    session: AsyncSession, client_id: int, deal_id: int | None, comm: Communication | None
) -> Deal | None:
    if deal_id is not None:
        deal = await session.get(Deal, deal_id)
        if deal is None or deal.client_id != client_id:
            raise Invalid(f"deal {deal_id} is not client {client_id}'s", code="deal.other_client")
        return deal
    if comm is not None:
        return await session.get(Deal, comm.deal_id)
    return await deals_repo.open_deal_of(session, client_id)


async def _closing_stage(session: AsyncSession, *, won: bool) -> DealStage:
    stage = await session.scalar(
        select(DealStage)
        .where(DealStage.is_closed.is_(True), DealStage.is_won.is_(won))
        .order_by(DealStage.position)
        .limit(1)
    )
    if stage is None:
        raise Invalid(
            f"the pipeline has no {'won' if won else 'lost'} stage",
            code="stage.keep_won" if won else "stage.keep_lost",
        )
    return stage


async def set_result(
    session: AsyncSession,
    data: SetResult,
    *,
    actor: User,
    communication_id: int | None = None,
    client_id: int | None = None,
) -> ContactResultRecord:
    """Record a result on a contact (or a card) and apply it to the deal."""
    comm = None
    if communication_id is not None:
        comm = await session.get(Communication, communication_id)
        if comm is None:
            raise NotFound(
                f"communication {communication_id} not found", code="communication.not_found"
            )
        client_id = comm.client_id
    assert client_id is not None
    if await clients_repo.get_card(session, client_id) is None:
        raise NotFound(f"client {client_id} not found", code="client.not_found")
    result = await session.get(ContactResult, data.result_id)
    if result is None or not result.is_active:
        raise Invalid(f"no such result {data.result_id}", code="result.not_found")
    deal = await _deal_for(session, client_id, data.deal_id, comm)
    record = ContactResultRecord(
        result_id=result.id,
        kind=result.kind,
        client_id=client_id,
        deal_id=deal.id if deal else None,
        communication_id=comm.id if comm else None,
        user_id=actor.id,
        reason=data.reason,
        date=data.date,
        amount=data.amount,
    )
    if result.kind == "postponed":
        if data.date is None:
            raise Invalid(
                "a postponed contact needs the date to contact again",
                code="result.date_required",
            )
        task = await create_task(
            session,
            TaskCreate(
                title=f"{result.name}: {data.reason}" if data.reason else result.name,
                kind="other",
                contact_type="call",
                goal=data.reason,
                due_at=data.date,
                client_id=client_id,
                deal_id=deal.id if deal else None,
            ),
            actor=actor,
        )
        record.task_id = task.id
    elif result.kind in ("refused", "sale"):
        if deal is None:
            raise Invalid("the client has no deal to close", code="result.no_deal")
        if deal.closed_at is not None:
            raise Invalid(f"deal {deal.id} is already closed", code="deal.closed")
        if result.kind == "refused":
            if not data.reason:
                raise Invalid("a refusal needs its reason", code="deal.lost_reason_required")
            stage = await _closing_stage(session, won=False)
            await move_stage(
                session, deal.id, StageMove(stage_id=stage.id, lost_reason=data.reason), actor=actor
            )
        else:
            if data.amount is None:
                raise Invalid("a sale needs its amount", code="deal.won_amount_required")
            deal.amount = data.amount
            stage = await _closing_stage(session, won=True)
            await move_stage(session, deal.id, StageMove(stage_id=stage.id), actor=actor)
    session.add(record)
    await session.flush()
    return record
