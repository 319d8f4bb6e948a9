"""The deals board: the columns of a pipeline from the rows the repository reads (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import RowMapping

from crm_core.deals.models import DealStage
from crm_core.deals.schemas import Board, BoardCard, BoardColumn, StageOut

# how many of the latest won and lost deals each closed column carries
CLOSED_LIMIT = 50


def period(
    date_from: date | None, date_to: date | None, tz: str
) -> tuple[datetime | None, datetime | None]:
    """Whole days in the viewer's time zone, `date_to` included -> [start, end) moments."""
    zone = ZoneInfo(tz)
    start = datetime.combine(date_from, time.min, zone) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time.min, zone) if date_to else None
    return start, end


def card(row: RowMapping, now: datetime) -> BoardCard:
    return BoardCard.model_construct(
        id=row["id"],
        client_id=row["client_id"],
        client_name=row["client_name"],
        title=row["title"],
        amount=str(row["amount"]),
        currency=row["currency"],
        responsible_id=row["responsible_id"],
        responsible_name=row["responsible_name"],
        lead_source=row["lead_source"],
        stage_id=row["stage_id"],
        stage_since=row["stage_since"],
        days_in_stage=max(0, (now - row["stage_since"]).days),
        last_contact_at=row["last_contact_at"],
        closed_at=row["closed_at"],
        lost_reason=row["lost_reason"],
    )


def build(
    stages: Iterable[DealStage],
    open_rows: Iterable[RowMapping],
    closed_rows: Iterable[RowMapping],
    now: datetime,
) -> Board:
    """One column per stage in pipeline order; open columns hold every matching deal, closed
    ones their latest CLOSED_LIMIT with the stage's full count and sum."""
    cards: dict[int, list[BoardCard]] = {}
    totals: dict[int, tuple[int, Decimal]] = {}
    for row in open_rows:
        cards.setdefault(row["stage_id"], []).append(card(row, now))
        count, amount = totals.get(row["stage_id"], (0, Decimal(0)))
        totals[row["stage_id"]] = (count + 1, amount + row["amount"])
    for row in closed_rows:
        cards.setdefault(row["stage_id"], []).append(card(row, now))
        totals[row["stage_id"]] = (row["total"], row["amount_total"])
    columns = []
    for stage in stages:
        count, amount = totals.get(stage.id, (0, Decimal(0)))
        columns.append(
            BoardColumn.model_construct(
                stage=StageOut.from_row(stage),
                total=count,
                amount_total=str(amount),
                cards=cards.get(stage.id, []),
            )
        )
    return Board.model_construct(columns=columns, closed_limit=CLOSED_LIMIT)
