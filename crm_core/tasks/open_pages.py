"""Who has a page open: each instance's heartbeat of the users with a live socket on it.

Sockets live in one instance's memory; the reminder scheduler of another instance must know
whether a user is looking at any page before it emails them, so the instances share it here.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import driver_connection
from crm_core.tasks.models import OpenPage

# Two statements whatever the number of users: the ids go as one array parameter, so the
# text never changes (an expanding IN of 500 sockets' users cost the event loop ~10 ms of
# compiling in one step, every heartbeat, and a screen-pop due meanwhile waited for it).
_FORGET_OTHERS = """
DELETE FROM open_pages WHERE instance_id = $1 AND user_id <> ALL($2::int[])
"""
# only users that still exist (a deleted user's socket may linger a moment)
_SEEN_NOW = """
INSERT INTO open_pages (instance_id, user_id, seen_at)
SELECT $1, u.id, now() FROM users u WHERE u.id = ANY($2::int[])
ON CONFLICT (instance_id, user_id) DO UPDATE SET seen_at = now()
"""


async def heartbeat(session: AsyncSession, instance_id: str, user_ids: Collection[int]) -> None:
    """This instance's present users are exactly `user_ids`, as of now."""
    ids = sorted(set(user_ids))
    driver = await driver_connection(session)  # in the session's transaction
    await driver.execute(_FORGET_OTHERS, instance_id, ids)
    if ids:
        await driver.execute(_SEEN_NOW, instance_id, ids)


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
