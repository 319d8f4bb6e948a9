"""Calls across faults, end to end (replayed real traffic -> listener -> tracker -> database):
a service that connects mid-call, Asterisk killed, the service killed."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls import pbx_sync, progress
from crm_core.calls.models import AgentState
from crm_core.communications.models import Communication
from telephony.call_pipeline import CallPipeline
from telephony.finished_call import ts
from telephony.testing.replay import ReplayServer
from tests.seeding import pbx_sync_state
from tests.telephony.helpers import parse_stream, read_events, read_truth, split_recording
from tests.telephony.pbx import bare_pipeline, call_rows, replayed_pbx, settle_pipeline

pytestmark = pytest.mark.usefixtures("db")


async def _until_logged(sessions: async_sessionmaker[AsyncSession]) -> list[Communication]:
    # the reconnect runs in the listener's own task: wait for its outcome, not for a time
    async with asyncio.timeout(30):
        while not (calls := await call_rows(sessions)):
            await asyncio.sleep(0.05)
    return calls


# ----------------------------------------------------- 3. a call in progress at connect time


@pytest.mark.parametrize("mode", ["fast", "paced"])
async def test_a_service_connecting_after_a_blind_transfer_logs_the_call_once(
    mode: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    name = "service_started_after_blind_transfer"
    (truth,) = read_truth(name)["calls"]
    server = ReplayServer()
    async with replayed_pbx(sessions, server=server) as pbx:
        # The recording begins with the CoreShowChannels answer its client got: the replay
        # makes the listener log in again there and answers it with those channels.
        # (times moved to now, as the adopted call's start comes from our clock and Duration)
        await pbx.play(name, renumber=False, speed=0 if mode == "fast" else 25)
        assert server.logins >= 2
        server.drop_clients()  # and one more reconnect: nothing is logged twice
        await server.wait_logins(3)
        await pbx.settle()
    (call,) = await call_rows(sessions)
    assert call.external_id == truth["linkedid"]
    assert (call.direction, call.status, call.phone) == ("in", "answered", truth["caller"])
    assert call.agent_extension == truth["seen_by_service"]["answered_by"] == "102"
    assert call.extra["final_agent"] == "102"
    assert call.extra["hung_up_by"] == "caller"
    seen = truth["seen_by_service"]
    assert seen["talk_s_at_least"] - 1 <= call.talk_seconds <= seen["talk_s_at_most"] + 1
    assert call.extra["end_inferred"] is False


async def test_the_pipeline_adopts_a_call_from_the_channels_listed_at_connect(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = read_events("service_started_after_blind_transfer")
    listed = [e for e in events if e.get("Event") == "CoreShowChannel"]
    after = [e for e in events if "Timestamp" in e]
    pipeline = bare_pipeline(sessions)
    pipeline.start()
    await pipeline.on_connected(listed)  # what the listener hands over after its login
    await pipeline.on_connected(listed)  # a second reconnect while the call goes on
    for event in after:
        await pipeline.on_event(event, time.time())
    await pipeline.on_connected([])
    await pipeline.close()
    (call,) = await call_rows(sessions)
    assert (call.status, call.agent_extension) == ("answered", "102")
    assert call.extra["end_inferred"] is False


# --------------------------------------------------------------- 4. end times after faults


def _last_event_of_call(path: Path, linkedid: str) -> float:
    events = parse_stream(path.read_bytes())
    return max(
        float(e["Timestamp"]) for e in events if e.get("Linkedid") == linkedid and "Timestamp" in e
    )


async def test_asterisk_killed_mid_call_ends_the_call_at_its_last_event(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    name = "hold_resume"
    (truth,) = read_truth(name)["calls"]
    head, _ = split_recording(name, "MusicOnHoldStart", tmp_path)
    last = _last_event_of_call(head, truth["linkedid"])
    server = ReplayServer()
    async with replayed_pbx(sessions, server=server) as pbx:
        await server.play([head], speed=0, renumber=False, shift_to_now=False)
        await server.wait_played()
        await settle_pipeline(server, pbx.pipeline)
        assert await call_rows(sessions) == []
        # kill -9: no Hangup, no Shutdown; the restarted Asterisk has no channels
        server.live_channels.clear()
        server.drop_clients()
        (call,) = await _until_logged(sessions)
    assert call.extra["end_inferred"] is True
    assert call.ended_at == ts(last)  # not the reconnect time
    assert call.talk_seconds == pytest.approx(last - float(truth["t_answer"]), abs=0.01)
    assert call.talk_seconds < truth["talk_s"]
    assert call.extra["hung_up_by"] is None  # nobody knows who, and the record says so


async def test_the_service_killed_mid_call_does_not_count_its_downtime_as_talk(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    name = "agent_hangs_up_first"
    (truth,) = read_truth(name)["calls"]
    events = read_events(name)
    answered = _answered(events)
    upto = answered + 10  # a little into the talk
    last = max(
        float(e["Timestamp"])
        for e in events[:upto]
        if e.get("Linkedid") == truth["linkedid"] and "Timestamp" in e
    )
    first = bare_pipeline(sessions)
    first.start()
    for event in events[:upto]:
        await first.on_event(event, time.time())
    await first.close()  # killed; the call ends while the service is down

    second = bare_pipeline(sessions)
    assert await second.restore() == 1
    second.start()
    await second.on_connected([])  # Asterisk no longer has the call
    await second.close()
    (call,) = await call_rows(sessions)
    assert call.extra["end_inferred"] is True
    assert call.ended_at == ts(last)
    assert call.talk_seconds == pytest.approx(last - float(truth["t_answer"]), abs=0.01)
    assert call.talk_seconds <= truth["talk_s"]


async def test_core_stop_mid_call_is_logged_as_ended_by_the_pbx(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    name = "asterisk_stopped_mid_call"
    (truth,) = read_truth(name)["calls"]
    async with replayed_pbx(sessions) as pbx:
        await pbx.play(name, renumber=False, shift_to_now=False)
    (call,) = await call_rows(sessions)
    assert call.extra["hung_up_by"] == "pbx"
    assert call.ended_at == ts(float(truth["t_end"]))
    assert call.talk_seconds == pytest.approx(truth["talk_s"], abs=0.01)


# ------------------------------------------ 5. agent_states in sync with the PBX (pbx_sync)


async def _sync_and_101(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[tuple[bool, int] | None, str]:
    async with sessions() as s:
        state = await pbx_sync_state(s)
        phone = await s.get(AgentState, "101")
    assert phone is not None
    return state, phone.state


async def test_the_flag_is_out_of_sync_until_the_reconcile_frees_the_agents_of_calls_lost(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A follower's start and a lost AMI link say "not in sync"; a reconnect's reconcile says
    "in sync" once the agents of the calls that ended unseen are free (the routers wait)."""
    events = read_events("agent_hangs_up_first")
    answered = _answered(events)
    first = bare_pipeline(sessions)  # no restore: a pipeline alone writes no flag
    first.start()
    for event in events[: answered + 10]:
        await first.on_event(event, time.time())
    await first.close()
    assert await _sync_and_101(sessions) == (None, "talking")

    second = bare_pipeline(sessions)  # a new follower: 101's call ended while none was there
    # each live item its own transaction: the mark's place after the reconcile's facts shows
    second._batch = 1
    assert await second.restore() == 1
    assert await _sync_and_101(sessions) == ((False, 1), "talking")
    # 102 busy on a call no tracker knows (its restore failed), 103 on one Asterisk still has
    async with sessions() as s:
        for ext, linkedid in (("102", "1700000000.1"), ("103", "1700000000.2")):
            s.add(AgentState(extension=ext, state="talking", linkedid=linkedid, since=ts(0)))
        await s.commit()
    second.start()
    # Asterisk no longer has 101's call nor 102's (a snapshot of 103's call's channel alone)
    await second.on_connected([{"Event": "CoreShowChannel", "Linkedid": "1700000000.2"}])
    await second.drain()
    assert await _sync_and_101(sessions) == ((True, 1), "free")
    async with sessions() as s:
        states = {a.extension: a.state for a in (await s.scalars(select(AgentState))).all()}
        # 101 freed by a transaction that began before the one that said "in sync" (or by it)
        order = text(
            "SELECT a.xmin::text::bigint <= p.xmin::text::bigint"
            " FROM agent_states a, pbx_sync p WHERE a.extension = '101'"
        )
        freed_first = await s.scalar(order)
    assert (states["102"], states["103"]) == ("free", "talking")
    assert freed_first

    await second.on_lost()  # the link drops: a new episode
    await second.drain()
    assert await _sync_and_101(sessions) == ((False, 2), "free")
    await second.on_connected([])
    await second.drain()
    assert await _sync_and_101(sessions) == ((True, 2), "free")

    # another follower takes over (a demotion): what the one before still drains counts no more,
    # nor frees the agents the new one knows busy
    third = bare_pipeline(sessions)
    await third.restore()
    async with sessions() as s:
        s.add(AgentState(extension="104", state="talking", linkedid="1700000000.4", since=ts(0)))
        await s.commit()
    await second.on_lost()
    await second.on_connected([])
    await second.close()
    assert await _sync_and_101(sessions) == ((False, 3), "free")
    async with sessions() as s:
        taken = await s.get(AgentState, "104")
    assert taken is not None and taken.state == "talking"


