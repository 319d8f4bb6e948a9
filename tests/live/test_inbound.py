"""Inbound calls on the real Asterisk: our FastAGI router picks the phone, the pop reaches it."""

from __future__ import annotations

from tests.live.conftest import Live, ring_results
from tests.live.kit import RING_GROUP_DID, arrival, event


async def test_a_known_client_rings_the_responsible_manager_and_only_their_screen_pops(
    live: Live,
) -> None:
    m101 = await live.manager("101")
    m102 = await live.manager("102")
    client_id, deal_id = await live.client("+79161230001", responsible=m102)
    await live.flag("ringtime", "102", 3)  # time for the pop to arrive while it rings
    await live.flag("agenttalk", "102", 3)  # 102 hangs up 3 s after answering
    await live.start_service()
    s101, s102 = await live.socket(m101), await live.socket(m102)

    linkedid = await live.call_in("+79161230001", talk=30, name="Ivan Petrov")
    pop = await s102.wait_for("call.ringing", linkedid)
    answer = await live.ami.wait_for(
        lambda e: e.get("Linkedid") == linkedid and event("DialEnd", DialStatus="ANSWER")(e)
    )
    record = await live.logged(linkedid)

    # the router told Asterisk to ring 102, and Asterisk did
    agi = [e["Command"] for e in live.of_call(linkedid, "AGIExecStart")]
    assert 'SET VARIABLE CRM_TARGET "102"' in agi, agi
    assert answer["DestChannel"].startswith("Local/102@agent-phones-")
    # the screen-pop: 102's card, before 102 answered; nothing on 101's screen
    assert pop["channel"] == "ext:102"
    assert pop["payload"]["card"]["client"]["id"] == client_id
    assert pop["payload"]["card"]["deal"]["id"] == deal_id
    assert pop["_arrival"] < arrival(answer)
    assert s101.calls("call.ringing", linkedid) == []
    # shown by the instance following the PBX before event_log numbered it, and only then
    assert "seq" not in pop and s102.calls("call.ringing", linkedid) == [pop]
    assert await live.logged_messages(linkedid, "call.ringing") == ["ext:102", "supervisors"]
    # one record on the client's deal, answered by the responsible manager, who hung up
    assert record.direction == "in"
    assert record.status == "answered"
    assert record.phone == "+79161230001"
    assert (record.client_id, record.deal_id, record.user_id) == (client_id, deal_id, m102.id)
    assert record.agent_extension == "102"
    assert record.extra["answered_by"] == "102"
    assert record.extra["missed"] is False
    assert record.extra["hung_up_by"] == "agent 102"
    assert record.answered_at is not None and record.ended_at is not None
    assert 2 <= (record.ended_at - record.answered_at).total_seconds() <= 15
    assert await live.tasks() == []


async def test_unknown_callers_are_dealt_round_robin_among_managers_on_duty(live: Live) -> None:
    m101 = await live.manager("101")
    m102 = await live.manager("102")
    await live.manager("103", on_duty=False)  # has a phone, not on duty: never rung
    await live.start_service()
    sockets = {"101": await live.socket(m101), "102": await live.socket(m102)}

    rung: list[str] = []
    for n in range(3):
        caller = f"+7916123100{n}"
        linkedid = await live.call_in(caller, talk=3, name=f"Stranger {n}")
        record = await live.logged(linkedid)
        assert record.status == "answered", record.extra
        assert record.client_id is not None  # an unknown number opens a card
        assert record.extra["agents_rung"] == [record.agent_extension]
        rung.append(record.agent_extension or "")
        # the pop went to the phone that rang, and to no other
        (pop,) = sockets[rung[-1]].calls("call.ringing", linkedid)
        # with the new card: in the pop if read after the card was committed, else after it
        if pop["payload"].get("new_caller"):
            opened = await sockets[rung[-1]].wait_for("call.card_opened", linkedid)
            card = opened["payload"]["card"]
        else:
            card = pop["payload"]["card"]
        assert (card["client"]["id"], card["deal"]["id"]) == (record.client_id, record.deal_id)
        other = "102" if rung[-1] == "101" else "101"
        assert sockets[other].calls("call.ringing", linkedid) == []
        dials = [e["DestChannel"] for e in live.of_call(linkedid, "DialBegin")]
        assert [d.split("-")[0] for d in dials if "agent-phones" in d] == [
            f"Local/{rung[-1]}@agent"
        ]
    assert rung == ["101", "102", "101"]


async def test_the_ring_group_logs_one_call_answered_by_102_not_a_missed_call_for_101(
    live: Live,
) -> None:
    await live.manager("101")
    await live.manager("102")
    await live.flag("noanswer", "101", 1)
    await live.start_service()

    linkedid = await live.call_in("+79161232002", did=RING_GROUP_DID, talk=5)
    record = await live.logged(linkedid)

    assert live.of_call(linkedid, "DialEnd")  # both phones rang: Asterisk's side
    assert record.status == "answered"
    assert record.extra["missed"] is False
    assert record.extra["answered_by"] == "102"
    assert sorted(ring_results(record)) == [("101", "CANCEL"), ("102", "ANSWER")]
    assert sorted(record.extra["agents_rung"]) == ["101", "102"]
    assert len(await live.communications()) == 1
    assert await live.tasks() == []
