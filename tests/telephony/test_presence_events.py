"""The PBX side of presence without sockets: which queue member events are news, and what a
presence change sends to Asterisk (a fake AMI records the actions)."""

from __future__ import annotations

from typing import Any

from crm_core.presence.rules import pbx_flag
from telephony.presence_events import PauseWatch, member_extension, send_pause


def member(
    event: str, paused: str, queue: str = "sales", ext: str = "101", **more: str
) -> dict[str, str]:
    iface = f"Local/{ext}@agent-phones/n"
    return {
        "Event": event,
        "Queue": queue,
        "MemberName": iface,
        "Interface": iface,
        "StateInterface": iface,
        "Paused": paused,
        **more,
    }


def test_member_extension_from_the_interface() -> None:
    assert member_extension({"Interface": "Local/101@agent-phones/n"}) == "101"
    assert member_extension({"Interface": "PJSIP/205"}) == "205"
    assert member_extension({"StateInterface": "SIP/7001-0000001", "Interface": ""}) == "7001"
    assert member_extension({"Interface": "nonsense"}) is None


def test_queue_member_pause_is_always_news_status_only_when_the_flag_flips() -> None:
    w = PauseWatch()
    assert w.feed(member("QueueMemberPause", "1", PausedReason="Lunch")) == ("101", True, "Lunch")
    assert w.feed(member("QueueMemberPause", "0")) == ("101", False, None)
    assert w.feed(member("QueueMemberStatus", "0")) is None  # as last seen
    assert w.feed(member("QueueMemberStatus", "0", queue="support")) is None  # first sighting
    assert w.feed(member("QueueMemberStatus", "1", queue="support", PausedReason="x")) == (
        "101",
        True,
        "x",
    )
    assert w.feed({"Event": "Newchannel", "Paused": "1"}) is None
    assert w.feed(member("QueueMemberStatus", "maybe")) is None


class FakeAmi:
    def __init__(self, members: list[dict[str, str]]) -> None:
        self.members = members
        self.sent: list[dict[str, str]] = []

    async def send_action(self, action: dict[str, str]) -> list[dict[str, Any]]:
        self.sent.append(action)
        if action["Action"] == "QueueStatus":
            return [{"Response": "Success"}, *self.members, {"Event": "QueueStatusComplete"}]
        return [{"Response": "Success"}]


async def test_a_pause_is_sent_to_every_queue_membership_of_the_extension() -> None:
    ami = FakeAmi(
        [
            {"Event": "QueueMember", "Queue": "sales", "Location": "Local/101@agent-phones/n"},
            {"Event": "QueueMember", "Queue": "support", "Location": "Local/101@agent-phones/n"},
            {"Event": "QueueMember", "Queue": "sales", "Location": "Local/102@agent-phones/n"},
        ]
    )
    assert await send_pause(ami, "101", pbx_flag("dnd", None)) == ["Local/101@agent-phones/n"]
    assert ami.sent[1:] == [
        {
            "Action": "QueuePause",
            "Interface": "Local/101@agent-phones/n",
            "Paused": "true",
            "Reason": "dnd",
        }
    ]
    ami.sent.clear()
    await send_pause(ami, "101", pbx_flag("available", None))
    assert ami.sent[1:] == [
        {"Action": "QueuePause", "Interface": "Local/101@agent-phones/n", "Paused": "false"}
    ]
    ami.sent.clear()
    # a wrap-up pauses the queues too, under its own reason
    assert await send_pause(ami, "101", pbx_flag("wrapup", None)) == ["Local/101@agent-phones/n"]
    assert ami.sent[1:] == [
        {
            "Action": "QueuePause",
            "Interface": "Local/101@agent-phones/n",
            "Paused": "true",
            "Reason": "wrap-up",
        }
    ]
    ami.sent.clear()
    assert await send_pause(ami, "999", pbx_flag("paused", "lunch")) == []
    assert [a["Action"] for a in ami.sent] == ["QueueStatus"]
