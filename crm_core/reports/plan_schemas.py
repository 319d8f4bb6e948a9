"""Sales plans in and out of the API."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # a sum of money: not negative, at most 12 digits before the point, cents at most
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)


class PlanOut(BaseModel):
    user_id: int
    month: str  # YYYY-MM
    amount: str
