"""The call pipeline's lanes: the pop from a read that waits for no batch, a call's messages in
the order its facts happened, and the log after everything else of the call."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.calls import progress
from crm_core.calls.models import ActiveCall, AgentState
from crm_core.clients.models import Client, ClientPhone
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal
from crm_core.events.types import CallEvent
from telephony.call_pipeline import CallPipeline, _CallOver, _Lane
from telephony.tracker import CallTracker, TrackerConfig
from tests.telephony.helpers import read_events, read_truth
from tests.telephony.pbx import call_rows

pytestmark = pytest.mark.usefixtures("db")

CALLER = "+79031234567"  # inbound_abandoned's caller, in E.164


class Published:
    """The pipeline's publisher: every call event, in publishing order."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.arrived = asyncio.Event()

    async def __call__(self, events: list[Any]) -> None:
        self.events += [e for e in events if isinstance(e, CallEvent)]
        self.arrived.set()

    def of_type(self, type_: str) -> list[CallEvent]:
        return [e for e in self.events if e.type == type_]

    async def wait_for(self, type_: str) -> CallEvent:
        async with asyncio.timeout(30):
            while not self.of_type(type_):
                self.arrived.clear()
                await self.arrived.wait()
        return self.of_type(type_)[0]


def _running(
    sessions: async_sessionmaker[AsyncSession],
    company_numbers: tuple[str, ...] = (),
    published: Published | None = None,
    *,
    start: bool = True,
    **options: Any,
) -> tuple[Published, CallPipeline]:
    """A started pipeline (unless `start` is False: its lanes' batches are then the test's to
    apply) and what it publishes (into `published`, if given)."""
    published = published or Published()
    pipeline = CallPipeline(
        CallTracker(TrackerConfig()),
        sessions,
        published,
        region="RU",
        company_numbers=company_numbers,
        callback_due=timedelta(minutes=30),
        **options,
    )
    if start:
        pipeline.start()
    return published, pipeline


@contextlib.asynccontextmanager
async def _locked(db: AsyncEngine, table: str) -> AsyncIterator[AsyncConnection]:
    """Another transaction holding `table` until it rolls back: who writes it waits."""
    async with db.connect() as blocker:
        await blocker.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
        yield blocker


@contextlib.asynccontextmanager
async def _rung_while_locked(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine, table: str
) -> AsyncIterator[tuple[Published, CallPipeline]]:
    """inbound_answered fed up to its agent's ring while another transaction holds `table`;
    on leaving, the lock let go and the call played to its end."""
    published, pipeline = _running(sessions)
    events, rung = _rung_call()
    async with _locked(db, table) as blocker:
        await _feed(pipeline, events[: rung + 1])
        yield published, pipeline
        await blocker.rollback()
    await _feed(pipeline, events[rung + 1 :])
    await pipeline.close()


async def _feed(pipeline: CallPipeline, events: list[dict[str, str]]) -> None:
    for event in events:
        await pipeline.on_event(event, time.time())


async def _played(
    sessions: async_sessionmaker[AsyncSession], events: list[dict[str, str]]
) -> Published:
    """The events through a pipeline of their own, to the end; what it published."""
    published, pipeline = _running(sessions)
    await _feed(pipeline, events)
    await pipeline.close()
    return published


def _rung_call() -> tuple[list[dict[str, str]], int]:
    """inbound_answered's events and the index of the agent's phone rung (DialBegin)."""
    events = read_events("inbound_answered")
    rung = next(
        i for i, e in enumerate(events) if e.get("Event") == "DialBegin" and e.get("Channel")
    )
    return events, rung


def _answered_call() -> tuple[list[dict[str, str]], int]:
    """inbound_answered's events and the index of the agent's answer (DialEnd ANSWER)."""
    events = read_events("inbound_answered")
    answered = next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "DialEnd" and e.get("DialStatus") == "ANSWER" and e.get("Channel")
    )
    return events, answered


