"""All SQL about client cards."""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.clients.models import Client, ClientEmail, ClientPhone
from crm_core.inputs import escape_like


def _with_children(stmt: Select[Client]) -> Select[Client]:
    return stmt.options(
        selectinload(Client.phones), selectinload(Client.emails), selectinload(Client.contacts)
    )


async def client_id_by_phone(session: AsyncSession, e164: str) -> int | None:
    """The hot path of every call: one probe of the unique E.164 index."""
    return await session.scalar(select(ClientPhone.client_id).where(ClientPhone.e164 == e164))


async def client_id_by_email(session: AsyncSession, email: str) -> int | None:
    return await session.scalar(
        select(ClientEmail.client_id).where(ClientEmail.email == email.strip().lower())
    )


async def get_card(session: AsyncSession, client_id: int) -> Client | None:
    return await session.scalar(_with_children(select(Client).where(Client.id == client_id)))


async def lock_client(session: AsyncSession, client_id: int) -> Client | None:
    """Serialises "find or open a deal" for one client across concurrent transactions.

    FOR NO KEY UPDATE, not FOR UPDATE: rows that merely reference the client (a communication,
    a task) take KEY SHARE locks, which must not wait for this one (nor deadlock with it)."""
    return await session.scalar(
        select(Client).where(Client.id == client_id).with_for_update(key_share=True)
    )


async def phone_owners(session: AsyncSession, numbers: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(ClientPhone.e164, ClientPhone.client_id).where(ClientPhone.e164.in_(numbers))
    )
    return {e164: cid for e164, cid in rows.all()}


async def search(
    session: AsyncSession,
    *,
    text: str | None,
    phone_e164: str | None,
    responsible_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[Client], int]:
    stmt = select(Client)
    if phone_e164:
        stmt = stmt.join(ClientPhone).where(ClientPhone.e164 == phone_e164)
    if text:
        # the words themselves, not patterns: `%`, `_` and a backslash match only themselves
        like = "%" + escape_like(text.lower()) + "%"
        stmt = stmt.where(
            or_(
                func.lower(Client.name).like(like, escape="\\"),
                func.lower(Client.company).like(like, escape="\\"),
            )
        )
    if responsible_id is not None:
        stmt = stmt.where(Client.responsible_id == responsible_id)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.scalars(
        _with_children(stmt.order_by(Client.id.desc()).limit(limit).offset(offset))
    )
    return list(rows.all()), total
