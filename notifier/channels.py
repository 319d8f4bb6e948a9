"""Channel names, who may read them, and domain event -> channel message mapping (all pure).

Every channel name in the service comes from the functions here, so the publisher, the websocket
endpoint and the REST catch-up can never disagree on spelling or on access rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from crm_core.events.messages import (
    AgentPresenceMessage,
    CommunicationLoggedMessage,
    DealStageChangedMessage,
    TaskCreatedMessage,
    TaskReminderMessage,
)
from crm_core.events.types import (
    CallEvent,
    CommunicationLogged,
    DealChanged,
    DealStageChanged,
    MessageEvent,
    TaskChanged,
    TaskCreated,
    TaskReminder,
)
from crm_core.policy import is_staff
from crm_core.presence.events import PresenceChanged

logger = logging.getLogger(__name__)

SUPERVISORS = "supervisors"
_EXT = "ext:"
_USER = "user:"
# event_log.channel is VARCHAR(64)
MAX_CHANNEL_LENGTH = 64
SUMMARY_TEXT_LIMIT = 200


def ext_channel(extension: str) -> str:
    """The channel of an operator's phone: screen-pops for whoever sits at it."""
    return f"{_EXT}{extension}"


def user_channel(user_id: int) -> str:
    """A person's own channel: tasks assigned to them, whatever phone they use."""
    return f"{_USER}{user_id}"


def user_of_channel(channel: str) -> int | None:
    """The user id of a user channel's name, else None."""
    if channel.startswith(_USER) and channel[len(_USER) :].isdigit():
        return int(channel[len(_USER) :])
    return None


class Reader(Protocol):
    """What the access rules need of a user (crm_core's User satisfies it)."""

    @property
    def id(self) -> int: ...

    @property
    def role(self) -> str: ...

    @property
    def extension(self) -> str | None: ...


def default_channels(reader: Reader) -> frozenset[str]:
    """What a user's socket subscribes to when it asks for nothing in particular."""
    names = {user_channel(reader.id)}
    if reader.extension:
        names.add(ext_channel(reader.extension))
    if is_staff(reader):
        names.add(SUPERVISORS)
    return frozenset(names)


def may_read(reader: Reader, channel: str) -> bool:
    """Own extension and own user channel; staff also `supervisors` and any phone (dashboards)."""
    if channel in default_channels(reader):
        return True
    if is_staff(reader):
        return channel.startswith(_EXT) and len(channel) > len(_EXT)
    return False


def parse_channels(raw: str | Iterable[str] | None) -> list[str]:
    """`"ext:101,supervisors"` or a list of names -> de-duplicated names, in order given."""
    if raw is None:
        return []
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    seen: dict[str, None] = {}
    for part in parts:
        name = str(part).strip()
        if name:
            seen[name] = None
    return list(seen)


@dataclass(frozen=True, slots=True)
class Message:
    """One message for one channel, before it is numbered by the event log."""

    channel: str
    type: str
    payload: dict[str, Any]


def _summary(value: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """Scalars (long texts cut) and shallow objects only: lists (history, tasks) stay out.

    Supervisors' dashboards need the call's state, not the whole card; keeping their messages
    small keeps every broadcast and every replay of the supervisors channel cheap.
    """
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, Mapping):
            if depth < 1:
                out[key] = _summary(item, depth + 1)
        elif isinstance(item, str):
            out[key] = item[:SUMMARY_TEXT_LIMIT]
        elif item is None or isinstance(item, int | float | bool):
            out[key] = item
    return out


def _call_event(event: CallEvent) -> list[Message]:
    pop = {**event.payload, "linkedid": event.linkedid, "extensions": list(event.extensions)}
    messages = [Message(ext_channel(ext), event.type, pop) for ext in event.extensions]
    board = {**_summary(event.payload), "linkedid": event.linkedid}
    board["extensions"] = list(event.extensions)
    messages.append(Message(SUPERVISORS, event.type, board))
    return messages


def _fields(event: object, *names: str) -> dict[str, Any]:
    """A payload naming these attributes of the event, as they are."""
    return {name: getattr(event, name) for name in names}


