"""The catalogue of messages pages (and other instances) receive: one class per message type.

Each class names its type (`TYPE`, the only place the string is spelled) and describes the
payload as the browser gets it, so `GET /api/events/schema` and the tests share one contract.
Call messages are built as these classes (crm_core.calls.views); other producers still build
plain dicts, and the tests check every message the hub publishes against these schemas.

Supervisors get a summary of call and message payloads (scalars and shallow objects, no lists:
notifier.channels), so whatever the summary may leave out is optional here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class EventMessage(BaseModel):
    """A message's payload; extra keys are allowed so a producer may add news without breakage."""

    model_config = ConfigDict(extra="allow")
    TYPE: ClassVar[str]


# ---- calls (channel ext:<phone> gets them whole, supervisors a summary) -------------------------


class CallView(BaseModel):
    """A call in progress as dashboards and pop cards show it (crm_core.calls.views.call_view).

    Only `linkedid` is sure: a call the tracker no longer holds is shown from what the CRM knows.
    """

    model_config = ConfigDict(extra="allow")
    linkedid: str
    direction: str | None = None
    state: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    did_or_dialled: str | None = None
    agent_extension: str | None = None
    ringing: list[str] | None = None  # left out of the supervisors' summary (a list)
    talking: str | None = None
    started_at: str | None = None
    answered_at: str | None = None
    queue: str | None = None
    queued_at: str | None = None
    client_id: int | None = None
    deal_id: int | None = None
    client_name: str | None = None
    client_number: str | None = None
    client_created: bool | None = None


class _CallMessage(EventMessage):
    linkedid: str
    extensions: list[str]  # whose phones the call concerns


CallMessage = _CallMessage  # what crm_core.calls.views serializes


class _CallStateMessage(_CallMessage):
    call: CallView


class CallStartedMessage(_CallStateMessage):
    TYPE = "call.started"


class CallRingingMessage(_CallStateMessage):
    """The screen-pop, built from a read as the phone rings (it waits for no batch of writes).

    `card` and `new_client` (this call opened the card) when the CRM knows who is calling;
    `new_caller` when its card is being opened (no card yet: `call.card_opened` follows);
    otherwise `unknown` is true and the call's `client_id` null (a hidden or company number).
    """

    TYPE = "call.ringing"
    card: dict[str, Any] | None = None
    new_client: bool | None = None
    unknown: bool | None = None
    # a new caller whose card is being opened: no card yet, `call.card_opened` follows
    new_caller: bool | None = None


class CallRingEndedMessage(_CallStateMessage):
    TYPE = "call.ring_ended"
    result: str | None


class CallAnsweredMessage(_CallStateMessage):
    TYPE = "call.answered"
    answered_by: str | None


class CallQueuedMessage(_CallStateMessage):
    TYPE = "call.queued"
    queue: str | None


class CallDequeuedMessage(_CallStateMessage):
    TYPE = "call.dequeued"
    queue: str | None


class CallTransferredMessage(_CallStateMessage):
    TYPE = "call.transferred"
    from_extension: str | None
    to_extension: str | None
    kind: str


class CallEndedMessage(_CallMessage):
    TYPE = "call.ended"
    status: str
    answered_by: str | None
    missed: bool
    client_number: str | None
    client_id: int | None
    deal_id: int | None
    communication_id: int | None
    talk_seconds: float
    ring_seconds: float


class OriginateFailedMessage(_CallMessage):
    """Click-to-call could not start: the agent's page says why (no call exists: linkedid "")."""

    TYPE = "originate.failed"
    number: str
    deal_id: int
    reason: str


# ---- CRM records ---------------------------------------------------------------------------------


class TaskCreatedMessage(EventMessage):
    TYPE = "task.created"
    task_id: int
    kind: str
    client_id: int | None


class CommunicationLoggedMessage(EventMessage):
    TYPE = "communication.logged"
    communication_id: int
    kind: str
    direction: str
    status: str
    client_id: int
    deal_id: int
    user_id: int | None


class DealStageChangedMessage(EventMessage):
    TYPE = "deal.stage_changed"
    deal_id: int
    client_id: int
    from_stage_id: int | None
    to_stage_id: int
    user_id: int | None


class TaskUpdatedMessage(EventMessage):
    """On the assignee's channel (and the previous assignee's when reassigned)."""

    TYPE = "task.updated"
    id: int
    task_id: int
    kind: str
    client_id: int | None
    due_at: str | None
    remind_at: str | None
    done: bool


class TaskDoneMessage(EventMessage):
    """A task closed: by hand, or a callback closed by the answered call `closed_by_...`."""

    TYPE = "task.done"
    id: int
    task_id: int
    kind: str
    client_id: int | None
    closed_by_communication_id: int | None = None


class TaskReminderMessage(EventMessage):
    """A task's reminder, once, on its assignee's own channel (user:<id>)."""

    TYPE = "task.reminder"
    id: int
    task_id: int
    title: str
    kind: str
    due_at: str | None
    remind_at: str | None
    client_id: int | None
    client_name: str | None
    deal_id: int | None


# ---- SMS and email -------------------------------------------------------------------------------