async def test_an_unknown_caller_pops_at_once_and_the_card_the_call_opened_follows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    published = await _played(sessions, read_events("inbound_abandoned"))

    async with sessions() as s:
        client = await s.scalar(select(Client).join(ClientPhone).where(ClientPhone.e164 == CALLER))
        assert client is not None
        deal = await s.scalar(select(Deal).where(Deal.client_id == client.id))
        assert deal is not None
    (pop,) = published.of_type("call.ringing")
    assert pop.extensions == ("101",)
    # the pop says "a new caller" and waits for no card: it gets it from the follow-up
    assert pop.payload["new_caller"] is True
    assert pop.payload["call"]["client_id"] is None
    assert pop.payload["call"]["client_number"] == CALLER
    assert "card" not in pop.payload and "unknown" not in pop.payload
    (opened,) = published.of_type("call.card_opened")
    assert published.events.index(opened) > published.events.index(pop)
    assert opened.extensions == ("101",)
    assert opened.payload["new_client"] is True
    assert (opened.payload["client_id"], opened.payload["deal_id"]) == (client.id, deal.id)
    assert opened.payload["card"]["client"]["id"] == client.id
    assert opened.payload["card"]["deal"]["id"] == deal.id
    assert opened.payload["call"]["client_id"] == client.id
    (ended,) = published.of_type("call.ended")
    assert (ended.payload["client_id"], ended.payload["deal_id"]) == (client.id, deal.id)


async def test_a_caller_the_crm_cannot_match_pops_at_once_as_unknown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # the caller's number is one of the company's own: nobody to match, no card to open
    published, pipeline = _running(sessions, company_numbers=(CALLER,))
    await _feed(pipeline, read_events("inbound_abandoned"))
    await pipeline.close()

    (pop,) = published.of_type("call.ringing")
    assert pop.payload["unknown"] is True
    assert pop.payload["call"]["client_id"] is None
    assert "card" not in pop.payload and "new_client" not in pop.payload
    async with sessions() as s:
        assert await s.scalar(select(ClientPhone).where(ClientPhone.e164 == CALLER)) is None


