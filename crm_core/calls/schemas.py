from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True, kw_only=True)
class CallRecord:
    """A finished call as the CRM logs it (the PBX side maps its own facts to this)."""

    linkedid: str
    direction: str  # "in" | "out"
    status: str  # answered | abandoned | missed | no_answer | busy | failed
    missed: bool
    client_number: str | None  # the client's number as the PBX gave it
    client_name: str | None
    answered_by: str | None  # extension of the agent who answered (inbound)
    agent_extension: str | None  # the agent on the call: answered (inbound) or placed (outbound)
    final_agent: str | None  # the last agent who talked: the call's owner
    agents_rung: list[str]
    ring_seconds: float
    talk_seconds: float
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    deal_id: int | None = None
    user_id: int | None = None  # CRM_USER_ID of a click-to-call
    client_id: int | None = None  # already matched while the call rang
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CallerContext:
    client_id: int
    deal_id: int
    client_created: bool
    client_name: str = ""
    e164: str = ""  # the client's number the call is with
