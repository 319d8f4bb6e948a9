"""Whether agent_states follow the PBX right now (the `pbx_sync` row), and the news of it.

The follower of the PBX writes it: a follower claims it as it starts (out of sync: whoever
wrote agent_states before may have died with calls up); its live lane marks it out of sync when
the AMI link is lost and in sync in the commit of a reconnect's reconcile, so that the agents of
calls that ended unseen are free when it says so. Only the last follower to claim it writes: a
follower still draining after another took over (a demotion, a rolling restart) changes nothing.
The routers read it with their batch (crm_core/routing/repository.py:BATCH_SQL) and wait for the
NOTIFY on `CHANNEL`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "crm_pbx_sync"

# The NOTIFY goes out at the COMMIT, if the write was made (a router reads the row again: the
# news is that it changed); `epoch` + 1 each time it goes out of sync (a new episode, which a
# router that gave up on the last one waits for).
_NOTIFY = f"\nSELECT pg_notify('{CHANNEL}', '') FROM marked"
_CLAIM = text(
    """
WITH marked AS (
    INSERT INTO pbx_sync (id, follower, synced, epoch, since) VALUES (1, :follower, false, 1, :at)
    ON CONFLICT (id) DO UPDATE SET
        follower = EXCLUDED.follower, synced = false, epoch = pbx_sync.epoch + 1,
        since = EXCLUDED.since
    RETURNING id
)"""
    + _NOTIFY
)
_MARK = text(
    """
WITH marked AS (
    UPDATE pbx_sync SET
        synced = CAST(:synced AS boolean),
        epoch = epoch + CASE WHEN CAST(:synced AS boolean) THEN 0 ELSE 1 END,
        since = :at
    WHERE id = 1 AND follower = :follower
    RETURNING id
)"""
    + _NOTIFY
)


async def claim(session: AsyncSession, follower: uuid.UUID, at: datetime) -> None:
    """`follower` starts following the PBX: out of sync until its first reconcile commits."""
    await session.execute(_CLAIM, {"follower": follower, "at": at})


async def mark(session: AsyncSession, follower: uuid.UUID, *, synced: bool, at: datetime) -> bool:
    """In the caller's transaction, if `follower` is still the one that claimed it last (then
    True): the routers see it (and are told) at its COMMIT."""
    result = await session.execute(_MARK, {"follower": follower, "synced": synced, "at": at})
    return result.first() is not None
