"""All SQL about communications."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.communications.models import Communication
from crm_core.queries import where_given


async def by_external_id(
    session: AsyncSession, kind: str, external_id: str
) -> Communication | None:
    return await session.scalar(
        select(Communication).where(
            Communication.kind == kind, Communication.external_id == external_id
        )
    )


async def by_external_ids(
    session: AsyncSession, kind: str, external_ids: Iterable[str]
) -> dict[str, Communication]:
    """The communications of `kind` already logged under these external ids, by external id
    (one statement for a batch, where `by_external_id` would take one each)."""
    ids = sorted(set(external_ids))
    if not ids:
        return {}
    rows = await session.scalars(_BY_EXTERNAL_IDS, {"kind": kind, "ids": ids})
    return {c.external_id: c for c in rows if c.external_id is not None}


# Built once (every call's end reads it): a statement built per call costs as much again.
_BY_EXTERNAL_IDS = select(Communication).where(
    Communication.kind == bindparam("kind"),
    Communication.external_id.in_(bindparam("ids", expanding=True)),
)


async def insert_once(session: AsyncSession, values: dict[str, Any]) -> Communication | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the row: None when (kind, external_id) already
    exists.

    The unique index decides, so two transactions logging the same event at once still make one row.
    """
    return await session.scalar(_INSERT_ONCE, values)


# Built once, the row given as parameters (SQLAlchemy would build and key a statement given its
# values anew for every call logged).
_INSERT_ONCE = (
    insert(Communication)
    .on_conflict_do_nothing(index_elements=["kind", "external_id"])
    .returning(Communication)
)


async def timeline(
    session: AsyncSession,
    *,
    client_id: int | None,
    deal_id: int | None,
    kind: str | None,
    user_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[Communication], int]:
    stmt = where_given(
        select(Communication),
        (Communication.client_id, client_id),
        (Communication.deal_id, deal_id),
        (Communication.kind, kind),
        (Communication.user_id, user_id),
    )
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.scalars(
        stmt.order_by(Communication.occurred_at.desc(), Communication.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total
