"""Our router down: the dialplan falls back to queue `sales` (members 101 and 102)."""

from __future__ import annotations

from tests.live.conftest import Live, ring_results
from tests.live.kit import event

MEMBER_102 = "Local/102@agent-phones/n"


def router_failed(live: Live, linkedid: str) -> bool:
    return any(
        e.get("Variable") == "AGISTATUS" and e.get("Value") == "FAILURE"
        for e in live.of_call(linkedid, "VarSet")
    )


async def test_nobody_answers_the_queue_one_missed_call_and_one_callback_task(
    live: Live,
) -> None:
    m101 = await live.manager("101")
    m102 = await live.manager("102")
    await live.flag("noanswer", "101", 1)
    await live.flag("noanswer", "102", 1)
    await live.start_service(router=False)
    sockets = {"101": await live.socket(m101), "102": await live.socket(m102)}

    # the caller waits longer than the queue (30 s): the PBX gives up
    linkedid = await live.call_in("+79161233001", talk=60, name="Patient Caller")
    record = await live.logged(linkedid)

    assert router_failed(live, linkedid)
    assert live.of_call(linkedid, "QueueCallerJoin")[0]["Queue"] == "sales"
    assert record.status == "missed"
    assert record.extra["missed"] is True
    assert record.answered_at is None and record.talk_seconds == 0
    assert record.extra["answered_by"] is None
    assert set(record.extra["agents_rung"]) == {"101", "102"}  # the queue tried both
    assert all(result != "ANSWER" for _, result in ring_results(record))
    assert len(await live.communications()) == 1
    tasks = await live.tasks()
    assert len(tasks) == 1
    first = {"101": m101.id, "102": m102.id}[record.extra["agents_rung"][0]]
    assert (tasks[0].communication_id, tasks[0].client_id) == (record.id, record.client_id)
    assert tasks[0].assignee_id == first
    assert not tasks[0].done
    # both phones rang: both screens popped
    for sock in sockets.values():
        assert sock.calls("call.ringing", linkedid)


async def test_the_second_queue_member_answers_one_answered_call_no_task(live: Live) -> None:
    m101 = await live.manager("101")
    await live.manager("102")
    await live.flag("noanswer", "101", 1)
    await live.flag("agenttalk", "102", 3)  # 102's phone hangs up 3 s after answering
    await live.start_service(router=False)
    s101 = await live.socket(m101)
    # 102 paused until the queue has rung 101: 101 is rung first, then 102 answers
    await live.ami.ok("QueuePause", Queue="sales", Interface=MEMBER_102, Paused="true")
    try:
        since = live.ami.mark()
        linkedid = await live.call_in("+79161233002", talk=40, name="Queue Caller")
        await live.ami.wait_for(event("AgentCalled", DestChannel="Local/101@agent-phones"), since)
    finally:
        await live.ami.ok("QueuePause", Queue="sales", Interface=MEMBER_102, Paused="false")
    record = await live.logged(linkedid)

    assert router_failed(live, linkedid)
    assert record.status == "answered"
    assert record.extra["missed"] is False
    assert record.extra["answered_by"] == "102"
    assert record.extra["agents_rung"][:1] == ["101"]
    assert record.extra["agents_rung"][-1] == "102"
    assert ring_results(record)[-1] == ("102", "ANSWER")
    assert all(r != "ANSWER" for ext, r in ring_results(record) if ext == "101")
    assert record.extra["hung_up_by"] == "agent 102"
    assert s101.calls("call.ringing", linkedid)
    assert len(await live.communications()) == 1
    assert await live.tasks() == []
