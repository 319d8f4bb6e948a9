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


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo:
    """A call in progress as the PBX side reports it, at the moment of one fact.

    The typed input of every function in crm_core.calls.progress: each fact carries the call's
    state when it happened, so nothing on the CRM side asks the tracker again.
    """

    linkedid: str
    direction: str  # "inbound" | "outbound"
    state: str  # waiting | ringing | talking
    caller_number: str | None
    caller_name: str | None
    did_or_dialled: str  # inbound: the DID; outbound: the client's number as dialled
    agent_extension: str | None  # outbound: the agent who placed the call
    ringing: tuple[str, ...]
    talking: str | None
    started_at: datetime
    answered_at: datetime | None
    queue: str | None = None
    queued_at: datetime | None = None
    variables: dict[str, str] = field(default_factory=dict)  # CRM_DEAL_ID, CRM_USER_ID …

    @property
    def client_raw_number(self) -> str | None:
        """The client's side of the call as the PBX spelled it."""
        return self.caller_number if self.direction == "inbound" else self.did_or_dialled


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """Who a call is with, as the CRM matched it when the call started (active_calls columns)."""

    client_id: int | None = None
    deal_id: int | None = None
    client_name: str | None = None
    client_number: str | None = None  # the client's number in E.164
    client_created: bool = False  # the call opened the card


NO_CONTEXT = CallContext()


@dataclass(frozen=True, slots=True)
class CallerFound:
    """look_up_caller's answer, a read: the number's card and its open deal, if there are."""

    e164: str  # the client's number the call is with
    client_id: int | None = None  # None: nobody has this number yet
    client_name: str = ""
    deal_id: int | None = None  # the card's open deal (None: none open)
    # the deal the call is with: a click-to-call's named deal when it is the card's, else the
    # open one (decided by the lookup's SQL)
    call_deal_id: int | None = None
    # the card as a pop shows it, when the lookup read it too (a call's start does)
    card: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CallerAtStart:
    """who_is_calling's answer, from the call's start's one statement."""

    context: CallContext  # who the call is with, as remembered in active_calls
    to_open: bool  # a card or an open deal is still to be opened (progress.open_card)
    card: dict[str, Any] | None = None  # the card as a pop shows it (None: no card yet)


@dataclass(frozen=True, slots=True)
class CallerContext:
    """identify_caller's answer: the caller's card and open deal."""

    client_id: int
    deal_id: int
    client_created: bool
    client_name: str = ""
    e164: str = ""  # the client's number the call is with
