from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from crm_core.deals.models import Deal, DealStageMove
from crm_core.inputs import Id, Patch, Text
from crm_core.outputs import IsoDatetime, RowOut

StageKind = Literal["open", "won", "lost"]
ChoiceKind = Literal["lost_reason", "lead_source"]


class DealCreate(BaseModel):
    client_id: Id
    title: Text = Field(min_length=1, max_length=200)
    amount: Decimal = Field(default=Decimal("0"), ge=0, max_digits=14, decimal_places=2)
    currency: Text = Field(default="RUB", pattern=r"^[A-Z]{3}$")
    responsible_id: Id | None = None
    lead_source: Text | None = Field(default=None, max_length=100)
    stage_id: Id | None = None


class DealUpdate(Patch):
    nullable = frozenset({"responsible_id", "lead_source"})

    title: Text | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    currency: Text | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    responsible_id: Id | None = None
    lead_source: Text | None = Field(default=None, max_length=100)


class StageMove(BaseModel):
    stage_id: Id | None = None
    stage: Text | None = Field(default=None, description="stage name, instead of stage_id")
    lost_reason: Text | None = Field(
        default=None, max_length=2000, description="required when the stage closes as lost"
    )
    amount: Decimal | None = Field(
        default=None,
        gt=0,
        max_digits=14,
        decimal_places=2,
        description="sets the deal's amount; a won stage needs one here or on the deal",
    )

    @field_validator("lost_reason")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None


def _stripped(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be blank")
    return v


class StageCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=64)
    kind: StageKind = "open"

    _strip = field_validator("name")(_stripped)


class StageUpdate(Patch):
    name: Text | None = Field(default=None, min_length=1, max_length=64)
    kind: StageKind | None = None

    @field_validator("name")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return _stripped(v) if v is not None else None


class Order(BaseModel):
    """Every id of the list, in the new order."""

    ids: list[Id] = Field(min_length=1, max_length=500)


class ChoiceCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=100)

    _strip = field_validator("name")(_stripped)


class ChoiceOut(RowOut):
    id: int
    kind: ChoiceKind
    name: str
    position: int


class StageOut(RowOut):
    id: int
    name: str
    position: int
    is_closed: bool
    is_won: bool
    kind: StageKind


class DealOut(BaseModel):
    id: int
    client_id: int
    title: str
    amount: str  # the Decimal written out ("1500.00"): a float would round money
    currency: str
    responsible_id: int | None
    lead_source: str | None
    stage_id: int
    stage: str | None  # the stage's name, when the row came with it
    is_closed: bool
    created_at: IsoDatetime | None
    closed_at: IsoDatetime | None
    lost_reason: str | None
    stage_since: IsoDatetime | None

    @classmethod
    def from_row(cls, d: Deal) -> DealOut:
        # the stage is named only when loaded: reading it otherwise would query (lazy IO in async)
        stage = d.__dict__.get("stage")
        return cls(
            id=d.id,
            client_id=d.client_id,
            title=d.title,
            amount=str(d.amount),
            currency=d.currency,
            responsible_id=d.responsible_id,
            lead_source=d.lead_source,
            stage_id=d.stage_id,
            stage=stage.name if stage else None,
            is_closed=d.closed_at is not None,
            created_at=d.created_at,
            closed_at=d.closed_at,
            lost_reason=d.lost_reason,
            stage_since=d.__dict__.get("stage_since"),
        )


class StageMoveOut(BaseModel):
    from_stage_id: int | None
    to_stage_id: int
    user_id: int | None
    moved_at: IsoDatetime | None
    lost_reason: str | None = None
    # names, when the history was read with them (GET /api/deals/{id})
    from_stage: str | None = None
    to_stage: str | None = None
    user_name: str | None = None

    @classmethod
    def from_row(
        cls,
        m: DealStageMove,
        *,
        stage_names: dict[int, str] | None = None,
        user_name: str | None = None,
    ) -> StageMoveOut:
        names = stage_names or {}
        return cls(
            from_stage_id=m.from_stage_id,
            to_stage_id=m.to_stage_id,
            user_id=m.user_id,
            moved_at=m.moved_at,
            lost_reason=m.lost_reason,
            from_stage=names.get(m.from_stage_id) if m.from_stage_id is not None else None,
            to_stage=names.get(m.to_stage_id),
            user_name=user_name,
        )


class DealWithMoves(DealOut):
    """One deal with its stage history, oldest move first."""

    moves: list[StageMoveOut]


class BoardCard(BaseModel):
    id: int
    client_id: int
    client_name: str
    title: str
    amount: str
    currency: str
    responsible_id: int | None
    responsible_name: str | None
    lead_source: str | None
    stage_id: int
    stage_since: IsoDatetime
    days_in_stage: int
    last_contact_at: IsoDatetime | None
    closed_at: IsoDatetime | None
    lost_reason: str | None


class BoardColumn(BaseModel):
    stage: StageOut
    total: int  # matching deals in the stage (a won/lost zone shows only the latest)
    amount_total: str  # the sum of their amounts, whatever the currency (a rough figure)
    cards: list[BoardCard]


class Board(BaseModel):
    columns: list[BoardColumn]
    closed_limit: int  # how many of the latest won/lost deals a closed column carries