class _RefusingMarks:
    """pbx_sync.mark with the database away for the first `refuse` calls; call number `hold`
    (0-based) waits for `go_on` first. Notes each call's `synced`."""

    def __init__(self, refuse: int, hold: int = -1) -> None:
        self.real = pbx_sync.mark
        self.refuse, self.hold = refuse, hold
        self.tries: list[bool] = []
        self.held, self.go_on = asyncio.Event(), asyncio.Event()

    async def __call__(
        self, session: AsyncSession, follower: uuid.UUID, *, synced: bool, at: datetime
    ) -> bool:
        if len(self.tries) == self.hold:
            self.held.set()
            await self.go_on.wait()
        self.tries.append(synced)
        if len(self.tries) <= self.refuse:
            raise ConnectionError("the database is away")
        return await self.real(session, follower, synced=synced, at=at)


async def _flag(sessions: async_sessionmaker[AsyncSession]) -> tuple[bool, int] | None:
    async with sessions() as s:
        return await pbx_sync_state(s)


def _answered(events: list[dict[str, str]]) -> int:
    """Where the agent's leg is answered in a recording."""
    return next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "DialEnd" and e.get("DialStatus") == "ANSWER" and e.get("Channel")
    )


async def _written_again(
    pipeline: CallPipeline, marks: _RefusingMarks, sessions: async_sessionmaker[AsyncSession]
) -> str:
    """The held retry goes on: "in sync" is written at the third try; then 101's state."""
    marks.go_on.set()
    async with asyncio.timeout(30):  # bounds a failure only
        while await _flag(sessions) != (True, 1):
            await asyncio.sleep(0.02)
    await pipeline.drain()
    await pipeline.close()
    assert marks.tries == [True, True, True]
    async with sessions() as s:
        phone = await s.get(AgentState, "101")
    return phone.state if phone is not None else "none"


