"""Who has a page open: each instance's heartbeat of the users with a live socket on it.

Sockets live in one instance's memory; the reminder scheduler of another instance must know
whether a user is looking at any page before it emails them, so the instances share it here.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import String, delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.tasks.models import OpenPage
from crm_core.users.models import User


async def heartbeat(session: AsyncSession, instance_id: str, user_ids: Collection[int]) -> None:
    """This instance's present users are exactly `user_ids`, as of now."""
    ids = sorted(set(user_ids))
    await session.execute(
        delete(OpenPage).where(OpenPage.instance_id == instance_id, OpenPage.user_id.not_in(ids))
    )
    if ids:
        # only users that still exist (a deleted user's socket may linger a moment)
        rows = select(literal(instance_id, String(64)), User.id, func.now())
        stmt = insert(OpenPage).from_select(
            ["instance_id", "user_id", "seen_at"], rows.where(User.id.in_(ids))
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["instance_id", "user_id"], set_={"seen_at": func.now()}
            )
        )


async def leave(session: AsyncSession, instance_id: str) -> None:
    await session.execute(delete(OpenPage).where(OpenPage.instance_id == instance_id))


async def present_users(
    session: AsyncSession, user_ids: Collection[int], ttl: timedelta
) -> set[int]:
    """Those of `user_ids` some instance saw with a page open within `ttl`."""
    if not user_ids:
        return set()
    rows = await session.scalars(
        select(OpenPage.user_id)
        .where(
            OpenPage.user_id.in_(set(user_ids)),
            OpenPage.seen_at > func.now() - ttl,
        )
        .distinct()
    )
    return set(rows.all())
