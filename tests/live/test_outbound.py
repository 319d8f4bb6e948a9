"""Outbound calls on the real Asterisk: an agent dialling from the phone, and click-to-call."""

from __future__ import annotations

from typing import Any

from crm_core.communications.models import Communication
from crm_core.users.models import User
from tests.live.conftest import Live, ring_results
from tests.live.kit import agent_dial_out, event


async def click_to_call(live: Live, agent: User, client_id: int) -> tuple[str, dict[str, Any]]:
    """`agent` clicks the client's number in the CRM: POST /api/calls/originate."""
    _, headers = await live.token_headers(agent)
    since = live.ami.mark()
    async with live.http() as http:
        reply = await http.post(
            "/api/calls/originate", json={"client_id": client_id}, headers=headers
        )
    assert reply.status_code == 202, reply.text
    # the agent's phone rings first: its Local channel is the call's first channel
    first = await live.ami.wait_for(
        event("Newchannel", Channel=f"Local/{agent.extension}@agent-phones-"), since
    )
    return first["Linkedid"], reply.json()


def dialled_client(live: Live, linkedid: str, number: str) -> list[str]:
    """What Asterisk's DialEnds to the client's number said."""
    return [
        e["DialStatus"]
        for e in live.of_call(linkedid, "DialEnd")
        if e.get("DestChannel", "").startswith(f"Local/{number}@pstn-sim-")
    ]


async def test_an_agent_dials_an_outside_number_from_the_phone(live: Live) -> None:
    m101 = await live.manager("101")
    await live.flag("pstntalk", "79161235001", 3)
    await live.start_service()
    s101 = await live.socket(m101)

    linkedid = await live.originate(
        agent_dial_out("101", "79161235001"),
        event("Newchannel", Channel="Local/101@agent-phones-"),
    )
    record = await live.logged(linkedid)

    assert dialled_client(live, linkedid, "79161235001") == ["ANSWER"]
    assert record.direction == "out"
    assert record.status == "answered"
    assert record.phone == "+79161235001"
    assert record.agent_extension == "101"
    assert record.user_id == m101.id
    assert record.client_id is not None and record.deal_id is not None  # a card was opened
    assert record.answered_at is not None
    assert record.extra["hung_up_by"] == "client"
    assert s101.calls("call.answered", linkedid)
    assert await live.tasks() == []


async def answered_click_to_call(live: Live) -> tuple[User, int, int, str, Communication]:
    m101 = await live.manager("101")
    client_id, deal_id = await live.client("+79161235002", responsible=m101, name="Anna")
    await live.flag("pstntalk", "79161235002", 3)
    await live.start_service()
    linkedid, body = await click_to_call(live, m101, client_id)
    assert body["deal_id"] == deal_id
    return m101, client_id, deal_id, linkedid, await live.logged(linkedid)


async def test_click_to_call_answered_is_logged_on_the_deal(live: Live) -> None:
    m101, client_id, deal_id, linkedid, record = await answered_click_to_call(live)

    assert dialled_client(live, linkedid, "79161235002") == ["ANSWER"]
    assert record.direction == "out"
    assert record.status == "answered"
    assert (record.client_id, record.deal_id, record.user_id) == (client_id, deal_id, m101.id)
    assert record.agent_extension == "101"
    assert record.extra["variables"]["CRM_DEAL_ID"] == str(deal_id)
    assert record.extra["agent_leg_ring_s"] is not None  # the agent's phone rang first
    assert record.extra["hung_up_by"] == "client"
    assert record.talk_seconds is not None and record.talk_seconds >= 2


async def test_click_to_call_the_client_does_not_answer(live: Live) -> None:
    m101 = await live.manager("101")
    client_id, deal_id = await live.client("+79161235003", responsible=m101, name="Boris")
    await live.flag("noanswer", "79161235003", 1)  # rings 60 s; Dial gives up after 30 s
    await live.flag("agenttalk", "101", 45)  # the agent waits that long (default: hangs up at 20)
    await live.start_service()
    s101 = await live.socket(m101)
    linkedid, _ = await click_to_call(live, m101, client_id)
    record = await live.logged(linkedid)

    assert dialled_client(live, linkedid, "79161235003") == ["NOANSWER"]
    assert record.direction == "out"
    assert record.status == "no_answer"
    assert (record.client_id, record.deal_id, record.user_id) == (client_id, deal_id, m101.id)
    assert record.answered_at is None and record.talk_seconds == 0
    assert ring_results(record)[-1] == ("79161235003", "NOANSWER")
    assert s101.calls("originate.failed") == []  # the agent's leg did connect
    assert await live.tasks() == []  # a callback task is for missed inbound calls only


async def test_click_to_call_to_a_busy_client(live: Live) -> None:
    m101 = await live.manager("101")
    client_id, deal_id = await live.client("+79161235004", responsible=m101, name="Vera")
    await live.flag("busy", "79161235004", 1)  # rings 2 s, then Busy()
    await live.start_service()
    linkedid, _ = await click_to_call(live, m101, client_id)
    record = await live.logged(linkedid)

    assert dialled_client(live, linkedid, "79161235004") == ["BUSY"]
    assert record.direction == "out"
    assert (record.client_id, record.deal_id, record.user_id) == (client_id, deal_id, m101.id)
    assert record.answered_at is None and record.talk_seconds == 0
    assert await live.tasks() == []
    # each ring attempt keeps its own dial result, and the call says the client was busy
    assert ring_results(record)[-1] == ("79161235004", "BUSY")
    assert record.status == "busy"
