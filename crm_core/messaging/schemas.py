from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from crm_core.inputs import Text

# Twilio's limit for one message's Body (it splits it into segments itself)
SMS_MAX_LENGTH = 1600


class SmsCreate(BaseModel):
    text: Text = Field(min_length=1, max_length=SMS_MAX_LENGTH)
    phone: Text | None = Field(default=None, description="one of the card's phones; default first")


class EmailCreate(BaseModel):
    subject: Text = Field(min_length=1, max_length=500)
    body: Text = Field(min_length=1, max_length=200_000)
    to: Text | None = Field(default=None, description="one of the card's emails; default first")


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row a worker holds, detached from any session (sending happens outside one)."""

    id: int
    kind: str
    communication_id: int
    payload: dict[str, Any]
    attempts: int  # this attempt's number, from 1; also the fencing token of the claim
    max_attempts: int
