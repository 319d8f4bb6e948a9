"""Channel names, access rules and event -> message mapping: pure functions, no database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from crm_core.events.types import CallEvent, CommunicationLogged, DealStageChanged, TaskCreated
from notifier.channels import (
    SUPERVISORS,
    Message,
    default_channels,
    ext_channel,
    may_read,
    messages_for,
    parse_channels,
    user_channel,
)


@dataclass
class Person:
    id: int
    role: str
    extension: str | None


OPERATOR = Person(7, "operator", "101")
NO_PHONE = Person(8, "manager", None)
BOSS = Person(9, "supervisor", "900")


def test_names() -> None:
    assert ext_channel("101") == "ext:101"
    assert user_channel(7) == "user:7"
    assert SUPERVISORS == "supervisors"


def test_default_channels() -> None:
    assert default_channels(OPERATOR) == {"ext:101", "user:7"}
    assert default_channels(NO_PHONE) == {"user:8"}
    assert default_channels(BOSS) == {"ext:900", "user:9", "supervisors"}
    assert SUPERVISORS in default_channels(Person(1, "admin", None))


@pytest.mark.parametrize(
    ("reader", "channel", "allowed"),
    [
        (OPERATOR, "ext:101", True),
        (OPERATOR, "user:7", True),
        (OPERATOR, "ext:102", False),
        (OPERATOR, "user:8", False),
        (OPERATOR, "supervisors", False),
        (OPERATOR, "ext:", False),
        (NO_PHONE, "ext:101", False),
        (BOSS, "supervisors", True),
        (BOSS, "ext:101", True),  # dashboards watch any phone
        (BOSS, "user:7", False),  # but not other people's tasks
        (BOSS, "ext:", False),
        (BOSS, "whatever", False),
    ],
)
def test_may_read(reader: Person, channel: str, allowed: bool) -> None:
    assert may_read(reader, channel) is allowed


def test_parse_channels() -> None:
    assert parse_channels(None) == []
    assert parse_channels("ext:101, supervisors,,ext:101") == ["ext:101", "supervisors"]
    assert parse_channels(["user:1", " user:1 "]) == ["user:1"]


def test_call_event_goes_to_each_phone_and_supervisors() -> None:
    card = {"client": {"id": 5, "name": "Ann", "tags": ["vip"]}, "history": [{"id": 1}]}
    event = CallEvent(
        "call.ringing", "L1", ("101", "102"), {"call": {"from": "+7999"}, "card": card}
    )
    pops = messages_for([event])
    assert [m.channel for m in pops] == ["ext:101", "ext:102", "supervisors"]
    assert pops[0].type == "call.ringing"
    assert pops[0].payload["card"] == card  # the full screen-pop
    assert pops[0].payload["linkedid"] == "L1"
    assert pops[0].payload["extensions"] == ["101", "102"]
    board = pops[2].payload
    # supervisors get a summary: no lists, objects one level deep
    assert board["call"] == {"from": "+7999"}
    assert board["card"] == {}
    assert "history" not in board
    assert board["linkedid"] == "L1"
    assert board["extensions"] == ["101", "102"]


def test_other_events() -> None:
    msgs = messages_for(
        [
            TaskCreated(task_id=3, kind="callback", assignee_id=7, client_id=5),
            TaskCreated(task_id=4, kind="callback", assignee_id=None, client_id=5),
            CommunicationLogged(1, "call", "inbound", "answered", 5, 6, 7),
            DealStageChanged(6, 5, 1, 2, 7),
            object(),  # events nobody watches map to nothing
        ]
    )
    assert msgs == [
        Message("user:7", "task.created", {"task_id": 3, "kind": "callback", "client_id": 5}),
        Message(
            "supervisors",
            "communication.logged",
            {
                "communication_id": 1,
                "kind": "call",
                "direction": "inbound",
                "status": "answered",
                "client_id": 5,
                "deal_id": 6,
                "user_id": 7,
            },
        ),
        Message(
            "supervisors",
            "deal.stage_changed",
            {"deal_id": 6, "client_id": 5, "from_stage_id": 1, "to_stage_id": 2, "user_id": 7},
        ),
    ]


def test_overlong_channel_is_dropped() -> None:
    assert messages_for([CallEvent("call.ringing", "L", ("9" * 80,))]) == [
        Message("supervisors", "call.ringing", {"linkedid": "L", "extensions": ["9" * 80]})
    ]


def test_supervisor_summary_cuts_long_texts() -> None:
    board = messages_for([CallEvent("call.ended", "L", (), {"note": "y" * 5000})])[0]
    assert board.channel == "supervisors"
    assert len(board.payload["note"]) == 200
