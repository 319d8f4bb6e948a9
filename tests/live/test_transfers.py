"""Transfers and hold on the real Asterisk: one call record, its legs, who really hung up."""

from __future__ import annotations

import pytest

from crm_core.users.models import User
from tests.live.conftest import Live, Socket
from tests.live.kit import Predicate, event

MEMBER_101 = "Local/101@agent-phones/n"


async def two_agents(live: Live) -> tuple[User, User, Socket, Socket]:
    """101 on duty (the router sends every call there), 102 only a transfer target."""
    m101 = await live.manager("101")
    m102 = await live.manager("102", on_duty=False)
    await live.start_service()
    return m101, m102, await live.socket(m101), await live.socket(m102)


def answered_by(ext: str, linkedid: str) -> Predicate:
    """Agent `ext`'s phone answered a dial of the call `linkedid`."""
    return lambda e: (
        e.get("Event") == "DialEnd"
        and e.get("Linkedid") == linkedid
        and e.get("DialStatus") == "ANSWER"
        and e.get("DestChannel", "").startswith(f"Local/{ext}@agent-phones-")
    )


async def test_blind_transfer_to_102_then_the_caller_hangs_up(live: Live) -> None:
    _, m102, _, s102 = await two_agents(live)
    await live.flag("agenttalk", "101", 30)
    linkedid = await live.call_in("+79161234001", talk=10, name="Transfer Me")
    agent = await live.bridged_agent(linkedid, "101")
    await live.ami.ok("BlindTransfer", Channel=agent, Context="transfer-internal", Exten="102")
    await live.ami.wait_for(answered_by("102", linkedid))
    record = await live.logged(linkedid)

    transfer = live.ami.seen(event("BlindTransfer", TransfereeLinkedid=linkedid))
    assert transfer[0]["Result"] == "Success"
    assert record.status == "answered"
    assert record.extra["answered_by"] == "101"
    assert record.extra["final_agent"] == "102"
    assert [(t["kind"], t["from"], t["to"]) for t in record.extra["transfers"]] == [
        ("blind", "101", "102")
    ]
    assert [leg["extension"] for leg in record.extra["legs"]] == ["101", "102"]
    assert record.user_id == m102.id  # the call is the last agent's
    assert s102.calls("call.ringing", linkedid)  # the target's screen popped
    assert len(await live.communications()) == 1
    # the caller's Local/s@caller-sim ;2 hung up (TALK ran out), not an agent
    assert record.extra["hung_up_by"] == "caller"


@pytest.mark.parametrize("how", ["ami_atxfer", "phone_keys"])
async def test_attended_transfer_to_102_then_the_caller_hangs_up(live: Live, how: str) -> None:
    _, m102, _, s102 = await two_agents(live)
    await live.flag("agenttalk", "101", 30)
    if how == "phone_keys":  # 101's phone keys *2102, hangs up 7 s later: transfer complete
        await live.flag("atxfer", "101", "102")
    linkedid = await live.call_in("+79161234002", talk=18, name="Consult Me")
    agent = await live.bridged_agent(linkedid, "101")
    if how == "ami_atxfer":
        await live.ami.ok("Atxfer", Channel=agent, Context="transfer-internal", Exten="102")
        await live.ami.wait_for(answered_by("102", linkedid))
        await live.ami.ok("Hangup", Channel=agent)  # 101 hangs up: the transfer completes
    await live.ami.wait_for(event("AttendedTransfer", Result="Success"))
    record = await live.logged(linkedid)

    assert record.status == "answered"
    assert record.extra["answered_by"] == "101"
    assert record.extra["final_agent"] == "102"
    assert [(t["kind"], t["from"], t["to"]) for t in record.extra["transfers"]] == [
        ("attended", "101", "102")
    ]
    assert [leg["extension"] for leg in record.extra["legs"]] == ["101", "102"]
    assert record.user_id == m102.id
    assert s102.calls("call.transferred", linkedid) or s102.calls("call.answered", linkedid)
    assert len(await live.communications()) == 1
    assert record.extra["hung_up_by"] == "caller"


async def test_blind_transfer_into_the_queue_where_102_answers(live: Live) -> None:
    await two_agents(live)
    await live.flag("agenttalk", "101", 30)
    linkedid = await live.call_in("+79161234003", talk=12, name="Queue Me")
    agent = await live.bridged_agent(linkedid, "101")
    # 101 just transferred the caller away: the queue must not offer the call back to 101
    await live.ami.ok("QueuePause", Queue="sales", Interface=MEMBER_101, Paused="true")
    try:
        await live.ami.ok(
            "BlindTransfer", Channel=agent, Context="transfer-internal", Exten="sales"
        )
        await live.ami.wait_for(event("AgentConnect", Linkedid=linkedid))
    finally:
        await live.ami.ok("QueuePause", Queue="sales", Interface=MEMBER_101, Paused="false")
    record = await live.logged(linkedid)

    assert live.of_call(linkedid, "QueueCallerJoin")[0]["Queue"] == "sales"
    assert record.status == "answered"
    assert record.extra["answered_by"] == "101"
    assert record.extra["final_agent"] == "102"
    assert [t["kind"] for t in record.extra["transfers"]] == ["blind"]
    assert record.extra["transfers"][0]["from"] == "101"
    assert [leg["extension"] for leg in record.extra["legs"]] == ["101", "102"]
    assert len(await live.communications()) == 1
    assert record.extra["hung_up_by"] == "caller"


async def test_hold_and_resume_count_the_hold_time(live: Live) -> None:
    await two_agents(live)
    await live.flag("hold", "101", 1)  # *8 3 s after answering, Unhold HOLD_SECS (6) later
    await live.flag("agenttalk", "101", 10)  # counted from the *8: hangs up 4 s after Unhold
    linkedid = await live.call_in("+79161234004", talk=40, name="Hold Me")
    hold = await live.ami.wait_for(event("Hold", Channel="Local/101@agent-phones-"))
    unhold = await live.ami.wait_for(event("Unhold", Channel="Local/101@agent-phones-"))
    record = await live.logged(linkedid)

    held = float(unhold["Timestamp"]) - float(hold["Timestamp"])  # what Asterisk did
    assert 5 <= held <= 9
    assert live.of_call(linkedid, "MusicOnHoldStart")  # the caller heard the music
    assert record.status == "answered"
    assert record.extra["answered_by"] == "101"
    assert record.extra["transfers"] == []
    assert record.extra["hung_up_by"] == "agent 101"
    assert len(await live.communications()) == 1
    hold_s = record.extra.get("hold_s")  # seconds on hold, from Hold to Unhold
    assert hold_s is not None and abs(hold_s - held) <= 1.0, record.extra