async def test_the_pop_waits_for_no_write_of_the_live_lane(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    # another transaction holds agent_states: every live batch (agents' phones) waits on it
    async with _rung_while_locked(sessions, db, "agent_states") as (published, _):
        pop = await published.wait_for("call.ringing")
        assert pop.payload["new_caller"] is True  # a new caller: the card follows the pop
        opened = await published.wait_for("call.card_opened")
        assert opened.payload["card"]["client"]["phones"] == ["+79161234567"]
        async with sessions() as s:  # the ringing agent is not in the database yet
            assert await s.get(AgentState, "101") is None
    assert len(await call_rows(sessions)) == 1


@pytest.mark.parametrize("name", ["inbound_answered", "inbound_queue_second_answers"])
async def test_each_calls_messages_leave_in_the_order_its_facts_happened(
    sessions: async_sessionmaker[AsyncSession], name: str
) -> None:
    published = await _played(sessions, read_events(name))  # as fast as it goes: the lanes race

    types = [e.type for e in published.events]
    assert types[0] == "call.started"
    assert types.index("call.ringing") < types.index("call.answered")
    assert types[-1] == "call.ended"
    assert types.count("call.ended") == 1
    # the boards drop the call with the agents' phones, before its log: supervisors only
    (hung_up,) = published.of_type("call.hung_up")
    assert types.index("call.hung_up") < types.index("call.ended")
    assert hung_up.extensions == ()
    linkedid = read_truth(name)["calls"][0]["linkedid"]
    assert {e.linkedid for e in published.events} == {linkedid}
    async with sessions() as s:  # the log took the call off the calls in progress
        assert (await s.scalars(select(ActiveCall))).all() == []


async def test_a_call_in_progress_is_saved_with_who_it_is_with(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    published, pipeline = _running(sessions)
    events, answered = _answered_call()
    await _feed(pipeline, events[: answered + 1])
    await pipeline.drain()
    async with sessions() as s:
        (row,) = (await s.scalars(select(ActiveCall))).all()
    (opened,) = published.of_type("call.card_opened")  # a new caller: the pop's follow-up
    assert row.view == {
        **row.view,
        "direction": "inbound",
        "state": "talking",
        "talking": "101",
        "client_id": opened.payload["client_id"],
        "deal_id": opened.payload["deal_id"],
        "client_number": "+79161234567",
    }
    assert row.client_created is True
    assert row.tracker_state["call"]["linkedid"] == row.linkedid
    await _feed(pipeline, events[answered + 1 :])
    await pipeline.close()


async def test_a_new_callers_pop_leaves_before_its_card_exists_and_the_card_follows_it(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    published, pipeline = _running(sessions)
    events, answered = _answered_call()
    caller = "+79161234567"
    # another transaction holds the clients table: no card can be opened until it lets go
    async with _locked(db, "clients") as blocker:
        await _feed(pipeline, events[: answered + 1])
        pop = await published.wait_for("call.ringing")
        assert pop.payload["new_caller"] is True and "card" not in pop.payload
        assert pop.payload["call"]["client_number"] == caller
        async with sessions() as s:  # published before the card exists
            assert await s.scalar(select(ClientPhone).where(ClientPhone.e164 == caller)) is None
        # neither the card nor what follows the pop of the call has gone out meanwhile
        assert published.of_type("call.card_opened") == []
        assert published.of_type("call.answered") == []
        await blocker.rollback()
    opened = await published.wait_for("call.card_opened")
    await _feed(pipeline, events[answered + 1 :])
    await pipeline.close()

    async with sessions() as s:
        client = await s.scalar(select(Client).join(ClientPhone).where(ClientPhone.e164 == caller))
        assert client is not None
        (deal,) = (await s.scalars(select(Deal).where(Deal.client_id == client.id))).all()
        (logged,) = (await s.scalars(select(Communication))).all()  # logged once, on the card
    assert (logged.client_id, logged.deal_id) == (client.id, deal.id)
    # the follow-up carries the committed ids and the card, to the agent whose pop lacked it
    assert opened.extensions == ("101",)
    assert (opened.payload["client_id"], opened.payload["deal_id"]) == (client.id, deal.id)
    assert opened.payload["client_name"] == client.name
    assert opened.payload["card"]["client"]["phones"] == [caller]
    assert opened.payload["card"]["deal"]["id"] == deal.id
    # every later message of the call knows who it is with; each message went out once
    (answer,) = published.of_type("call.answered")
    assert (answer.payload["call"]["client_id"], answer.payload["call"]["deal_id"]) == (
        client.id,
        deal.id,
    )
    types = [e.type for e in published.events]
    assert types == [
        "call.started",
        "call.ringing",
        "call.card_opened",
        "call.answered",
        "call.hung_up",
        "call.ended",
    ]


@pytest.mark.parametrize("name", ["inbound_answered", "ring_group_second_answers"])
async def test_a_card_that_cannot_be_opened_is_said_to_every_agent_whose_pop_awaited_it(
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    name: str,
) -> None:
    async def refused(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database refuses the card")

    monkeypatch.setattr(progress, "open_card", refused)
    published = await _played(sessions, read_events(name))

    pops = [e for e in published.events if e.type == "call.ringing"]
    assert pops and all(p.payload["new_caller"] is True for p in pops)
    failed = published.of_type("call.card_failed")
    # each agent whose pop waited for the card is told, once, after that pop; none is left
    # waiting and nobody is told of a card that came
    told = [e.extensions for e in failed]
    assert sorted(x for exts in told for x in exts) == sorted({p.extensions[0] for p in pops})
    for pop in pops:
        (after,) = [e for e in failed if pop.extensions[0] in e.extensions]
        assert published.events.index(pop) < published.events.index(after)
        assert after.linkedid == pop.linkedid
    assert published.of_type("call.card_opened") == []
    assert "call fact _OpenCard" in caplog.text  # the loss is logged
    # the call is still logged, on a card its end opened (an unknown number's)
    async with sessions() as s:
        (logged,) = (await s.scalars(select(Communication))).all()
        assert logged.client_id is not None and logged.deal_id is not None
    assert published.events[-1].type == "call.ended"


async def test_a_pop_read_after_the_card_is_committed_carries_it_and_gets_no_follow_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    published, pipeline = _running(sessions)
    events, rung = _rung_call()
    await _feed(pipeline, events[:rung])  # the call starts: its card opens before any ring
    opened = await published.wait_for("call.card_opened")
    await pipeline.drain()
    assert opened.extensions == ()  # nobody was rung yet: the supervisors only
    await _feed(pipeline, events[rung:])
    await pipeline.close()

    (pop,) = published.of_type("call.ringing")
    assert pop.payload["new_client"] is True and "new_caller" not in pop.payload
    assert pop.payload["card"]["client"]["id"] == opened.payload["client_id"]
    assert pop.payload["card"]["deal"]["id"] == opened.payload["deal_id"]
    assert len(published.of_type("call.card_opened")) == 1


async def test_a_known_caller_without_an_open_deal_pops_with_the_card_and_gets_the_deal_after(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        client = Client(name="Ivan", phones=[ClientPhone(e164="+79161234567", raw="")])
        s.add(client)
        await s.commit()
    published = await _played(sessions, read_events("inbound_answered"))

    async with sessions() as s:
        (deal,) = (await s.scalars(select(Deal).where(Deal.client_id == client.id))).all()
        (logged,) = (await s.scalars(select(Communication))).all()
    (pop,) = published.of_type("call.ringing")
    assert pop.payload["card"]["client"]["name"] == "Ivan"
    assert pop.payload["card"]["deal"] is None and "new_caller" not in pop.payload
    (opened,) = published.of_type("call.card_opened")
    assert opened.extensions == ("101",)
    assert (opened.payload["client_id"], opened.payload["deal_id"]) == (client.id, deal.id)
    assert opened.payload["new_client"] is False
    assert opened.payload["card"]["deal"]["id"] == deal.id
    assert (logged.client_id, logged.deal_id) == (client.id, deal.id)


async def _waiting_statement(db: AsyncEngine) -> tuple[str, bool]:
    """The statement waiting for a table lock another transaction holds, and whether it is its
    own transaction (began with it: no BEGIN and no earlier statement in the same one).
    pg_locks and pg_stat_activity are read at different moments: both must say it waits for a
    lock, or the activity may still show the statement before (a race seen under load)."""
    async with asyncio.timeout(30):
        while True:
            async with db.connect() as watch:
                row = (
                    await watch.execute(
                        text(
                            "SELECT a.query, a.xact_start = a.query_start AS alone"
                            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                            " WHERE l.locktype = 'relation' AND NOT l.granted"
                            " AND a.wait_event_type = 'Lock'"
                        )
                    )
                ).first()
            if row is not None:
                return row.query, row.alone
            await asyncio.sleep(0.02)


async def test_the_pop_lanes_statements_stand_alone_without_begin_or_commit(
    sessions: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> None:
    # the call's start looks the caller up, then remembers who the call is with: in autocommit
    # the remembering is a transaction of its own (the lookup's is over), two round trips fewer
    async with _rung_while_locked(sessions, db, "active_calls") as (published, _):
        query, alone = await _waiting_statement(db)
        assert "active_calls" in query
        assert alone

    (pop,) = published.of_type("call.ringing")
    assert pop.payload["new_caller"] is True
    types = [e.type for e in published.events]
    assert types.index("call.started") < types.index("call.ringing")
    assert types.index("call.ringing") < types.index("call.card_opened")
    assert len(await call_rows(sessions)) == 1


async def test_a_new_callers_card_is_opened_after_the_first_pop_is_out(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The card's writes would hold the one event loop the agent's pop needs (the phone rings
    # a few ms after the call starts), so the card lane waits for that pop's publish (up to
    # CARD_GRACE, made long here), even with the pop lane idle between the start and the ring.
    # Here the pop's publish is held until the card exists, or a second has gone by: before,
    # the card lane opened the card as soon as the pop lane was idle.
    monkeypatch.setattr("telephony.call_pipeline.CARD_GRACE", 60.0)  # only the pop releases it
    cards_when_popped: list[int] = []

    class HeldPop(Published):
        async def __call__(self, events: list[Any]) -> None:
            if any(isinstance(e, CallEvent) and e.type == "call.ringing" for e in events):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        while not await _cards(sessions):
                            await asyncio.sleep(0.02)
                cards_when_popped.append(await _cards(sessions))
            await super().__call__(events)

    published, pipeline = _running(sessions, published=HeldPop())
    events, rung = _rung_call()
    await _feed(pipeline, events[:rung])
    await published.wait_for("call.started")  # the pop lane has nothing left: it is idle
    await asyncio.sleep(0.2)  # time enough for a card lane that does not wait to open the card
    await _feed(pipeline, events[rung:])
    await pipeline.close()

    assert cards_when_popped == [0]  # no card yet when the pop went out
    (pop,) = published.of_type("call.ringing")
    assert pop.payload["new_caller"] is True
    opened = await published.wait_for("call.card_opened")  # and the card followed it
    assert published.events.index(opened) > published.events.index(pop)
    assert await _cards(sessions) == 1


async def _cards(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        return int(await s.scalar(text("SELECT count(*) FROM clients")) or 0)


async def test_a_pop_soon_after_its_calls_start_is_made_from_what_the_start_read(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The start's statement reads the card as a pop shows it; a ring within
    `start_read_seconds` pops from that, with no read of its own. The card is renamed between
    the start and the ring, so the name on the pop says which was used."""
    async with sessions() as s:
        client = Client(name="Ivan", phones=[ClientPhone(e164="+79161234567", raw="")])
        s.add(client)
        await s.flush()
        s.add(Deal(client_id=client.id, title="Offer", stage_id=1))
        await s.commit()
    events, rung = _rung_call()
    names = []
    for fresh in (60.0, 0.0):
        published, pipeline = _running(sessions, start_read_seconds=fresh)
        await _feed(pipeline, events[:rung])  # the call starts: the card read with the caller
        await pipeline.drain()
        async with sessions() as s:
            renamed = await s.get(Client, client.id)
            assert renamed is not None
            renamed.name = f"Ivan {fresh}"
            await s.commit()
        await _feed(pipeline, events[rung:])
        await pipeline.close()
        (pop,) = published.of_type("call.ringing")
        assert pop.payload["card"]["client"]["id"] == client.id
        assert pop.payload["card"]["deal"]["title"] == "Offer"
        assert published.of_type("call.card_opened") == []  # nothing was opened
        names.append(pop.payload["card"]["client"]["name"])
    # the first pop shows the card as the start read it; the second, too late for that, reads
    assert names == ["Ivan", "Ivan 0.0"]


class Batches(Published):
    """Published, and the call messages' types of each publish, one list per call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    async def __call__(self, events: list[Any]) -> None:
        self.batches.append([e.type for e in events if isinstance(e, CallEvent)])
        await super().__call__(events)


async def _remembered(sessions: async_sessionmaker[AsyncSession], linkedid: str) -> None:
    """Until the call's start has been applied (who it is with is remembered)."""
    async with asyncio.timeout(30):
        while True:
            async with sessions() as s:
                if await s.get(ActiveCall, linkedid) is not None:
                    return
            await asyncio.sleep(0.02)


async def test_a_calls_start_waits_for_its_ring_and_both_leave_in_one_publish(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The agent's phone rings a few ms after the call starts: `call.started` waits for that
    ring (up to `start_hold_seconds`), so that the pop does not queue behind its own call's
    start's publish, and both go in one event_log append."""
    events, rung = _rung_call()
    linkedid = next(e["Linkedid"] for e in events if e.get("Linkedid"))
    published, pipeline = _running(sessions, published=Batches(), start_hold_seconds=60.0)
    await _feed(pipeline, events[:rung])
    await _remembered(sessions, linkedid)
    await asyncio.sleep(0.1)  # without the hold, call.started would have gone by now
    assert published.batches == []
    await _feed(pipeline, events[rung:])
    await pipeline.close()
    assert published.batches[0] == ["call.started", "call.ringing"]
    assert [e.type for e in published.events].count("call.started") == 1

    # not for ever: a call whose agent is not rung within the hold (a queue) is announced alone
    published, pipeline = _running(sessions, published=Batches(), start_hold_seconds=0.05)
    await _feed(pipeline, events[:rung])
    await published.wait_for("call.started")
    assert published.batches[0] == ["call.started"]
    await _feed(pipeline, events[rung:])
    await pipeline.close()
    assert [e.type for e in published.events][:2] == ["call.started", "call.ringing"]


async def test_a_ring_behind_its_calls_new_card_in_one_pop_batch_carries_the_card(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The pop lane may take a new caller's `call.card_opened` and another agent's ring of the
    same call (a ring-all group, a transfer) in one batch, within `start_read_seconds` of the
    start: that pop must show the card (read), not the start's read (no card yet), since the
    follow-up that would bring it has just been sent. The lanes' batches are applied here by
    hand, in that order, on a pipeline whose lanes are not started."""
    published, pipeline = _running(sessions, start=False)
    events, rung = _rung_call()
    await _feed(pipeline, events[: rung + 1])
    start_and_ring = pipeline._take(pipeline._pop)
    assert [type(f).__name__ for f in start_and_ring] == ["CallStarted", "AgentRinging"]
    await pipeline._apply_batch(pipeline._apply_pop, start_and_ring, pop=True)
    (first,) = published.of_type("call.ringing")
    assert first.payload["new_caller"] is True  # 101's pop: no card yet

    await pipeline._apply_batch(pipeline._apply_card, pipeline._take(pipeline._card))
    (opened,) = pipeline._take(pipeline._pop)  # the card, back in the pop lane
    ring = replace(start_and_ring[1], extension="102")
    await pipeline._apply_batch(pipeline._apply_pop, [opened, ring], pop=True)

    (card,) = published.of_type("call.card_opened")
    assert card.extensions == ("101",)
    second = published.of_type("call.ringing")[1]
    assert second.extensions == ("102",)
    assert second.payload["card"]["client"]["id"] == card.payload["client_id"]
    assert "new_caller" not in second.payload


@pytest.mark.parametrize("retried", [False, True])
async def test_a_ring_behind_its_calls_failed_card_in_one_pop_batch_is_told_after_its_pop(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, retried: bool
) -> None:
    """The card lane gives up on a call's card and another agent's ring of the call comes
    before the pop lane takes that news: both in one batch. The ringing agent must be told
    after its pop, once, like the agent rung before; also when the batch fails after both were
    applied and each fact is applied again alone (nothing of the failed try may remain)."""
    pop_of = progress.agent_ringing_pop

    async def refused(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database refuses the card")

    async def pop_unless_103(*args: Any, **kwargs: Any) -> Any:
        if args[3] == "103":  # (session, call, linkedid, extension)
            raise RuntimeError("103's pop cannot be read")
        return await pop_of(*args, **kwargs)

    monkeypatch.setattr(progress, "open_card", refused)
    monkeypatch.setattr(progress, "agent_ringing_pop", pop_unless_103)
    published, pipeline = _running(sessions, start=False)
    events, rung = _rung_call()
    await _feed(pipeline, events[: rung + 1])
    start_and_ring = pipeline._take(pipeline._pop)
    await pipeline._apply_batch(pipeline._apply_pop, start_and_ring, pop=True)
    await pipeline._apply_batch(
        pipeline._apply_card, pipeline._take(pipeline._card), lost=pipeline._card_lost
    )
    (failed,) = pipeline._take(pipeline._pop)  # the news, back in the pop lane
    batch: list[Any] = [failed, replace(start_and_ring[1], extension="102")]
    if retried:  # this ring fails the batch after the others were applied, and alone again
        batch.append(replace(start_and_ring[1], extension="103"))
    await pipeline._apply_batch(pipeline._apply_pop, batch, pop=True)

    pops = published.of_type("call.ringing")
    told = published.of_type("call.card_failed")
    assert [p.extensions for p in pops] == [("101",), ("102",)]
    assert sorted(t.extensions for t in told) == [("101",), ("102",)]
    for pop in pops:
        (after,) = [t for t in told if t.extensions == pop.extensions]
        assert published.events.index(pop) < published.events.index(after)
        assert after.payload["call"] == {"linkedid": pop.linkedid}  # who it is with: unchanged
    assert pipeline._card_failed == {failed.linkedid}
    assert (pipeline._opening, pipeline._uncarded) == (set(), {})
    assert pipeline.stats["errors"] == (2 if retried else 1)  # the card, and 103's pop


async def test_a_lane_waits_for_work_not_for_a_wake_up_whose_work_is_taken() -> None:
    """A lane woken while it was working finds that work taken: waiting again must wait (the
    pop lane holds a call's start this way, for its ring)."""
    lane = _Lane("pop")
    lane.push(_CallOver("1.1", 0.0, ()))
    await asyncio.wait_for(lane.wait(), 30)  # work: no waiting
    lane.push(_CallOver("1.2", 0.0, ()))  # more, while the lane works
    lane.pending.clear()  # both taken: the wake-up the second left is stale
    waiter = asyncio.create_task(lane.wait())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    lane.push(_CallOver("1.3", 0.0, ()))
    await asyncio.wait_for(waiter, 30)


async def test_the_pop_lanes_messages_leave_through_its_own_publisher(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # the service gives the pop lane the hub's publish_shown_first: a screen-pop is on this
    # instance's sockets before event_log numbers it; the other lanes' messages are not pops
    pops = Published()
    published, pipeline = _running(sessions, pop_publish=pops)
    await _feed(pipeline, read_events("inbound_abandoned"))
    await pipeline.close()
    assert [e.type for e in pops.events] == ["call.started", "call.ringing", "call.card_opened"]
    others = {e.type for e in published.events}
    assert "call.ended" in others and others.isdisjoint(e.type for e in pops.events)
