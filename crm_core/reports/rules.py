"""Report arithmetic: pure functions, no I/O."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, last: date) -> list[date]:
    """First days of the months [first, last] touches."""
    out, m = [], month_start(first)
    while m <= last:
        out.append(m)
        m = (m + timedelta(days=32)).replace(day=1)
    return out


def period_plan(plans: Mapping[date, Decimal], first: date, last: date) -> Decimal:
    """A monthly plan's share for the days [first, last]: each month's amount in proportion to
    the days of it the period covers (a whole month: the whole amount)."""
    total = Decimal(0)
    for m in months_between(first, last):
        amount = plans.get(m)
        if not amount:
            continue
        days = calendar.monthrange(m.year, m.month)[1]
        lo = max(first, m)
        hi = min(last, m.replace(day=days))
        total += amount * Decimal((hi - lo).days + 1) / Decimal(days)
    return total.quantize(CENT, ROUND_HALF_UP)


def percent(part: float | Decimal, whole: float | Decimal) -> float | None:
    """part/whole in %, one decimal; None when there is nothing to divide by."""
    if not whole:
        return None
    return round(float(part) * 100.0 / float(whole), 1)


def money(value: Decimal | int | float | None) -> str:
    return str(Decimal(value or 0).quantize(CENT, ROUND_HALF_UP))


def queue_figures(
    queue: str,
    offered: int,
    answered: int,
    abandoned: int,
    short_abandoned: int,
    answered_in_sl: int,
    wait_to_answer_s: float,
    longest_wait_s: float,
) -> dict[str, Any]:
    """One queue's figures for a period. Short abandons (within SHORT_ABANDON_SECONDS) are
    counted apart and left out of the percentages: they say nothing of the queue's service."""
    counted = offered - short_abandoned
    return {
        "queue": queue,
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "short_abandoned": short_abandoned,
        "other_exits": max(0, offered - answered - abandoned - short_abandoned),
        "abandon_percent": percent(abandoned, counted),
        "service_level_percent": percent(answered_in_sl, counted),
        "answered_in_service_level": answered_in_sl,
        "asa_seconds": round(wait_to_answer_s / answered, 1) if answered else None,
        "longest_wait_seconds": round(longest_wait_s, 1),
    }


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> str:
    """Rows as CSV (a header line, then one line per row; None as empty)."""
    import csv
    import io

    cols = list(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in cols])
    return buf.getvalue()
