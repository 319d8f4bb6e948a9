"""crm_core.calls.progress and .active: what each call fact means to the CRM, with typed inputs and
no PBX (the call as a CallInfo, who it is with from active_calls)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.calls import active, progress
from crm_core.calls import service as calls_service
from crm_core.calls.models import ActiveCall, AgentState
from crm_core.calls.schemas import NO_CONTEXT, CallContext, CallInfo, CallRecord
from crm_core.clients.models import Client, ClientEmail, ClientPhone
from crm_core.communications.models import Communication
from crm_core.db import driver_connection, make_session_factory, unit_of_work
from crm_core.deals.models import Deal
from crm_core.events.types import CallEvent
from crm_core.tasks.models import Task
from crm_core.users.models import User

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime.now(UTC).replace(microsecond=0)
COMPANY = frozenset({"+74951112233"})


def _call(linkedid: str = "1.1", number: str = "89031234567", **changes: Any) -> CallInfo:
    call = CallInfo(
        linkedid=linkedid,
        direction="inbound",
        state="waiting",
        caller_number=number,
        caller_name="Unknown",
        did_or_dialled="84951112233",
        agent_extension=None,
        ringing=(),
        talking=None,
        started_at=NOW,
        answered_at=None,
    )
    return replace(call, **changes)


def _record(linkedid: str = "1.1", **changes: Any) -> CallRecord:
    record = CallRecord(
        linkedid=linkedid,
        direction="in",
        status="abandoned",
        missed=True,
        client_number="89031234567",
        client_name=None,
        answered_by=None,
        agent_extension=None,
        final_agent=None,
        agents_rung=["101"],
        ring_seconds=3.5,
        talk_seconds=0.0,
        started_at=NOW,
        answered_at=None,
        ended_at=NOW + timedelta(seconds=4),
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


class Events:
    def __init__(self) -> None:
        self.calls: list[CallEvent] = []

    async def __call__(self, events: list[Any]) -> None:
        self.calls += [e for e in events if isinstance(e, CallEvent)]


async def _started(sessions: async_sessionmaker[AsyncSession], call: CallInfo) -> CallContext:
    """Both halves of a call's start in one transaction (the pipeline runs them apart)."""
    async with unit_of_work(sessions) as s:
        start = await progress.who_is_calling(s, call, at=NOW, region="RU", company_numbers=COMPANY)
        if start.to_open:
            return await progress.open_card(s, call, at=NOW, region="RU", company_numbers=COMPANY)
        return start.context


