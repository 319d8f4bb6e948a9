"""Domain events: what happened, published only after the transaction that did it commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DealStageChanged:
    deal_id: int
    client_id: int
    from_stage_id: int | None
    to_stage_id: int
    user_id: int | None
    responsible_id: int | None = None  # their boards follow the deal too (issue 14)


@dataclass(frozen=True, slots=True)
class DealChanged:
    """A deal created or edited (issue 14): boards showing it refresh."""

    type: str  # deal.created | deal.updated
    deal_id: int
    client_id: int
    stage_id: int
    responsible_id: int | None
    user_id: int | None


@dataclass(frozen=True, slots=True)
class CommunicationLogged:
    communication_id: int
    kind: str
    direction: str
    status: str
    client_id: int
    deal_id: int
    user_id: int | None
    created_client: bool = False


@dataclass(frozen=True, slots=True)
class TaskCreated:
    task_id: int
    kind: str
    assignee_id: int | None
    client_id: int | None


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A call fact for people: ringing, answered, transferred, ended (the screen-pop source)."""

    # call.started | call.ringing | call.ring_ended | call.answered | call.transferred |
    # call.queued | call.dequeued | call.ended
    type: str
    linkedid: str
    extensions: tuple[str, ...]  # whose sockets receive it
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """An SMS or email for people: one received, or a sent one's delivery status changed."""

    type: str  # message.received | message.status
    communication_id: int
    kind: str  # sms | email
    direction: str
    status: str
    client_id: int
    deal_id: int
    user_ids: tuple[int, ...]  # whose pages receive it: the responsible manager, the sender
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskChanged:
    """A task rescheduled, reassigned, edited (task.updated) or closed (task.done)."""

    type: str  # task.updated | task.done
    task_id: int
    kind: str
    assignee_id: int | None
    client_id: int | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskReminder:
    """A task's reminder came due: its assignee is told once (crm_core.tasks.reminders)."""

    task_id: int
    assignee_id: int
    payload: dict[str, Any] = field(default_factory=dict)
