"""Contact results per manager (Expo-Volga's "effectiveness of contacts").

A contact with a result is one result record (crm_core/results) set in the period, counted for
the user who set it. Effectiveness is the share of contacts that moved the sale forward:
(offer sent + sale) / (contacts with a result - wrong numbers), in %; a wrong number was never
a contact with the client, so it counts neither way. Postponements per client: over the clients
the manager postponed at least once in the period, the average and the largest number of
"postponed" results per client."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.reports.rules import percent
from crm_core.results.models import RESULT_KINDS, ContactResultRecord
from crm_core.users.models import User

FORWARD_KINDS = ("offer_sent", "sale")  # results that moved the sale forward
NOT_A_CONTACT_KINDS = ("wrong_number",)  # left out of the effectiveness denominator

# (user_id, client_id, kind, count): records grouped as the SQL returns them
Group = tuple[int | None, int, str, int]


def figures(groups: Iterable[tuple[int, str, int]]) -> dict[str, Any]:
    """One person's (or the team's) figures from (client_id, kind, count) groups."""
    kinds = dict.fromkeys(RESULT_KINDS, 0)
    postponed: dict[int, int] = defaultdict(int)
    for client_id, kind, n in groups:
        kinds[kind] = kinds.get(kind, 0) + n
        if kind == "postponed":
            postponed[client_id] += n
    contacts = sum(kinds.values())
    counted = contacts - sum(kinds[k] for k in NOT_A_CONTACT_KINDS)
    forward = sum(kinds[k] for k in FORWARD_KINDS)
    return {
        "contacts": contacts,
        **kinds,
        "effectiveness_percent": percent(forward, counted),
        "clients_postponed": len(postponed),
        "postponements_per_client_avg": (
            round(sum(postponed.values()) / len(postponed), 2) if postponed else None
        ),
        "postponements_per_client_max": max(postponed.values(), default=0),
    }


def fold(groups: Iterable[Group]) -> tuple[dict[int | None, dict[str, Any]], dict[str, Any]]:
    """Per user and for the team (a client postponed by two managers: their sum for the team)."""
    per_user: dict[int | None, list[tuple[int, str, int]]] = defaultdict(list)
    team: list[tuple[int, str, int]] = []
    for user_id, client_id, kind, n in groups:
        per_user[user_id].append((client_id, kind, n))
        team.append((client_id, kind, n))
    return {uid: figures(g) for uid, g in per_user.items()}, figures(team)


async def results_report(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    user_id: int | None = None,
    people: Sequence[User] = (),
) -> dict[str, Any]:
    """Rows for everyone who set a result in [start, end) and for each of `people` (zeros when
    they set none); `user_id`: that user's results only. The team total counts every record."""
    r = ContactResultRecord
    q = (
        select(r.user_id, r.client_id, r.kind, func.count())
        .where(r.created_at >= start, r.created_at < end)
        .group_by(r.user_id, r.client_id, r.kind)
    )
    if user_id is not None:
        q = q.where(r.user_id == user_id)
    groups: list[Group] = [(u, c, k, n) for u, c, k, n in await session.execute(q)]
    per_user, team = fold(groups)
    ids = {u.id for u in people} | {uid for uid in per_user if uid is not None}
    names = {
        u.id: u.full_name
        for u in (await session.scalars(select(User).where(User.id.in_(ids)))).all()
    }
    empty = figures(())
    rows = [
        {"user_id": uid, "name": names.get(uid, ""), **per_user.get(uid, empty)}
        for uid in sorted(ids)
    ]
    if None in per_user:  # results set by a since-deleted user
        rows.append({"user_id": None, "name": "(deleted user)", **per_user[None]})
    return {"rows": rows, "total": {"user_id": None, "name": "total", **team}}
