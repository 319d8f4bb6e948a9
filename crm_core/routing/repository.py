"""All SQL of routing: raw statements for the router's hot path, ORM queries for the status view.

The hot path runs on a bare asyncpg connection (no ORM, no session, no pool reset): it is on the
way of every inbound call, and the whole batch of concurrent calls shares two round trips.
"""

from __future__ import annotations

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
# The callers of a batch (by E.164, the unique index of client_phones, as client_id_by_phone
# probes it) with their responsible agent and open deal, and which of the on-duty extensions are
# ringing or talking: one round trip.
LOOKUP_SQL = """
SELECT p.e164 AS key, c.id AS client_id, c.responsible_id,
       (SELECT d.id FROM deals d WHERE d.client_id = c.id AND d.closed_at IS NULL
        ORDER BY d.id DESC LIMIT 1) AS deal_id,
       NULL::text AS state
FROM client_phones p JOIN clients c ON c.id = p.client_id
WHERE p.e164 = ANY($1::text[])
UNION ALL
SELECT s.extension, NULL, NULL, NULL, s.state FROM agent_states s
WHERE s.extension = ANY($2::text[]) AND s.state = ANY($3::text[])
"""
# n round-robin picks among the candidates (migration 0002): fair across instances.
PICK_SQL = "SELECT routing_pick($1::int[], $2::int)"
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


def callers_and_busy(rows: list[Any]) -> tuple[dict[str, CallerInfo], set[str]]:
    callers: dict[str, CallerInfo] = {}
    busy: set[str] = set()
    for r in rows:
        if r["state"] is not None:
            busy.add(r["key"])
        else:
            callers[r["key"]] = CallerInfo(r["client_id"], r["responsible_id"], r["deal_id"])
    return callers, busy


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
