"""The contact results report folded in Python from (user, client, kind, count) groups: the
reference the SQL's counts are checked against (the report itself counts in one statement,
crm_core/reports/results_report.py); the arithmetic on the counts is the report's own
`counted_figures`, pinned by hand-computed figures in test_results_report_rules.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from crm_core.reports.results_report import counted_figures

# (user_id, client_id, kind, count): records grouped
Group = tuple[int | None, int, str, int]


def figures(groups: Iterable[tuple[int, str, int]]) -> dict[str, Any]:
    """One person's (or the team's) figures from (client_id, kind, count) groups."""
    kinds: dict[str, int] = {}
    postponed: dict[int, int] = defaultdict(int)
    for client_id, kind, n in groups:
        kinds[kind] = kinds.get(kind, 0) + n
        if kind == "postponed":
            postponed[client_id] += n
    return counted_figures(kinds, len(postponed), max(postponed.values(), default=0))


def fold(groups: Iterable[Group]) -> tuple[dict[int | None, dict[str, Any]], dict[str, Any]]:
    """Per user and for the team (a client postponed by two managers: their sum for the team)."""
    per_user: dict[int | None, list[tuple[int, str, int]]] = defaultdict(list)
    team: list[tuple[int, str, int]] = []
    for user_id, client_id, kind, n in groups:
        per_user[user_id].append((client_id, kind, n))
        team.append((client_id, kind, n))
    return {uid: figures(g) for uid, g in per_user.items()}, figures(team)
