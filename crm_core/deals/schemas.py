from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from crm_core.deals.models import Deal, DealStage, DealStageMove
from crm_core.inputs import Id, Patch, Text
from crm_core.outputs import IsoDatetime


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
    lost_reason: Text | None = Field(default=None, max_length=2000)


class StageOut(BaseModel):
    id: int
    name: str
    position: int
    is_closed: bool
    is_won: bool

    @classmethod
    def from_row(cls, s: DealStage) -> StageOut:
        return cls(
            id=s.id, name=s.name, position=s.position, is_closed=s.is_closed, is_won=s.is_won
        )


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
        )


class StageMoveOut(BaseModel):
    from_stage_id: int | None
    to_stage_id: int
    user_id: int | None
    moved_at: IsoDatetime | None

    @classmethod
    def from_row(cls, m: DealStageMove) -> StageMoveOut:
        return cls(
            from_stage_id=m.from_stage_id,
            to_stage_id=m.to_stage_id,
            user_id=m.user_id,
            moved_at=m.moved_at,
        )


class DealWithMoves(DealOut):
    """One deal with its stage history, oldest move first."""

    moves: list[StageMoveOut]