def _task_created(event: TaskCreated) -> list[Message]:
    if event.assignee_id is None:
        return []
    payload = _fields(event, "task_id", "kind", "client_id")
    return [Message(user_channel(event.assignee_id), TaskCreatedMessage.TYPE, payload)]


def _communication(event: CommunicationLogged | MessageEvent) -> dict[str, Any]:
    """What every message about a logged call, SMS or email names."""
    return _fields(event, "communication_id", "kind", "direction", "status", "client_id", "deal_id")


def _communication_logged(event: CommunicationLogged) -> list[Message]:
    payload = {**_communication(event), "user_id": event.user_id}
    return [Message(SUPERVISORS, CommunicationLoggedMessage.TYPE, payload)]


def _deal_stage_changed(event: DealStageChanged) -> list[Message]:
    payload = _fields(event, "deal_id", "client_id", "from_stage_id", "to_stage_id", "user_id")
    return [
        Message(channel, DealStageChangedMessage.TYPE, payload)
        for channel in _deal_channels(event.responsible_id)
    ]


def _deal_channels(responsible_id: int | None) -> list[str]:
    """Supervisors' boards and the responsible manager's own (issue 14)."""
    channels = [SUPERVISORS]
    if responsible_id is not None:
        channels.append(user_channel(responsible_id))
    return channels


def _deal_changed(event: DealChanged) -> list[Message]:
    payload = _fields(event, "deal_id", "client_id", "stage_id", "responsible_id", "user_id")
    return [Message(ch, event.type, payload) for ch in _deal_channels(event.responsible_id)]


def _message_event(event: MessageEvent) -> list[Message]:
    """SMS/email news reach the people named; nobody named (no responsible yet): supervisors."""
    payload = {**event.payload, **_communication(event)}
    if not event.user_ids:
        return [Message(SUPERVISORS, event.type, _summary(payload))]
    users = dict.fromkeys(event.user_ids)
    return [Message(user_channel(uid), event.type, payload) for uid in users]


def _task_changed(event: TaskChanged) -> list[Message]:
    payload = {
        **event.payload,
        "id": event.task_id,
        "task_id": event.task_id,
        "kind": event.kind,
        "client_id": event.client_id,
    }
    users = dict.fromkeys(
        uid for uid in (event.assignee_id, payload.pop("previous_assignee_id", None)) if uid
    )
    return [Message(user_channel(uid), event.type, payload) for uid in users]


def _task_reminder(event: TaskReminder) -> list[Message]:
    payload = {**event.payload, "id": event.task_id, "task_id": event.task_id}
    return [Message(user_channel(event.assignee_id), TaskReminderMessage.TYPE, payload)]


def _presence_changed(event: PresenceChanged) -> list[Message]:
    """Supervisors' boards, and the agent's own pages (their state button)."""
    payload = _fields(event, "user_id", "extension", "state", "reason", "since", "until", "source")
    return [
        Message(SUPERVISORS, AgentPresenceMessage.TYPE, payload),
        Message(user_channel(event.user_id), AgentPresenceMessage.TYPE, payload),
    ]


# One serializer per domain event type; handlers never build JSON themselves.
_SERIALIZERS: dict[type[Any], Callable[[Any], list[Message]]] = {
    CallEvent: _call_event,
    TaskCreated: _task_created,
    TaskChanged: _task_changed,
    TaskReminder: _task_reminder,
    CommunicationLogged: _communication_logged,
    DealStageChanged: _deal_stage_changed,
    DealChanged: _deal_changed,
    MessageEvent: _message_event,
    PresenceChanged: _presence_changed,
}


def messages_for(events: Iterable[object]) -> list[Message]:
    """The channel messages for a committed batch of domain events, in event order.

    Events nobody watches (other event types) map to nothing rather than failing the batch.
    """
    out: list[Message] = []
    for event in events:
        serializer = _SERIALIZERS.get(type(event))
        if serializer is None:
            logger.debug("no channel message for %s", type(event).__name__)
            continue
        for message in serializer(event):
            if len(message.channel) > MAX_CHANNEL_LENGTH:
                logger.warning("dropping message for over-long channel %.70s", message.channel)
                continue
            out.append(message)
    return out
