"""The admin-edited lists deal forms offer: lost reasons and lead sources."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.deals import repository
from crm_core.deals.models import DealChoice
from crm_core.deals.schemas import ChoiceCreate, Order
from crm_core.errors import Conflict, Invalid, NotFound


async def _get(session: AsyncSession, kind: str, choice_id: int) -> DealChoice:
    found = await repository.choice(session, kind, choice_id)
    if found is None:
        raise NotFound(f"{kind} {choice_id} not found", code="choice.not_found")
    return found


async def _check_name_free(
    session: AsyncSession, kind: str, name: str, *, but: int | None = None
) -> None:
    found = await repository.choice_named(session, kind, name)
    if found is not None and found.id != but:
        raise Conflict(f"the list already has {name!r}", code="choice.taken", name=name)


async def add(session: AsyncSession, kind: str, data: ChoiceCreate) -> DealChoice:
    await _check_name_free(session, kind, data.name)
    items = await repository.choices(session, kind)
    item = DealChoice(
        kind=kind, name=data.name, position=max((c.position for c in items), default=-1) + 1
    )
    session.add(item)
    await session.flush()
    return item


async def rename(
    session: AsyncSession, kind: str, choice_id: int, data: ChoiceCreate
) -> DealChoice:
    item = await _get(session, kind, choice_id)
    await _check_name_free(session, kind, data.name, but=item.id)
    item.name = data.name
    await session.flush()
    return item


async def reorder(session: AsyncSession, kind: str, order: Order) -> list[DealChoice]:
    items = {c.id: c for c in await repository.choices(session, kind)}
    if sorted(order.ids) != sorted(items):
        raise Invalid("give every id of the list exactly once", code="order.stale")
    for position, choice_id in enumerate(order.ids):
        items[choice_id].position = position
    await session.flush()
    return await repository.choices(session, kind)


async def remove(session: AsyncSession, kind: str, choice_id: int) -> None:
    """Deals keep the text they were given: removing an entry only stops offering it."""
    await session.delete(await _get(session, kind, choice_id))
    await session.flush()
