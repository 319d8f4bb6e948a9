"""All SQL about deals and the pipeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.deals.models import Deal, DealChoice, DealStage, DealStageMove
from crm_core.queries import where_given
from crm_core.users.models import User


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
    stmt = where_given(
        select(Deal),
        (Deal.stage_id, stage_id),
        (Deal.client_id, client_id),
        (Deal.responsible_id, responsible_id),
    )
    if open_only:
        stmt = stmt.where(Deal.closed_at.is_(None))
    rows = await session.scalars(stmt.order_by(Deal.id.desc()).limit(limit).offset(offset))
    return list(rows.all())


async def moves_of(session: AsyncSession, deal_id: int) -> list[DealStageMove]:
    rows = await session.scalars(
        select(DealStageMove).where(DealStageMove.deal_id == deal_id).order_by(DealStageMove.id)
    )
    return list(rows.all())


async def moves_with_names(
    session: AsyncSession, deal_id: int
) -> list[tuple[DealStageMove, str | None]]:
    """The deal's history, oldest first, each move with the mover's name (one query)."""
    rows = await session.execute(
        select(DealStageMove, User.full_name)
        .outerjoin(User, User.id == DealStageMove.user_id)
        .where(DealStageMove.deal_id == deal_id)
        .order_by(DealStageMove.id)
    )
    return [(m, name) for m, name in rows.all()]


async def stage_in_use(session: AsyncSession, stage_id: int) -> bool:
    """Whether a deal sits in the stage or its history names it."""
    deals = select(Deal.id).where(Deal.stage_id == stage_id).exists()
    moves = (
        select(DealStageMove.id)
        .where(or_(DealStageMove.to_stage_id == stage_id, DealStageMove.from_stage_id == stage_id))
        .exists()
    )
    return bool(await session.scalar(select(or_(deals, moves))))


async def lock_stages(session: AsyncSession) -> None:
    """Serialize pipeline edits: two admins reordering at once must not interleave."""
    await session.execute(text("LOCK TABLE deal_stages IN SHARE ROW EXCLUSIVE MODE"))


async def choices(session: AsyncSession, kind: str) -> list[DealChoice]:
    rows = await session.scalars(
        select(DealChoice)
        .where(DealChoice.kind == kind)
        .order_by(DealChoice.position, DealChoice.id)
    )
    return list(rows.all())


async def choice(session: AsyncSession, kind: str, choice_id: int) -> DealChoice | None:
    found = await session.get(DealChoice, choice_id)
    return found if found is not None and found.kind == kind else None


async def choice_named(session: AsyncSession, kind: str, name: str) -> DealChoice | None:
    return await session.scalar(
        select(DealChoice).where(DealChoice.kind == kind, DealChoice.name == name)
    )


# ---- the board: one query for the open deals, one for the latest closed ones -------------------
# PostgreSQL writes each column's cards as JSON itself (json_agg): a whole company's board is
# thousands of cards, and building them row by row in Python cost several times the query.


class BoardStage(NamedTuple):
    stage_id: int
    total: int
    amount_total: Decimal
    cards: str  # a JSON array of schemas.BoardCard


_CARD = """
    json_build_object(
        'id', d.id, 'client_id', d.client_id, 'client_name', c.name, 'title', d.title,
        'amount', d.amount::text, 'currency', d.currency,
        'responsible_id', d.responsible_id, 'responsible_name', u.full_name,
        'lead_source', d.lead_source, 'stage_id', d.stage_id, 'stage_since', d.stage_since,
        'days_in_stage', greatest(0, floor(extract(epoch FROM :now - d.stage_since) / 86400))::int,
        'last_contact_at',
            (SELECT max(m.occurred_at) FROM communications m WHERE m.deal_id = d.id),
        'closed_at', d.closed_at, 'lost_reason', d.lost_reason
    )
"""


def _filters(
    *,
    responsible_id: int | None,
    lead_source: str | None,
    dated: Literal["created", "closed"],
    since: datetime | None,
    before: datetime | None,
) -> tuple[str, dict[str, Any]]:
    """The board's " AND ..." terms and their parameters, each where given: the responsible
    manager, the lead source, and `d.<dated>_at` in [since, before)."""
    terms = (
        ("d.responsible_id = :responsible_id", "responsible_id", responsible_id),
        ("d.lead_source = :lead_source", "lead_source", lead_source),
        (f"d.{dated}_at >= :since", "since", since),
        (f"d.{dated}_at < :before", "before", before),
    )
    given = [(term, name, value) for term, name, value in terms if value is not None]
    return "".join(f" AND {t}" for t, _, _ in given), {name: value for _, name, value in given}


async def board_open(
    session: AsyncSession,
    *,
    responsible_id: int | None,
    lead_source: str | None,
    created_from: datetime | None,
    created_before: datetime | None,
    now: datetime,
) -> list[BoardStage]:
    """Every open deal matching, per stage, with its client, manager and last contact (one
    query; the last contact is one probe of ix_communications_deal_time per deal)."""
    extra, params = _filters(
        responsible_id=responsible_id,
        lead_source=lead_source,
        dated="created",
        since=created_from,
        before=created_before,
    )
    params["now"] = now
    sql = f"""
        SELECT d.stage_id, count(*) AS total, sum(d.amount) AS amount_total,
               json_agg({_CARD} ORDER BY d.stage_since DESC, d.id DESC)::text AS cards
        FROM deals d
        JOIN clients c ON c.id = d.client_id
        LEFT JOIN users u ON u.id = d.responsible_id
        WHERE d.closed_at IS NULL{extra}
        GROUP BY d.stage_id
    """
    return [BoardStage(*r) for r in (await session.execute(text(sql), params)).all()]


async def board_closed(
    session: AsyncSession,
    *,
    stage_ids: list[int],
    responsible_id: int | None,
    lead_source: str | None,
    closed_from: datetime | None,
    closed_before: datetime | None,
    limit: int,
    now: datetime,
) -> list[BoardStage]:
    """The latest `limit` matching deals of each closed stage, with the stage's full count and
    sum (one query)."""
    if not stage_ids:
        return []
    extra, params = _filters(
        responsible_id=responsible_id,
        lead_source=lead_source,
        dated="closed",
        since=closed_from,
        before=closed_before,
    )
    params |= {"stage_ids": stage_ids, "limit": limit, "now": now}
    # rank first on the bare rows; the cards (names, last contact, JSON) only for the kept ones
    sql = f"""
        WITH ranked AS (
            SELECT d.id, d.stage_id,
                   count(*) OVER w AS total,
                   sum(d.amount) OVER w AS amount_total,
                   row_number() OVER (w ORDER BY d.closed_at DESC, d.id DESC) AS rank
            FROM deals d
            WHERE d.stage_id = ANY(:stage_ids) AND d.closed_at IS NOT NULL{extra}
            WINDOW w AS (PARTITION BY d.stage_id)
        )
        SELECT r.stage_id, max(r.total) AS total, max(r.amount_total) AS amount_total,
               json_agg({_CARD} ORDER BY r.rank)::text AS cards
        FROM ranked r
        JOIN deals d ON d.id = r.id
        JOIN clients c ON c.id = d.client_id
        LEFT JOIN users u ON u.id = d.responsible_id
        WHERE r.rank <= :limit
        GROUP BY r.stage_id
    """
    return [BoardStage(*r) for r in (await session.execute(text(sql), params)).all()]
