"""All SQL of routing: raw statements for the router's hot path, ORM queries for the status view.

The hot path runs on a bare asyncpg connection (no ORM, no session, no pool reset): it is on the
way of every inbound call, and the whole batch of concurrent calls shares two round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import AgentState
from crm_core.routing.models import RoutingTurn
from crm_core.routing.rules import ROUTABLE_ROLES, Agent, CallerInfo
from crm_core.schedules.rules import Schedule, ScheduleChange, WeeklyInterval
from crm_core.users.models import User

# --- the hot path (asyncpg, positional parameters) -------------------------------------------

ROUTABLE_USERS_SQL = """
SELECT id, extension, timezone FROM users
WHERE is_active AND extension IS NOT NULL AND extension <> '' AND role = ANY($1::text[])
ORDER BY id
"""
INTERVALS_SQL = """
SELECT user_id, weekday, start_time, end_time FROM schedule_intervals
WHERE user_id = ANY($1::int[])
"""
EXCEPTIONS_SQL = """
SELECT user_id, kind, start_date, end_date, start_time, end_time FROM schedule_exceptions
WHERE user_id = ANY($1::int[])
"""
# One round trip per batch: the callers (each distinct E.164 probed in the unique index of
# client_phones; not `e164 = ANY($1)`, which a cached generic plan evaluates as a linear scan of
# the array per row: 5.5 ms instead of 0.9 ms for a batch of 200 calls; and through LATERAL …
# LIMIT 1, which the planner cannot flatten into a join: as a join, the generic plan (estimating
# 10 numbers) hashed the whole client_phones table on every batch, 0.28 ms instead of 0.05 ms for
# a batch of one call at 2,000 phones, and growing with the table) with their responsible
# agent and open deal, which on-duty extensions are ringing or talking, and the round-robin picks
# for the calls that need one.
# The count of picks repeats rules.plan_batch in SQL (a call needs a pick unless its responsible
# agent is on duty and free) so the pick rides in the same statement; the router checks that both
# agree. $1 e164 per call ('' for unknown), $2/$3 on-duty user ids/extensions, $4 busy states,
# $5 now (the router's clock: a wrap-up is over when its `until` has passed), $6 the last
# out-of-sync episode (pbx_sync.epoch) the router gave up waiting for.
# `unsynced`: agent_states may not follow the PBX (crm_core/calls/pbx_sync.py): a row, and no
# picks taken, unless the router gave up on that episode; it waits and asks again. In sync,
# nobody ever following a PBX (no row), or out of sync for over 10 minutes (the PBX long out of
# reach, or AMI switched off after a follower's clean stop: nobody is coming to say otherwise)
# it adds nothing to the answer.
# `away`: agents paused, do-not-disturb or in wrap-up (crm_core.presence.rules.AWAY) are never
# dealt a call, neither as the responsible agent nor by round-robin.
BATCH_SQL = """
WITH calls AS (SELECT unnest($1::text[]) AS e164),
callers AS (
    SELECT p.e164, c.id AS client_id, c.responsible_id,
           (SELECT d.id FROM deals d WHERE d.client_id = c.id AND d.closed_at IS NULL
            ORDER BY d.id DESC LIMIT 1) AS deal_id
    FROM (SELECT DISTINCT e164 FROM calls WHERE e164 <> '') AS n
    CROSS JOIN LATERAL (
        SELECT p.e164, p.client_id FROM client_phones p WHERE p.e164 = n.e164 LIMIT 1
    ) AS p
    JOIN clients c ON c.id = p.client_id
),
busy AS (
    SELECT extension FROM agent_states
    WHERE extension = ANY($3::text[]) AND state = ANY($4::text[])
),
away AS (
    SELECT user_id FROM agent_presence
    WHERE user_id = ANY($2::int[])
      AND (state IN ('paused', 'dnd') OR (state = 'wrapup' AND until > $5::timestamptz))
),
free AS (
    SELECT d.id FROM unnest($2::int[], $3::text[]) AS d(id, ext)
    WHERE d.ext NOT IN (SELECT extension FROM busy) AND d.id NOT IN (SELECT user_id FROM away)
),
need AS (
    SELECT count(*)::int AS n FROM calls LEFT JOIN callers USING (e164)
    WHERE callers.responsible_id IS NULL
       OR callers.responsible_id NOT IN (SELECT id FROM free)
),
unsynced AS (
    SELECT epoch FROM pbx_sync
    WHERE NOT synced AND epoch > $6::bigint AND since > $5::timestamptz - interval '10 minutes'
)
SELECT 'c' AS kind, e164 AS key, client_id, responsible_id, deal_id, NULL::int[] AS picks
FROM callers
UNION ALL
SELECT 'b', extension, NULL, NULL, NULL, NULL FROM busy
UNION ALL
SELECT 'a', user_id::text, NULL, NULL, NULL, NULL FROM away
UNION ALL
SELECT 's', epoch::text, NULL, NULL, NULL, NULL FROM unsynced
UNION ALL
SELECT 'p', NULL, NULL, NULL, NULL,
       routing_pick(
           ARRAY(SELECT id FROM free ORDER BY id),
           CASE WHEN EXISTS (SELECT 1 FROM unsynced) THEN 0 ELSE (SELECT n FROM need) END
       )
