"""What a socket receives: numbered frames encoded once, and control frames about the socket."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Envelope:
    """A numbered message, with its wire form encoded once for every socket that gets it."""

    seq: int
    channel: str
    type: str
    frame: str


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def encode_frame(seq: int, channel: str, type_: str, payload_json: str, at: datetime) -> str:
    """`{"seq","channel","type","payload","at"}`; the payload is spliced in, never re-encoded."""
    return f'{{"seq":{seq},' + encode_shown_frame(channel, type_, payload_json, at)[1:]


def encode_shown_frame(channel: str, type_: str, payload_json: str, at: datetime) -> str:
    """A message shown to this instance's sockets before event_log numbers it (a screen-pop:
    `Fanout.show`): the numbered frame's fields but `seq`, which it does not have yet."""
    return (
        f'{{"channel":{dumps(channel)},"type":{dumps(type_)},'
        f'"payload":{payload_json},"at":"{at.isoformat(timespec="microseconds")}"}}'
    )


def control_frame(type_: str, **fields: Any) -> str:
    """Messages about the connection itself (ping, subscribed, replay.truncated): no seq."""
    return dumps({"type": type_, **fields})
