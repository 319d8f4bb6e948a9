"""Calls survive what a long-running service meets: cut connections, garbage, restarts."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls import progress
from crm_core.calls.models import ActiveCall
from crm_core.communications.models import Communication
from crm_core.reports.models import QueueEntry
from telephony.testing.replay import ReplayServer
from tests.telephony.helpers import read_events, read_truth
from tests.telephony.pbx import bare_pipeline, call_rows, replayed_pbx

pytestmark = pytest.mark.usefixtures("db")


def _assert_matches(comm: Communication, name: str) -> None:
    truth = read_truth(name)["calls"][0]
    assert comm.external_id == truth["linkedid"]
    assert comm.status == truth["status"]
    assert comm.extra["agents_rung"] == truth["rang"]
    assert comm.agent_extension == truth["answered_by"]
    assert comm.ring_seconds == pytest.approx(truth["ring_s"], abs=1.0)
    assert comm.talk_seconds == pytest.approx(truth["talk_s"], abs=1.0)


async def test_connection_cut_mid_recording_loses_nothing_and_doubles_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    server = ReplayServer()
    async with replayed_pbx(sessions, server=server) as pbx:
        server.cut_after(60)  # in the middle of the call: after the ring, before the answer ends
        await pbx.play("inbound_queue_second_answers", renumber=False)
        assert server.connections >= 2  # it really was cut and came back
    calls = await call_rows(sessions)
    assert len(calls) == 1
    _assert_matches(calls[0], "inbound_queue_second_answers")


GARBAGE = [
    b"this line has no colon\r\n\r\n",
    bytes(range(256)) + b"\r\n\r\n",
    b"Event: SomethingNew\r\nFoo: bar\r\n\r\n",
    b"Event: Hangup\r\nChannel: PJSIP/101-00000\r\n\r\n",  # partial: no Uniqueid, no Linkedid
    b"Event: VarSet\r\nX-Huge: " + b"x" * 1_000_000 + b"\r\n\r\n",  # a 1 MB line
    b"Event: Newchannel\r\nChannel: Local/s@cut",  # a message cut in half, then a new one
    b"\r\n\r\n",
]


async def test_malformed_input_is_skipped_without_losing_the_calls_around_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    server = ReplayServer()
    for i, junk in enumerate(GARBAGE):
        server.inject_after(20 + 15 * i, junk)
    async with replayed_pbx(sessions, server=server) as pbx:
        await pbx.play("inbound_answered", "inbound_abandoned", renumber=False)
        assert pbx.listener.connected
    calls = await call_rows(sessions)
    assert [c.external_id for c in calls] == [
        read_truth("inbound_answered")["calls"][0]["linkedid"],
        read_truth("inbound_abandoned")["calls"][0]["linkedid"],
    ]
    _assert_matches(calls[0], "inbound_answered")


async def test_a_restart_of_the_service_mid_call_loses_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = read_events("inbound_blind_transfer_dial")
    half = len(events) // 2
    first = bare_pipeline(sessions)
    first.start()
    for event in events[:half]:
        await first.on_event(event, time.time())
    await first.close()  # the service stops mid-call
    async with sessions() as s:
        saved = (await s.scalars(select(ActiveCall))).all()
        assert [a.linkedid for a in saved] == ["1795570746.0"]
    assert await call_rows(sessions) == []

    second = bare_pipeline(sessions)  # a new process: nothing in memory but what the DB kept
    assert await second.restore() == 1
    second.start()
    for event in events[half:]:
        await second.on_event(event, time.time())
    await second.close()
    calls = await call_rows(sessions)
    assert len(calls) == 1
    truth = read_truth("inbound_blind_transfer_dial")["calls"][0]
    assert calls[0].talk_seconds == pytest.approx(truth["talk_s"], abs=1.0)
    assert [t["to"] for t in calls[0].extra["transfers"]] == ["102"]
    async with sessions() as s:
        assert (await s.scalars(select(ActiveCall))).all() == []


async def test_a_call_that_ended_while_the_listener_was_away_is_logged_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = read_events("inbound_answered")
    answered_at = next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "DialEnd" and e.get("DialStatus") == "ANSWER" and e.get("Channel")
    )
    pipeline = bare_pipeline(sessions)
    pipeline.start()
    for event in events[: answered_at + 1]:
        await pipeline.on_event(event, time.time())
    # reconnected: Asterisk reports no channels, so the call ended while we were away
    await pipeline.on_connected([])
    await pipeline.on_connected([])  # and a second reconnect changes nothing
    await pipeline.close()
    calls = await call_rows(sessions)
    assert len(calls) == 1 and calls[0].status == "answered"
    assert calls[0].agent_extension == "101"


async def test_an_agent_whose_phone_stopped_ringing_is_free_again_mid_call(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from crm_core.calls.models import AgentState

    events = read_events("inbound_queue_second_answers")
    rang = next(
        i for i, e in enumerate(events) if e.get("Event") == "DialBegin" and e.get("Channel")
    )
    no_answer = next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "DialEnd" and e.get("DialStatus") == "NOANSWER" and e.get("Channel")
    )
    pipeline = bare_pipeline(sessions)
    pipeline.start()

    async def state_of(ext: str) -> str | None:
        async with sessions() as s:
            row = await s.get(AgentState, ext)
            return row.state if row else None

    for event in events[: rang + 1]:
        await pipeline.on_event(event, time.time())
    await pipeline.drain()
    assert await state_of("101") == "ringing"
    for event in events[rang + 1 : no_answer + 1]:
        await pipeline.on_event(event, time.time())
    await pipeline.drain()
    assert await state_of("101") == "free"  # the call goes on in the queue; 101 can be routed to
    await pipeline.close()


@pytest.mark.parametrize(
    ("name", "answered"),
    [("inbound_queue_second_answers", True), ("inbound_missed_queue", False)],
)
async def test_a_restart_while_the_caller_waits_in_a_queue_keeps_the_queue_stay(
    sessions: async_sessionmaker[AsyncSession], name: str, answered: bool
) -> None:
    """The pipeline reads a call's queue stays only for calls it saw queue or restored: the stay
    a first process opened is still answered (or abandoned) and ended by the second."""
    events = read_events(name)
    joined = next(i for i, e in enumerate(events) if e.get("Event") == "QueueCallerJoin")
    first = bare_pipeline(sessions)
    first.start()
    for event in events[: joined + 1]:
        await first.on_event(event, time.time())
    await first.close()
    async with sessions() as s:
        (stay,) = (await s.scalars(select(QueueEntry))).all()
        assert stay.left_at is None and stay.answered_at is None

    second = bare_pipeline(sessions)
    assert await second.restore() == 1
    second.start()
    for event in events[joined + 1 :]:
        await second.on_event(event, time.time())
    await second.close()
    assert len(await call_rows(sessions)) == 1
    async with sessions() as s:
        (stay,) = (await s.scalars(select(QueueEntry))).all()
    assert stay.left_at is not None
    assert (stay.answered_at is not None) == answered
    assert stay.abandoned == (not answered)


async def test_a_call_whose_card_and_log_are_lost_leaves_nothing_behind_in_memory(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the pipeline holds of a call (its card on its way or given up, the agents waiting
    for it, its queue stay) goes with its end even when the card and the log both fail."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database said no")

    monkeypatch.setattr(progress, "open_card", broken)
    monkeypatch.setattr(progress, "call_ended", broken)
    events = read_events("inbound_queue_second_answers")
    linkedid = read_truth("inbound_queue_second_answers")["calls"][0]["linkedid"]
    answered = next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "DialEnd" and e.get("DialStatus") == "ANSWER" and e.get("Channel")
    )
    pipeline = bare_pipeline(sessions)
    pipeline.start()
    for event in events[:answered]:
        await pipeline.on_event(event, time.time())
    await pipeline.drain()
    # mid-call: the card was given up (its agents told, `call.card_failed`), so nobody waits
    # for it, and the call is remembered as one whose card failed; the caller queued
    assert (pipeline._opening, pipeline._uncarded) == (set(), {})
    assert pipeline._card_failed == {linkedid}
    assert pipeline._queued == {linkedid}
    for event in events[answered:]:
        await pipeline.on_event(event, time.time())
    await pipeline.close()
    assert pipeline.stats["errors"] == 2  # the card and the log, nothing else
    assert (pipeline._opening, pipeline._uncarded, pipeline._queued) == (set(), {}, set())
    assert pipeline._card_failed == set()
    assert pipeline._pending == {"pop": {}, "card": {}, "live": {}}
    assert await call_rows(sessions) == []
