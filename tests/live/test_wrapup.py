"""Wrap-up on the real Asterisk: after an answered call the agent's queue membership is paused
(reason "wrap-up") for WRAPUP_SECONDS, so the PBX's queue does not ring them; at the wrap-up's
end the service unpauses it and the queue rings them again. The PBX's echo leaves the CRM's
wrap-up as it is (no "paused")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from crm_core.presence.models import AgentPresence, PresenceSpan
from crm_core.presence.settings import PresenceSettings
from tests.live.conftest import Live
from tests.live.kit import Event, Predicate

MEMBERS = {"101": "Local/101@agent-phones/n", "102": "Local/102@agent-phones/n"}
WRAPUP = 15  # seconds: long enough for a call to reach the queue meanwhile, on a loaded machine


def pause(ext: str, paused: str) -> Predicate:
    return lambda e: (
        e.get("Event") == "QueueMemberPause"
        and e.get("Interface") == MEMBERS[ext]
        and e.get("Paused") == paused
    )


def index(live: Live, e: Event) -> int:
    return next(i for i, x in enumerate(live.ami.events) if x is e)


def rung(live: Live, linkedid: str, ext: str) -> list[int]:
    """Where in the event stream the queue rang `ext` for the call."""
    return [
        i
        for i, e in enumerate(live.ami.events)
        if e.get("Event") == "AgentCalled"
        and e.get("Linkedid") == linkedid
        and e.get("DestChannel", "").startswith(f"Local/{ext}@agent-phones")
    ]


async def test_the_queue_skips_an_agent_in_wrapup_and_rings_them_once_it_is_over(
    live: Live,
) -> None:
    live.settings.presence = PresenceSettings(WRAPUP_SECONDS=WRAPUP)
    m101 = await live.manager("101")
    await live.manager("102")
    await live.flag("noanswer", "102", 1)  # the queue's other member never answers
    await live.flag("agenttalk", "101", 2)  # 101 hangs up 2 s after answering
    await live.start_service(router=False)  # every call goes to queue `sales`
    try:
        # 101 answers a call: wrap-up starts, and the queue hears of it
        since = live.ami.mark()
        first = await live.call_in("+79161235501", talk=60, name="First Caller")
        paused = await live.ami.wait_for(pause("101", "1"), since, timeout=120)
        assert (paused.get("PausedReason") or paused.get("Reason")) == "wrap-up", paused
        record = await live.logged(first)
        assert (record.status, record.extra["answered_by"]) == ("answered", "101")

        # a call meanwhile: the queue rings 102 but never 101 while the wrap-up lasts
        second = await live.call_in("+79161235502", talk=8, name="Second Caller")
        unpaused = await live.ami.wait_for(pause("101", "0"), index(live, paused), timeout=120)
        await live.logged(second)
        assert rung(live, second, "102"), "the queue was ringing during the wrap-up"
        assert all(i > index(live, unpaused) for i in rung(live, second, "101"))

        # ended on time: not before the wrap-up's end the CRM wrote, and the CRM's row is still
        # the wrap-up (the PBX's echoes changed nothing); its history is the wrap-up alone
        async with live.sessions() as s:
            row = await s.get(AgentPresence, m101.id)
            spans = (
                await s.scalars(
                    select(PresenceSpan)
                    .where(PresenceSpan.user_id == m101.id)
                    .order_by(PresenceSpan.id)
                )
            ).all()
        assert row is not None and (row.state, row.source) == ("wrapup", "call"), row
        assert row.until is not None
        assert datetime.fromtimestamp(float(unpaused["Timestamp"]), row.until.tzinfo) >= row.until
        assert [sp.state for sp in spans] == ["wrapup", "available"]
        _, headers = await live.token_headers(m101)
        async with live.http() as http:
            me = (await http.get("/api/presence/me", headers=headers)).json()
        assert me["state"] == "available", me

        # the queue rings 101 again, and 101 answers
        third = await live.call_in("+79161235503", talk=60, name="Third Caller")
        record = await live.logged(third)
        assert rung(live, third, "101")
        assert (record.status, record.extra["answered_by"]) == ("answered", "101")
    finally:
        # nothing more from the service (the third call's wrap-up), then the kit's queue as it was
        await live.stop_service()
        for interface in MEMBERS.values():
            await live.ami.ok("QueuePause", Queue="sales", Interface=interface, Paused="false")
