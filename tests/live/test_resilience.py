"""Asterisk restarted mid-call, and the service started while calls are up."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.live.conftest import Live
from tests.live.kit import Predicate


def agent_bridged(linkedid: str) -> Predicate:
    """Some agent's ;1 channel entered a bridge of the call (the queue or a dial answered)."""
    return lambda e: (
        e.get("Event") == "BridgeEnter"
        and e.get("Linkedid") == linkedid
        and e.get("Channel", "").startswith("Local/1")
        and "@agent-phones-" in e.get("Channel", "")
        and e.get("Channel", "").endswith(";1")
    )


def ext_of(channel: str) -> str:
    return channel.removeprefix("Local/").split("@")[0]


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def wait_reconnected(live: Live, after: int, timeout: float = 60) -> None:
    """The service's AMI listener logged in more than `after` times."""
    assert live.service is not None
    listener = live.service.tracking.listener
    async with asyncio.timeout(timeout):
        while listener.connections <= after or not listener.connected:
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("down", ["core_stop", "kill_9"])
async def test_asterisk_restarted_mid_call_the_call_is_logged_once_with_its_true_end(
    live: Live, down: str
) -> None:
    """`core stop`: Asterisk hangs every call up (SoftHangupRequest with the shutdown flag,
    Hangup, then Shutdown), so the end is seen and the PBX hung up. kill -9: nothing more comes;
    the end is the last event seen before it, and the record says it was inferred."""
    await live.manager("101")
    await live.flag("agenttalk", "101", 60)
    await live.start_service()
    logins = live.service.tracking.listener.connections if live.service else 0

    linkedid = await live.call_in("+79161236001", talk=60, name="Cut Off")
    await live.bridged_agent(linkedid, "101")
    stopping = time.time()
    await asyncio.to_thread(live.kit.stop if down == "core_stop" else live.kit.kill)
    stopped = time.time()
    await asyncio.to_thread(live.kit.start)
    await live.connect_ami()
    await wait_reconnected(live, logins)

    # the service follows the new Asterisk: a call after the restart is logged too
    after = await live.call_in("+79161236002", talk=3, name="After Restart")
    next_call = await live.logged(after)
    assert next_call.status == "answered"
    # and 101 is free again for the router: the cut-off call did not leave them "talking"
    assert 'SET VARIABLE CRM_TARGET "101"' in [
        e["Command"] for e in live.of_call(after, "AGIExecStart")
    ]
    assert next_call.agent_extension == "101"

    rows = await live.communications(linkedid)
    assert len(rows) == 1, [(r.status, r.extra) for r in rows]
    record = rows[0]
    assert record.status == "answered"
    assert record.extra["answered_by"] == "101"
    assert record.ended_at is not None
    # the end is when Asterisk went down, not when the service found out
    assert (
        at(stopping) - timedelta(seconds=1) <= record.ended_at <= at(stopped) + timedelta(seconds=1)
    )
    assert len(await live.communications()) == 2
    if down == "core_stop":  # nobody of the call hung up: Asterisk did, and it said so
        assert record.extra["hung_up_by"] == "pbx"
        assert record.extra["end_inferred"] is False
    else:  # Asterisk vanished: the end is inferred from the last event seen, never later
        assert record.extra["end_inferred"] is True
        assert record.extra["hung_up_by"] != "caller"


async def test_the_service_started_mid_call_adopts_the_call_and_logs_it_once(
    live: Live,
) -> None:
    await live.manager("101")
    await live.manager("102")
    # no service yet: no router either, the call goes to the queue, a member answers
    started = time.time()
    linkedid = await live.call_in("+79161236003", talk=12, name="Early Caller")
    agent = await live.ami.wait_for(agent_bridged(linkedid))
    await live.start_service()
    record = await live.logged(linkedid)

    assert record.direction == "in"
    assert record.phone == "+79161236003"
    assert record.status == "answered"
    assert record.extra["missed"] is False
    assert record.extra["final_agent"] == ext_of(agent["Channel"])
    assert record.agent_extension == ext_of(agent["Channel"])
    assert (
        at(started) - timedelta(seconds=2)
        <= record.occurred_at
        <= at(started) + timedelta(seconds=3)
    )
    assert record.extra["hung_up_by"] == "caller"
    assert len(await live.communications()) == 1
    assert await live.tasks() == []


async def test_the_service_started_after_a_blind_transfer_adopts_the_call(live: Live) -> None:
    await live.manager("101")
    await live.manager("102")
    linkedid = await live.call_in("+79161236004", talk=16, name="Moved Caller")
    first = await live.bridged_agent(linkedid)  # with the caller in it: else "Transfer invalid"
    since = live.ami.mark()
    other = "102" if ext_of(first) == "101" else "101"
    await live.ami.ok("BlindTransfer", Channel=first, Context="transfer-internal", Exten=other)
    await live.ami.wait_for(agent_bridged(linkedid), since)  # the target answered
    await live.start_service()  # the caller's channel now runs in transfer-internal
    record = await live.logged(linkedid)

    assert record.direction == "in"
    assert record.phone == "+79161236004"
    assert record.status == "answered"
    assert record.extra["final_agent"] == other
    assert record.extra["hung_up_by"] == "caller"
    assert len(await live.communications()) == 1
    assert await live.tasks() == []
