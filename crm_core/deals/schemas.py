from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field


class DealCreate(BaseModel):
    client_id: int
    title: str = Field(min_length=1, max_length=200)
    amount: Decimal = Field(default=Decimal("0"), ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$")
    responsible_id: int | None = None
    lead_source: str | None = Field(default=None, max_length=100)
    stage_id: int | None = None


class DealUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    responsible_id: int | None = None
    lead_source: str | None = Field(default=None, max_length=100)


class StageMove(BaseModel):
    stage_id: int | None = None
    stage: str | None = Field(default=None, description="stage name, instead of stage_id")
    lost_reason: str | None = Field(default=None, max_length=2000)
