"""The deals board: the columns of a pipeline from the rows the repository reads (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from crm_core.deals.models import DealStage
from crm_core.deals.repository import BoardStage
from crm_core.deals.schemas import StageOut

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


def to_json(stages: Iterable[DealStage], parts: Iterable[BoardStage]) -> str:
    """The board as JSON text (the shape of schemas.Board): one column per stage in pipeline
    order, the cards as PostgreSQL wrote them."""
    by_stage = {p.stage_id: p for p in parts}
    columns = []
    for stage in stages:
        part = by_stage.get(stage.id)
        head = StageOut.from_row(stage).model_dump_json()
        total, amount, cards = (part.total, part.amount_total, part.cards) if part else (0, 0, "[]")
        columns.append(
            f'{{"stage":{head},"total":{int(total)},"amount_total":"{Decimal(amount)}",'
            f'"cards":{cards}}}'
        )
    return f'{{"columns":[{",".join(columns)}],"closed_limit":{CLOSED_LIMIT}}}'