async def test_a_mark_the_database_refused_is_written_again(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the "in sync" mark (its batch, then alone): it is written again
    later, not lost (the routers would distrust agent_states for the whole episode)."""
    monkeypatch.setattr("telephony.call_pipeline.SYNC_RETRY_SECONDS", 0.05)
    marks = _RefusingMarks(refuse=2, hold=2)  # the retry waits until we have looked
    monkeypatch.setattr(pbx_sync, "mark", marks)
    pipeline = bare_pipeline(sessions)
    await pipeline.restore()
    pipeline.start()
    await pipeline.on_connected([])
    await pipeline.drain()
    assert await _flag(sessions) == (False, 1)
    async with asyncio.timeout(30):  # bounds a failure only: the retry is 0.05 s away
        await marks.held.wait()
    await _written_again(pipeline, marks, sessions)


async def test_a_refused_mark_is_not_written_again_once_a_newer_one_is_queued(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("telephony.call_pipeline.SYNC_RETRY_SECONDS", 0.05)
    marks = _RefusingMarks(refuse=2)
    monkeypatch.setattr(pbx_sync, "mark", marks)
    pipeline = bare_pipeline(sessions)
    await pipeline.restore()
    pipeline.start()
    # lost and back in one batch: refused (its last word), then "lost" alone, refused: it is
    # not the newest, so only "in sync" (alone, written) counts
    await pipeline.on_lost()
    await pipeline.on_connected([])
    await pipeline.drain()
    assert marks.tries == [True, False, True]
    assert await _flag(sessions) == (True, 1)
    # "lost" refused twice, then "in sync" queued before its retry: only the newer lands
    marks.refuse = len(marks.tries) + 2
    await pipeline.on_lost()
    await pipeline.drain()
    await pipeline.on_connected([])
    await asyncio.sleep(0.1)  # the retry's timer (0.05 s) is due before this one
    await pipeline.drain()
    await pipeline.close()
    assert marks.tries == [True, False, True, False, False, True]
    assert await _flag(sessions) == (True, 1)


async def test_a_mark_written_again_keeps_the_agents_of_calls_begun_since(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "in sync" mark frees agents busy on calls Asterisk did not have at the reconcile; by
    the time it is written again, 101 is talking on a call that began since: 101 stays busy."""
    monkeypatch.setattr("telephony.call_pipeline.SYNC_RETRY_SECONDS", 0.05)
    events = read_events("agent_hangs_up_first")
    answered = _answered(events)
    marks = _RefusingMarks(refuse=2, hold=1)  # its try alone waits while the call comes in
    monkeypatch.setattr(pbx_sync, "mark", marks)
    pipeline = bare_pipeline(sessions)
    await pipeline.restore()
    pipeline.start()
    await pipeline.on_connected([])  # Asterisk has no call
    async with asyncio.timeout(30):  # bounds a failure only
        await marks.held.wait()
    # queued behind it, committed in the next batch: before the retry, 0.05 s later
    for event in events[: answered + 10]:
        await pipeline.on_event(event, time.time())
    assert await _written_again(pipeline, marks, sessions) == "talking"


async def test_a_mark_written_again_frees_the_agents_of_calls_ended_since(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asterisk had 101's call at the reconcile; the mark is refused, and the call's end comes
    while the database is still away (its agents' release lost with it): the mark written
    again no longer keeps that call, and 101 is free."""
    monkeypatch.setattr("telephony.call_pipeline.SYNC_RETRY_SECONDS", 0.05)
    events = read_events("agent_hangs_up_first")
    answered = _answered(events)
    pipeline = bare_pipeline(sessions)
    await pipeline.restore()
    pipeline.start()
    for event in events[: answered + 10]:
        await pipeline.on_event(event, time.time())
    await pipeline.drain()
    (call,) = pipeline.tracker.active_calls()
    marks = _RefusingMarks(refuse=2, hold=1)
    monkeypatch.setattr(pbx_sync, "mark", marks)

    def away(*args: object, **kwargs: object) -> None:
        raise ConnectionError("the database is away")

    monkeypatch.setattr(progress, "call_over", away)
    await pipeline.on_connected([{"Event": "CoreShowChannel", "Linkedid": call.linkedid}])
    async with asyncio.timeout(30):  # bounds a failure only
        await marks.held.wait()
    for event in events[answered + 10 :]:  # the call ends, queued behind the mark
        await pipeline.on_event(event, time.time())
    assert await _written_again(pipeline, marks, sessions) == "free"


async def test_a_not_in_sync_mark_written_again_keeps_the_episodes_start(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routers stop waiting for an episode 10 minutes old: the "not in sync" mark written
    again after the database came back says when the link was lost, not when it was written."""
    monkeypatch.setattr("telephony.call_pipeline.SYNC_RETRY_SECONDS", 0.05)
    marks = _RefusingMarks(refuse=2, hold=2)
    monkeypatch.setattr(pbx_sync, "mark", marks)
    pipeline = bare_pipeline(sessions)
    await pipeline.restore()
    pipeline.start()
    lost_at = time.time()  # on_lost reads the clock with nothing awaited in between
    await pipeline.on_lost()
    async with asyncio.timeout(30):  # bounds a failure only
        await marks.held.wait()  # the retry, made at least 0.05 s later
    marks.go_on.set()
    async with asyncio.timeout(30):
        while len(marks.tries) < 3:
            await asyncio.sleep(0.02)
    await pipeline.drain()
    await pipeline.close()
    assert marks.tries == [False, False, False]
    assert await _flag(sessions) == (False, 2)  # written: a new episode after the claim's
    async with sessions() as s:
        since = await s.scalar(text("SELECT extract(epoch FROM since) FROM pbx_sync"))
    assert since is not None and float(since) - lost_at < 0.05