"""
SCHEDULES_CHANNEL = "crm_schedules"


def agents_from_rows(users: list[Any], intervals: list[Any], exceptions: list[Any]) -> list[Agent]:
    """Rows of the three schedule queries (mappings by column name) -> agents with schedules."""
    weekly: dict[int, list[WeeklyInterval]] = {}
    for r in intervals:
        weekly.setdefault(r["user_id"], []).append(
            WeeklyInterval(r["weekday"], r["start_time"], r["end_time"])
        )
    changes: dict[int, list[ScheduleChange]] = {}
    for r in exceptions:
        changes.setdefault(r["user_id"], []).append(
            ScheduleChange(
                r["kind"], r["start_date"], r["end_date"], r["start_time"], r["end_time"]
            )
        )
    return [
        Agent(
            u["id"],
            u["extension"],
            Schedule(
                u["id"],
                u["timezone"],
                tuple(weekly.get(u["id"], ())),
                tuple(changes.get(u["id"], ())),
            ),
        )
        for u in users
    ]


@dataclass(frozen=True, slots=True)
class BatchRead:
    """What BATCH_SQL found for a batch of calls."""

    callers: dict[str, CallerInfo]  # by E.164
    busy: set[str]  # extensions ringing or talking
    picks: list[int]  # round-robin picks, in order
    away: set[int]  # user ids paused, DND or in wrap-up
    # agent_states may not follow the PBX: that episode (pbx_sync.epoch); no picks were taken
    unsynced: int | None = None


def batch_result(rows: list[Any]) -> BatchRead:
    """Rows of BATCH_SQL -> what they say."""
    callers: dict[str, CallerInfo] = {}
    busy: set[str] = set()
    picks: list[int] = []
    away: set[int] = set()
    unsynced: int | None = None
    for r in rows:
        kind = r["kind"]
        if kind == "c":
            callers[r["key"]] = CallerInfo(r["client_id"], r["responsible_id"], r["deal_id"])
        elif kind == "b":
            busy.add(r["key"])
        elif kind == "a":
            away.add(int(r["key"]))
        elif kind == "s":
            unsynced = int(r["key"])
        else:
            picks = list(r["picks"] or ())
    return BatchRead(callers, busy, picks, away, unsynced)


# --- the status view (ORM; not on a call's path) ---------------------------------------------


async def routable_users(session: AsyncSession) -> list[User]:
    rows = await session.scalars(
        select(User)
        .where(
            User.is_active.is_(True),
            User.extension.is_not(None),
            User.extension != "",
            User.role.in_(ROUTABLE_ROLES),
        )
        .order_by(User.id)
    )
    return list(rows.all())


async def agent_states(session: AsyncSession, extensions: list[str]) -> dict[str, str]:
    rows = await session.execute(
        select(AgentState.extension, AgentState.state).where(AgentState.extension.in_(extensions))
    )
    return {ext: state for ext, state in rows.all()}


async def turns(session: AsyncSession, user_ids: list[int]) -> dict[int, tuple[int, int]]:
    """user id -> (last ticket, calls dealt so far)."""
    rows = await session.execute(
        select(RoutingTurn.user_id, RoutingTurn.last_ticket, RoutingTurn.routed_count).where(
            RoutingTurn.user_id.in_(user_ids)
        )
    )
    return {uid: (ticket, count) for uid, ticket, count in rows.all()}