async def test_an_unknown_caller_gets_a_card_and_a_deal_remembered_with_the_call(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ctx = await _started(sessions, _call())
    assert ctx.client_created and ctx.client_number == "+79031234567"
    async with sessions() as s:
        client = await s.get(Client, ctx.client_id)
        deal = await s.get(Deal, ctx.deal_id)
        row = await s.get(ActiveCall, "1.1")
    assert client is not None and client.name == "+79031234567"
    assert deal is not None and deal.client_id == client.id
    assert row is not None
    assert (row.client_id, row.deal_id, row.client_created) == (client.id, deal.id, True)
    assert row.caller_number == "89031234567" and row.state == "waiting"

    # a second call from the same number finds the card, and says it is not new
    again = await _started(sessions, _call("1.2"))
    assert (again.client_id, again.deal_id, again.client_created) == (client.id, deal.id, False)


async def test_a_company_number_is_nobody_to_match(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ctx = await _started(sessions, _call(number="84951112233"))
    assert ctx == NO_CONTEXT
    async with sessions() as s:
        assert (await s.scalars(select(Client))).all() == []
        row = await s.get(ActiveCall, "1.1")
    assert row is not None and row.client_id is None


@pytest.mark.parametrize("number", ["89031234567", "84951112233"], ids=["looked_up", "nobody"])
async def test_a_calls_start_on_its_own_does_not_wait_for_its_flush_a_transaction_does(
    db: AsyncEngine, sessions: async_sessionmaker[AsyncSession], number: str
) -> None:
    looked_up = number == "89031234567"
    alone_sql, flushed_sql = (
        (calls_service._LOOK_UP_AND_REMEMBER_ALONE, calls_service._LOOK_UP_AND_REMEMBER)
        if looked_up
        else (active._REMEMBER_ALONE, active._REMEMBER)
    )
    # the pop lane's sessions: each statement is its own transaction
    alone = make_session_factory(db.execution_options(isolation_level="AUTOCOMMIT"))
    sent: list[str] = []

    def note(record: Any) -> None:
        sent.append(record.query)

    async with unit_of_work(alone) as s:
        driver = await driver_connection(s)
        driver.add_query_logger(note)
        try:
            await progress.who_is_calling(
                s, _call("1.1", number), at=NOW, region="RU", company_numbers=COMPANY
            )
        finally:
            await asyncio.sleep(0)  # (asyncpg calls its query loggers with call_soon)
            driver.remove_query_logger(note)
    assert sent == [alone_sql]
    # and that statement's transaction commits without waiting for the flush
    call = _call("1.2")
    params = (
        active.remember_found_params(call, NOW, "+79031234567", None)
        if looked_up
        else [
            call.linkedid,
            call.started_at,
            NOW,
            *(getattr(NO_CONTEXT, name) for name in active._CLIENT_COLUMNS),
            *active._call_columns(call).values(),
        ]
    )
    async with unit_of_work(sessions) as s:
        driver = await driver_connection(s)
        assert await driver.fetchval("SHOW synchronous_commit") == "on"
        await driver.execute(alone_sql, *params)
        assert await driver.fetchval("SHOW synchronous_commit") == "off"
        await s.rollback()
    assert "set_config" not in flushed_sql
    # in a caller's transaction, its work commits as it would (the flush waited for)
    async with unit_of_work(sessions) as s:
        await progress.who_is_calling(
            s, _call("1.3", number), at=NOW, region="RU", company_numbers=COMPANY
        )
        assert await s.scalar(text("SHOW synchronous_commit")) == "on"
    async with sessions() as s:
        rows = (await s.scalars(select(ActiveCall.linkedid).order_by(ActiveCall.linkedid))).all()
    assert rows == ["1.1", "1.3"]


async def test_a_click_to_call_is_logged_on_the_deal_it_named_only_if_the_clients(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        client = Client(name="Ivan", phones=[ClientPhone(e164="+79161234567", raw="")])
        other = Client(name="Olga", phones=[ClientPhone(e164="+79160000000", raw="")])
        s.add_all([client, other])
        await s.flush()
        s.add(Deal(id=42, client_id=client.id, title="Offer", amount=Decimal(1), stage_id=1))
        s.add(Deal(id=43, client_id=other.id, title="Other", amount=Decimal(1), stage_id=1))
        await s.commit()
    outbound = _call(
        direction="outbound",
        caller_number="101",
        did_or_dialled="89161234567",
        agent_extension="101",
    )
    named = await _started(sessions, replace(outbound, variables={"CRM_DEAL_ID": "42"}))
    assert (named.client_id, named.deal_id) == (client.id, 42)
    wrong = await _started(
        sessions, replace(outbound, linkedid="1.2", variables={"CRM_DEAL_ID": "43"})
    )
    assert wrong.client_id == client.id and wrong.deal_id == 42  # its open deal, not Olga's
    # what no deal's id can be (too big for one, or not a number) is no deal named: not an error
    for linkedid, junk in (("1.3", "99999999999"), ("1.4", "-5"), ("1.5", "4 2")):
        call = replace(outbound, linkedid=linkedid, variables={"CRM_DEAL_ID": junk})
        assert (await _started(sessions, call)).deal_id == 42

    async with sessions() as s:  # each remembered with the call by the start's one statement
        remembered = await active.contexts(s, ["1.1", "1.2", "1.3", "1.4", "1.5"])
    assert {k: (c.client_id, c.deal_id) for k, c in remembered.items()} == {
        k: (client.id, 42) for k in ("1.1", "1.2", "1.3", "1.4", "1.5")
    }

    # a click-to-call from the card's closed deal is logged there, while a new open deal is
    # opened for the card (as for any caller without one)
    async with sessions() as s:
        deal = await s.get(Deal, 42)
        assert deal is not None
        deal.closed_at = NOW
        await s.commit()
    async with unit_of_work(sessions) as s:
        start = await progress.who_is_calling(
            s,
            replace(outbound, linkedid="1.6", variables={"CRM_DEAL_ID": "42"}),
            at=NOW,
            region="RU",
            company_numbers=COMPANY,
        )
    closed, to_open = start.context, start.to_open
    assert (closed.client_id, closed.deal_id, to_open) == (client.id, 42, True)
    async with sessions() as s:
        assert (await active.contexts(s, ["1.6"]))["1.6"].deal_id == 42


async def test_the_pop_is_a_read_of_the_card_and_says_whether_the_call_opened_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ctx = await _started(sessions, _call())
    events = Events()
    async with unit_of_work(sessions, events) as s:
        message = await progress.agent_ringing_pop(s, _call(state="ringing"), "1.1", "101")
        assert not s.new and not s.dirty  # nothing written
    assert message.new_client is True and message.unknown is None
    assert message.card is not None
    assert message.card["client"]["id"] == ctx.client_id
    assert message.card["deal"]["id"] == ctx.deal_id
    assert message.call.client_id == ctx.client_id
    (event,) = events.calls
    assert (event.type, event.linkedid, event.extensions) == ("call.ringing", "1.1", ("101",))
    assert event.payload["card"] == message.card
    async with sessions() as s:
        assert await s.get(AgentState, "101") is None  # the live lane's, not the pop's


async def test_a_pop_for_a_call_the_crm_has_not_matched_says_unknown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = Events()
    async with unit_of_work(sessions, events) as s:
        message = await progress.agent_ringing_pop(s, _call(), "1.1", "101")
    assert message.unknown is True and message.card is None
    (event,) = events.calls
    assert event.payload["unknown"] is True
    assert event.payload["call"]["client_id"] is None
    assert "card" not in event.payload


async def test_the_live_lane_and_the_pop_lane_keep_to_their_own_columns(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    talking = _call(state="talking", talking="101", answered_at=NOW + timedelta(seconds=2))
    async with unit_of_work(sessions) as s:  # the live lane saved a later state first
        await active.save_calls(s, [active.CallSave(talking, {"version": 1}, NOW)])
    ctx = await _started(sessions, _call())  # then who is calling arrives
    async with sessions() as s:
        row = await s.get(ActiveCall, "1.1")
        assert row is not None
        assert (row.state, row.talking, row.answered_at) == ("talking", "101", talking.answered_at)
        assert row.tracker_state == {"version": 1}
        assert row.client_id == ctx.client_id
        assert (await active.contexts(s, ["1.1", "9.9"])) == {"1.1": ctx}
    async with unit_of_work(sessions) as s:  # and a later save keeps the client
        await active.save_calls(s, [active.CallSave(replace(talking, talking="102"), {}, NOW)])
    async with sessions() as s:
        row = await s.get(ActiveCall, "1.1")
        assert row is not None and (row.talking, row.client_id) == ("102", ctx.client_id)


async def test_the_end_logs_on_the_remembered_deal_and_takes_the_call_off(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ctx = await _started(sessions, _call())
    events = Events()
    async with unit_of_work(sessions, events) as s:
        (remembered,) = (await active.end_calls(s, ["1.1"])).values()
        assert remembered == ctx
        logged = await progress.call_ended(
            s,
            _record(),
            agents=("101",),
            region="RU",
            company_numbers=COMPANY,
            callback_due=timedelta(minutes=30),
            ended=remembered,
        )
    assert logged is not None and logged.created
    async with sessions() as s:
        comm = await s.scalar(select(Communication))
        task = await s.scalar(select(Task))
        assert await s.get(ActiveCall, "1.1") is None
    assert comm is not None and (comm.client_id, comm.deal_id) == (ctx.client_id, ctx.deal_id)
    assert task is not None and task.client_id == ctx.client_id  # the missed call's callback
    (ended,) = events.calls
    assert ended.type == "call.ended" and ended.extensions == ("101",)
    assert ended.payload["communication_id"] == comm.id
    assert ended.payload["missed"] is True


async def test_calls_ended_together_are_logged_as_one_by_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The log lane takes a batch's rows off at once (`end_calls`) and reads their cards and
    deals (`load_matched`): each call lands on its own remembered deal, a call nobody matched
    has no context, and a second end of the same call finds nothing."""
    first = await _started(sessions, _call("1.1", "89031234567"))
    second = await _started(sessions, _call("2.1", "89037654321"))
    async with unit_of_work(sessions) as s:
        ended = await active.end_calls(s, ["2.1", "1.1", "9.9", "1.1"])
        held = await active.load_matched(s, ended.values())
        assert sorted(ended) == ["1.1", "2.1"]
        assert ended["1.1"] == first and ended["2.1"] == second
        assert len(held) == 4  # two cards, two deals
        assert await active.end_calls(s, ["1.1"]) == {}
        for linkedid, number in (("1.1", "89031234567"), ("2.1", "89037654321")):
            logged = await progress.call_ended(
                s,
                _record(linkedid, client_number=number),
                agents=("101",),
                region="RU",
                company_numbers=COMPANY,
                callback_due=timedelta(minutes=30),
                ended=ended.pop(linkedid),
            )
            assert logged is not None and logged.created
    async with sessions() as s:
        comms = (await s.scalars(select(Communication).order_by(Communication.id))).all()
        assert (await s.scalars(select(ActiveCall))).all() == []
    assert [(c.external_id, c.client_id, c.deal_id) for c in comms] == [
        ("1.1", first.client_id, first.deal_id),
        ("2.1", second.client_id, second.deal_id),
    ]


async def test_agents_phones_follow_the_call_and_a_stale_free_is_ignored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = Events()
    async with unit_of_work(sessions, events) as s:
        phones = active.AgentPhones()
        progress.agent_ringing(phones, "1.1", "101", NOW)
        await progress.call_answered(
            s, phones, _call(state="talking"), NO_CONTEXT, linkedid="1.1", extension="101", at=NOW
        )
        progress.call_over(phones, "2.2", ("101",), NOW)  # another call's end: not 101's
        await phones.write(s)
    async with sessions() as s:
        state = await s.get(AgentState, "101")
        assert state is not None and (state.state, state.linkedid) == ("talking", "1.1")
    assert [(e.type, e.payload["answered_by"]) for e in events.calls] == [("call.answered", "101")]
    async with unit_of_work(sessions) as s:
        phones = active.AgentPhones()
        progress.call_over(phones, "2.2", ("101",), NOW)  # alone in its batch: still not 101's
        await phones.write(s)
    async with sessions() as s:
        state = await s.get(AgentState, "101")
        assert state is not None and state.state == "talking"
    async with unit_of_work(sessions) as s:
        phones = active.AgentPhones()
        progress.call_over(phones, "1.1", ("101",), NOW)
        await phones.write(s)
    async with sessions() as s:
        state = await s.get(AgentState, "101")
        assert state is not None and (state.state, state.linkedid) == ("free", None)


def test_a_batch_of_phone_changes_folds_to_what_one_by_one_would_leave() -> None:
    later = NOW + timedelta(seconds=1)
    phones = active.AgentPhones()
    phones.set("101", "free", "0.9", NOW)  # first in the batch: depends on the row
    phones.set("102", "free", "0.9", NOW)
    phones.set("102", "ringing", "1.1", NOW)  # overwrites whatever that free did
    phones.set("102", "free", "2.2", later)  # another call's: ignored
    phones.set("103", "talking", "1.1", NOW)
    phones.set("103", "free", "1.1", later)
    frees, rows = phones.folded()
    assert frees == [("101", "0.9", NOW)]
    assert rows == [
        {"extension": "102", "state": "ringing", "linkedid": "1.1", "since": NOW},
        {"extension": "103", "state": "free", "linkedid": None, "since": later},
    ]


async def test_who_is_calling_opens_nothing_and_the_card_follows_apart(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(sessions) as s:
        start = await progress.who_is_calling(
            s, _call(), at=NOW, region="RU", company_numbers=COMPANY
        )
    ctx, to_open = start.context, start.to_open
    assert to_open is True
    assert ctx == CallContext(client_number="+79031234567")  # by number alone: a new caller
    async with sessions() as s:
        assert (await s.scalars(select(Client))).all() == []
    events = Events()
    async with unit_of_work(sessions, events) as s:  # the pop meanwhile: a new caller, no card
        pop = await progress.agent_ringing_pop(s, _call(state="ringing"), "1.1", "101")
    assert pop.new_caller is True and pop.card is None and pop.unknown is None
    assert pop.call.client_number == "+79031234567"

    async with unit_of_work(sessions, events) as s:
        opened = await progress.open_card(s, _call(), at=NOW, region="RU", company_numbers=COMPANY)
        message = await progress.card_opened(s, "1.1")
        assert message is not None
        progress.card_opened_pop(s, message, ["101"])
    async with sessions() as s:
        client = await s.get(Client, opened.client_id)
        row = await s.get(ActiveCall, "1.1")
    assert client is not None and opened.client_created
    assert row is not None and (row.client_id, row.deal_id) == (opened.client_id, opened.deal_id)
    ringing, card = events.calls
    assert (card.type, card.extensions) == ("call.card_opened", ("101",))
    assert (card.payload["client_id"], card.payload["deal_id"]) == (
        opened.client_id,
        opened.deal_id,
    )
    assert card.payload["card"]["client"]["name"] == "+79031234567"
    assert card.payload["new_client"] is True
    assert ringing.payload["new_caller"] is True

    # the caller is known from now on: who_is_calling finds the card and leaves nothing to open
    async with unit_of_work(sessions) as s:
        start = await progress.who_is_calling(
            s, _call("1.2"), at=NOW, region="RU", company_numbers=COMPANY
        )
    again, to_open = start.context, start.to_open
    assert not to_open and (again.client_id, again.deal_id) == (opened.client_id, opened.deal_id)
    async with sessions() as s:  # found and remembered with the call by the same statement
        assert (await active.contexts(s, ["1.2"])) == {"1.2": again}
        row = await s.get(ActiveCall, "1.2")
    assert row is not None and (row.client_name, row.client_number, row.state) == (
        "+79031234567",
        "+79031234567",
        "waiting",
    )


async def test_a_pop_made_from_what_the_start_read_is_the_pop_a_read_makes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The call's start reads the card as a pop shows it (the pipeline makes the call's first
    pops from that, with no read of their own): for every kind of caller, the same pop."""
    async with sessions() as s:
        olga = User(login="olga", password_hash="x", role="manager", full_name="Olga")
        s.add(olga)
        await s.flush()
        ivan = Client(
            name="Ivan",
            company="Acme",
            notes="VIP",
            responsible_id=olga.id,
            phones=[
                ClientPhone(e164="+79161234567", raw=""),
                ClientPhone(e164="+79161234568", raw=""),
            ],
            emails=[ClientEmail(email="ivan@example.com")],
        )
        petr = Client(name="Petr", phones=[ClientPhone(e164="+79169999999", raw="")])
        s.add_all([ivan, petr])
        await s.flush()
        s.add(Deal(id=42, client_id=ivan.id, title="Offer", amount=Decimal("1500.50"), stage_id=1))
        s.add(Deal(id=43, client_id=ivan.id, title="Renewal", amount=Decimal(7), stage_id=1))
        await s.commit()
    # a missed call from Ivan before: a communication and a callback task on his card
    await _started(sessions, _call("0.1", "89161234567"))
    async with unit_of_work(sessions) as s:
        (before,) = (await active.end_calls(s, ["0.1"])).values()
        await progress.call_ended(
            s,
            _record("0.1", client_number="89161234567"),
            agents=("101",),
            region="RU",
            company_numbers=COMPANY,
            callback_due=timedelta(minutes=30),
            ended=before,
        )

    outbound = {"direction": "outbound", "caller_number": "101", "agent_extension": "101"}
    calls = {
        "known": _call("1.1", "89161234567"),
        "click-to-call from deal 42": _call(
            "1.2", "", did_or_dialled="89161234567", variables={"CRM_DEAL_ID": "42"}, **outbound
        ),
        "a card without an open deal": _call("1.3", "89169999999"),
        "new": _call("1.4", "89035550000"),
        "hidden": _call("1.5", "anonymous"),
        "the company's own number": _call("1.6", "84951112233"),
    }
    pops = {}
    for name, call in calls.items():
        async with unit_of_work(sessions) as s:
            start = await progress.who_is_calling(
                s, call, at=NOW, region="RU", company_numbers=COMPANY
            )
        ringing = replace(call, state="ringing")
        made, read = Events(), Events()
        async with unit_of_work(sessions, made) as s:
            from_start = await progress.agent_ringing_pop(
                s, ringing, call.linkedid, "101", at_start=start
            )
        async with unit_of_work(sessions, read) as s:
            from_read = await progress.agent_ringing_pop(s, ringing, call.linkedid, "101")
        assert from_start == from_read, name
        assert [e.payload for e in made.calls] == [e.payload for e in read.calls], name
        pops[name] = from_start

    known = pops["known"].card
    assert known is not None
    assert known["client"] == {
        "id": ivan.id,
        "name": "Ivan",
        "company": "Acme",
        "notes": "VIP",
        "phones": ["+79161234567", "+79161234568"],
        "emails": ["ivan@example.com"],
        "responsible": {"id": olga.id, "name": "Olga"},
    }
    assert (known["deal"]["id"], known["deal"]["amount"]) == (43, "7.00")  # the newest open one
    assert [r["direction"] for r in known["recent"]] == ["in"]  # the missed call
    assert len(known["tasks"]) == 1  # its callback
    named = pops["click-to-call from deal 42"].card
    assert named is not None and named["deal"]["title"] == "Offer"
    dealless = pops["a card without an open deal"].card
    assert dealless is not None and dealless["client"]["name"] == "Petr"
    assert dealless["deal"] is None
    assert pops["new"].new_caller and pops["new"].card is None
    assert pops["hidden"].unknown and pops["the company's own number"].unknown