class _MessageNews(EventMessage):
    communication_id: int
    kind: str  # sms | email
    direction: str
    status: str
    client_id: int
    deal_id: int


class MessageReceivedMessage(_MessageNews):
    TYPE = "message.received"
    from_: str | None = Field(alias="from")
    client_name: str | None
    subject: str | None
    preview: str
    created_client: bool
    sender_verified: bool | None = None  # email only: the From address is the sender's own


class MessageStatusMessage(_MessageNews):
    TYPE = "message.status"
    to: str | None
    error: str | None


# ---- the connection itself (web/ws.py): no seq, no channel, fields beside "type" ---------------


class SubscribedMessage(EventMessage):
    TYPE = "subscribed"
    channels: list[str]
    last_seq: int


class ReplayTruncatedMessage(EventMessage):
    """The page missed more than can be replayed: it reloads its state."""

    TYPE = "replay.truncated"
    after: int


class PingMessage(EventMessage):
    """Answered by the page with {"type": "pong"} (any message proves it alive)."""

    TYPE = "ping"


class SystemStatusMessage(EventMessage):
    """Whether the service follows the PBX (sent to a socket that asked with `"status": true`,
    at once and on every change): `ami` is up, down, standby (another instance follows the PBX)
    or disabled (no AMI configured here)."""

    TYPE = "system.status"
    ami: str


# ---- deals board (issue 14) ---------------------------------------------------------------------


class _DealNews(EventMessage):
    deal_id: int
    client_id: int
    stage_id: int
    responsible_id: int | None
    user_id: int | None  # who did it


class DealCreatedMessage(_DealNews):
    TYPE = "deal.created"


class DealUpdatedMessage(_DealNews):
    TYPE = "deal.updated"


# ---- agent presence (issue 16): supervisors, and the agent's own user channel ------------------


class AgentPresenceMessage(EventMessage):
    """An agent's presence changed: available | paused | dnd | wrapup (`until`: its end)."""

    TYPE = "agent.presence"
    user_id: int
    extension: str | None
    state: str
    reason: str | None
    since: str
    until: str | None
    source: str  # api | pbx | call


# ---- the screen-pop's follow-up (issue 13 item 8) -----------------------------------------------


class CallCardOpenedMessage(_CallStateMessage):
    """The card a new caller's call opened (or the open deal a card lacked), once committed.

    It follows a `call.ringing` that said `new_caller` (the pop waits for no write): to the
    agents rung before the card existed and to the supervisors. `card` is shaped as the pop's;
    `call` carries only who the call is with (its state comes with the other call messages).
    """

    TYPE = "call.card_opened"
    client_id: int
    client_name: str | None
    deal_id: int | None
    card: dict[str, Any] | None = None
    new_client: bool | None = None


class CallCardFailedMessage(_CallStateMessage):
    """The card a call's start found missing (a new caller's, or the open deal a card lacked)
    could not be opened: its batch failed, and again alone. The agents whose `call.ringing` went
    out without it stop waiting for `call.card_opened`; a `new_caller` pop says so. The call is
    still logged when it ends, on a card (and deal) opened then. `call` names the call only."""

    TYPE = "call.card_failed"


class CallHungUpMessage(_CallMessage):
    """The call is over at the PBX: its row leaves the supervisors' boards and its agents are
    free at once. Sent with the agents' phones (the live lane), before the log: `call.ended`
    follows with the outcome once the call is logged (the communication, a missed call's
    callback). Supervisors only (`extensions` empty): agents' pages wait for `call.ended`."""

    TYPE = "call.hung_up"
    at: str


CATALOGUE: tuple[type[EventMessage], ...] = (
    CallStartedMessage,
    CallRingingMessage,
    CallRingEndedMessage,
    CallAnsweredMessage,
    CallQueuedMessage,
    CallDequeuedMessage,
    CallTransferredMessage,
    CallEndedMessage,
    OriginateFailedMessage,
    TaskCreatedMessage,
    CommunicationLoggedMessage,
    DealStageChangedMessage,
    MessageReceivedMessage,
    MessageStatusMessage,
    SubscribedMessage,
    ReplayTruncatedMessage,
    PingMessage,
    SystemStatusMessage,
    TaskUpdatedMessage,
    TaskDoneMessage,
    TaskReminderMessage,
    DealCreatedMessage,
    DealUpdatedMessage,
    AgentPresenceMessage,
    CallCardOpenedMessage,
    CallCardFailedMessage,
    CallHungUpMessage,
)
BY_TYPE: dict[str, type[EventMessage]] = {cls.TYPE: cls for cls in CATALOGUE}
# control messages carry their fields beside "type" rather than in a numbered frame's payload
CONTROL_TYPES = frozenset(
    {
        SubscribedMessage.TYPE,
        ReplayTruncatedMessage.TYPE,
        PingMessage.TYPE,
        SystemStatusMessage.TYPE,
    }
)


def payload_schemas() -> dict[str, dict[str, Any]]:
    """Message type -> JSON Schema of its payload (what GET /api/events/schema returns)."""
    return {cls.TYPE: cls.model_json_schema() for cls in CATALOGUE}
