from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from crm_core.inputs import Id, Patch, Text


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
