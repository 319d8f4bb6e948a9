"""Contact results per manager (Expo-Volga's "effectiveness of contacts").

A contact with a result is one result record (crm_core/results) set in the period, counted for
the user who set it. Effectiveness is the share of contacts that moved the sale forward:
(offer sent + sale) / (contacts with a result - wrong numbers), in %; a wrong number was never
a contact with the client, so it counts neither way. Postponements per client: over the clients
the manager postponed at least once in the period, the average and the largest number of
"postponed" results per client."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.reports.custom_plans import custom_plans
from crm_core.reports.rules import percent
from crm_core.results.models import RESULT_KINDS
from crm_core.users.models import User

FORWARD_KINDS = ("offer_sent", "sale")  # results that moved the sale forward
NOT_A_CONTACT_KINDS = ("wrong_number",)  # left out of the effectiveness denominator


def counted_figures(
    kinds: Mapping[str, int], clients_postponed: int, postponed_max: int
) -> dict[str, Any]:
    """The figures from the count of each kind, the clients postponed at least once and the
    most postponements of one client (as the SQL counts them)."""
    counts = dict.fromkeys(RESULT_KINDS, 0)
    for kind, n in kinds.items():
        counts[kind] = counts.get(kind, 0) + n
    contacts = sum(counts.values())
    counted = contacts - sum(counts[k] for k in NOT_A_CONTACT_KINDS)
    forward = sum(counts[k] for k in FORWARD_KINDS)
    return {
        "contacts": contacts,
        **counts,
        "effectiveness_percent": percent(forward, counted),
        "clients_postponed": clients_postponed,
        "postponements_per_client_avg": (
            round(counts["postponed"] / clients_postponed, 2) if clients_postponed else None
        ),
        "postponements_per_client_max": postponed_max,
    }


# One pass over the period's records: the count of each kind per user and for the team
# (GROUPING SETS), and, from the postponed ones per client, how many clients each user (and the
# team: a client postponed by two managers, their sum) postponed and the most for one client.
# Rows: (team?, user_id, kind, count, NULL) and (team?, user_id, NULL, clients, most).
_RESULTS_SQL = text(
    """
WITH r AS (
    SELECT user_id, client_id, kind FROM contact_result_records
    WHERE created_at >= :start AND created_at < :end AND (:everyone OR user_id = :user_id)
)
SELECT grouping(user_id) = 1, user_id, kind, count(*), NULL::bigint
FROM r GROUP BY GROUPING SETS ((user_id, kind), (kind))
UNION ALL
SELECT team, user_id, NULL, count(*), max(n)
FROM (SELECT grouping(user_id) = 1 AS team, user_id, client_id, count(*) AS n
      FROM r WHERE kind = 'postponed'
      GROUP BY GROUPING SETS ((user_id, client_id), (client_id))) AS per_client
GROUP BY team, user_id
"""
)


async def results_report(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    user_id: int | None = None,
    people: Sequence[User] = (),
) -> dict[str, Any]:
    """Rows for everyone who set a result in [start, end) and for each of `people` (zeros when
    they set none); `user_id`: that user's results only. The team total counts every record."""
    await custom_plans(session)
    counted = await session.execute(
        _RESULTS_SQL,
        {"start": start, "end": end, "everyone": user_id is None, "user_id": user_id or 0},
    )
    kinds: dict[tuple[bool, int | None], dict[str, int]] = defaultdict(dict)
    postponed: dict[tuple[bool, int | None], tuple[int, int]] = {}
    for team_row, uid, kind, n, most in counted:
        if kind is None:
            postponed[team_row, uid] = (n, most)
        else:
            kinds[team_row, uid][kind] = n
    per_user = {
        uid: counted_figures(counts, *postponed.get((False, uid), (0, 0)))
        for (team_row, uid), counts in kinds.items()
        if not team_row
    }
    team = counted_figures(kinds.get((True, None), {}), *postponed.get((True, None), (0, 0)))
    ids = {u.id for u in people} | {uid for uid in per_user if uid is not None}
    names = dict(
        (await session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))).all()
    )
    empty = counted_figures({}, 0, 0)
    rows = [
        {"user_id": uid, "name": names.get(uid, ""), **per_user.get(uid, empty)}
        for uid in sorted(ids)
    ]
    if None in per_user:  # results set by a since-deleted user
        rows.append({"user_id": None, "name": "(deleted user)", **per_user[None]})
    return {"rows": rows, "total": {"user_id": None, "name": "total", **team}}
