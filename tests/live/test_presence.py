"""Presence on the real Asterisk: an agent paused in the CRM is rung neither by our router nor by
the PBX's queue (the pause is pushed to the queue as QueuePause), and the PBX's own pause
events come back without changing anything."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.presence.models import AgentPresence
from tests.live.conftest import Live
from tests.live.kit import Predicate

MEMBERS = {"101": "Local/101@agent-phones/n", "102": "Local/102@agent-phones/n"}


def paused_event(ext: str, paused: str) -> Predicate:
    return lambda e: (
        e.get("Event") == "QueueMemberPause"
        and e.get("Interface") == MEMBERS[ext]
        and e.get("Paused") == paused
    )


async def test_a_paused_agent_is_not_rung_by_the_router_nor_by_the_queue(live: Live) -> None:
    m101 = await live.manager("101")
    m102 = await live.manager("102")
    await live.flag("agenttalk", "102", 2)  # 102 hangs up 2 s after answering
    await live.start_service()
    _, h101 = await live.token_headers(m101)
    _, h102 = await live.token_headers(m102)
    try:
        async with live.http() as http:
            since = live.ami.mark()
            r = await http.put(
                "/api/presence/me", json={"state": "paused", "reason": "lunch"}, headers=h101
            )
            assert r.status_code == 200, r.text
            # the CRM told the PBX: the queue has 101 paused too
            await live.ami.wait_for(paused_event("101", "1"), since)

            # the router deals the call to 102 only
            linkedid = await live.call_in("+79161234401", talk=20, name="First Caller")
            record = await live.logged(linkedid)
            assert record.status == "answered", record.extra
            assert record.extra["agents_rung"] == ["102"]
            agi = [e["Command"] for e in live.of_call(linkedid, "AGIExecStart")]
            assert 'SET VARIABLE CRM_TARGET "102"' in agi, agi

            # 102 on do-not-disturb as well: no target, the queue takes the call, rings nobody
            since = live.ami.mark()
            r = await http.put("/api/presence/me", json={"state": "dnd"}, headers=h102)
            assert r.status_code == 200, r.text
            await live.ami.wait_for(paused_event("102", "1"), since)
            linkedid = await live.call_in("+79161234402", talk=45, name="Second Caller")
            record = await live.logged(linkedid)
            assert 'SET VARIABLE CRM_TARGET ""' in [
                e["Command"] for e in live.of_call(linkedid, "AGIExecStart")
            ]
            assert live.of_call(linkedid, "QueueCallerJoin")
            assert live.of_call(linkedid, "AgentCalled") == []
            assert record.status == "missed" and record.extra["agents_rung"] == []

        # the PBX's echoes of our own pauses changed nothing: still as the agents chose
        async with live.sessions() as s:
            rows = {p.user_id: (p.state, p.source) for p in await s.scalars(select(AgentPresence))}
        assert rows == {m101.id: ("paused", "api"), m102.id: ("dnd", "api")}
    finally:
        # the kit's Asterisk outlives the test: leave its queue as it was
        for interface in MEMBERS.values():
            await live.ami.ok("QueuePause", Queue="sales", Interface=interface, Paused="false")
