"""Linking an unknown number to an existing client: the auto-created card merges into it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import repository as clients_repo
from crm_core.clients.models import Client, ClientEmail, ClientPhone, ContactPerson
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal
from crm_core.errors import Forbidden, Invalid, NotFound
from crm_core.policy import can_change_assigned
from crm_core.results.models import ContactResultRecord
from crm_core.tasks.models import Task
from crm_core.users.models import User

# everything that names a client, moved to the card kept
_MOVED: tuple[tuple[str, Any], ...] = (
    ("communications", Communication),
    ("deals", Deal),
    ("tasks", Task),
    ("phones", ClientPhone),
    ("emails", ClientEmail),
    ("contacts", ContactPerson),
    ("results", ContactResultRecord),
)


async def _fold_callbacks(session: AsyncSession, source_id: int, into_id: int) -> None:
    """Two open callbacks would be one client's two (the index allows one): the kept card's
    takes the other's tries and its earlier due time; the other goes."""
    open_cb = (Task.kind == "callback") & Task.done.is_(False)
    theirs = await session.scalar(select(Task).where(open_cb, Task.client_id == source_id))
    ours = await session.scalar(select(Task).where(open_cb, Task.client_id == into_id))
    if theirs is None or ours is None:
        return
    ours.tries = (ours.tries or 0) + (theirs.tries or 0)
    if theirs.due_at is not None and (ours.due_at is None or theirs.due_at < ours.due_at):
        ours.due_at, ours.remind_at, ours.reminded_at = theirs.due_at, theirs.due_at, None
    await session.delete(theirs)
    await session.flush()


async def merge_client(
    session: AsyncSession, source_id: int, into_id: int, *, actor: User
) -> dict[str, int]:
    """Move the source card's calls, deals, tasks, phones… to `into_id`; delete the source."""
    if source_id == into_id:
        raise Invalid("a card cannot merge into itself", code="merge.itself")
    # lock both in id order: two merges of the same pair never deadlock
    for cid in sorted((source_id, into_id)):
        if await clients_repo.lock_client(session, cid) is None:
            raise NotFound(f"client {cid} not found", code="client.not_found")
    source = await session.get(Client, source_id)
    assert source is not None
    if source.responsible_id is not None and not can_change_assigned(actor, source.responsible_id):
        raise Forbidden(
            "only the card's responsible manager or a supervisor may merge it",
            code="client.not_yours",
        )
    await _fold_callbacks(session, source_id, into_id)
    moved: dict[str, int] = {}
    for name, model in _MOVED:
        result = await session.execute(
            update(model)
            .where(model.client_id == source_id)
            .values(client_id=into_id)
            .execution_options(synchronize_session=False)
        )
        moved[name] = int(getattr(result, "rowcount", 0) or 0)
    session.expunge(source)
    await session.execute(delete(Client).where(Client.id == source_id))
    await session.flush()
    return moved
