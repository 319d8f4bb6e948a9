"""Every recording, replayed over TCP into the real listener, tracker and database, gives exactly
what its truth file says."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client, ClientPhone
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal
from crm_core.phones import normalize_phone
from crm_core.tasks.models import Task
from tests.telephony.helpers import read_truth, recordings
from tests.telephony.pbx import call_rows, replayed_pbx

pytestmark = pytest.mark.usefixtures("db")


async def _tasks(sessions: async_sessionmaker[AsyncSession]) -> list[Task]:
    async with sessions() as s:
        return list((await s.scalars(select(Task).order_by(Task.id))).all())


async def _deal_42(sessions: async_sessionmaker[AsyncSession], e164: str = "+79161234567") -> None:
    """Click-to-calls name CRM_DEAL_ID=42: the client's deal with that id must exist here."""
    async with sessions() as s:
        client = Client(name="Ivan Petrov", phones=[ClientPhone(e164=e164, raw="")])
        s.add(client)
        await s.flush()
        s.add(Deal(id=42, client_id=client.id, title="Offer", amount=Decimal(100), stage_id=1))
        await s.commit()


def _check(comm: Communication, truth: dict[str, Any], *, timed: bool) -> None:
    inbound = truth["direction"] == "inbound"
    assert comm.external_id == truth["linkedid"]
    assert comm.direction == ("in" if inbound else "out")
    number = truth["caller"] if inbound else truth["dialled_number"]
    assert comm.phone == normalize_phone(number, "RU")
    assert comm.status == truth["status"]
    assert comm.extra["missed"] == truth.get("missed", False)
    if inbound:
        assert comm.extra["agents_rung"] == truth["rang"]
        assert comm.agent_extension == truth["answered_by"]
    else:
        assert comm.agent_extension == truth["agent"]
    transfers = comm.extra["transfers"]
    assert [t["to"] for t in transfers] == (
        [truth["transferred_to"]] if truth["transferred"] else []
    )
    if timed:
        assert comm.ring_seconds == pytest.approx(truth["ring_s"], abs=1.0)
        assert comm.talk_seconds == pytest.approx(truth["talk_s"], abs=1.0)
        if "hold_s" in truth:
            assert comm.extra["hold_s"] == pytest.approx(truth["hold_s"], abs=1.0)
        if truth["transferred"]:
            legs = comm.extra["legs"]
            want = [leg["extension"] for leg in truth.get("legs", [])] or ["101", "102"]
            assert [leg["extension"] for leg in legs] == want
            assert legs[0]["talk_s"] == pytest.approx(truth["talk_before_transfer_s"], abs=1.0)
            assert legs[1]["talk_s"] == pytest.approx(truth["talk_after_transfer_s"], abs=1.0)
    if "hung_up_by" in truth:
        assert comm.extra["hung_up_by"] == truth["hung_up_by"]
    assert comm.extra["end_inferred"] is False  # every recording shows its call's end
    assert [a["result"] for a in comm.extra["ring_attempts"]] == [
        a["result"] for a in truth["ring_attempts"]
    ]


@pytest.mark.parametrize("name", recordings())
@pytest.mark.parametrize("mode", ["fast", "paced", "no_timestamps"])
async def test_recording_logs_exactly_its_truth(
    name: str, mode: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    truth = read_truth(name)
    outbound = [c for c in truth["calls"] if c["direction"] == "outbound"]
    if outbound:
        await _deal_42(sessions, normalize_phone(outbound[0]["dialled_number"], "RU"))
    options: dict[str, Any] = {"renumber": False}
    if mode == "paced":
        options["speed"] = 25.0  # 25x faster than real time: the times come from the headers
    if mode == "no_timestamps":
        options["strip_timestamps"] = True
    async with replayed_pbx(sessions) as pbx:
        await pbx.play(name, **options)
    calls = await call_rows(sessions)
    assert len(calls) == len(truth["calls"])
    for comm, expected in zip(calls, truth["calls"], strict=True):
        _check(comm, expected, timed=mode != "no_timestamps")
        if expected["direction"] == "outbound":
            assert comm.deal_id == 42
    tasks = await _tasks(sessions)
    missed = [c for c in truth["calls"] if c.get("missed")]
    assert len(tasks) == len(missed)
    for task in tasks:
        assert task.kind == "callback" and not task.done
        assert task.client_id == calls[0].client_id


async def test_missed_call_callback_goes_to_first_agent_rung_and_once_per_caller(
    sessions: async_sessionmaker[AsyncSession], make_user: Any
) -> None:
    agent, _ = await make_user(role="operator", extension="101")
    async with replayed_pbx(sessions) as pbx:
        await pbx.play("inbound_missed_queue", "inbound_missed_queue", renumber=True)
    calls = await call_rows(sessions)
    assert len(calls) == 2 and len({c.external_id for c in calls}) == 2
    tasks = await _tasks(sessions)
    assert len(tasks) == 1  # the same number called twice before the callback: one task
    assert tasks[0].assignee_id == agent.id


async def test_the_same_recording_played_twice_logs_nothing_new(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with replayed_pbx(sessions) as pbx:
        await pbx.play("inbound_answered", renumber=False)
        await pbx.play("inbound_answered", renumber=False)
    assert len(await call_rows(sessions)) == 1
    async with sessions() as s:
        assert len((await s.scalars(select(Client))).all()) == 1


async def test_answered_call_belongs_to_the_answering_agent(
    sessions: async_sessionmaker[AsyncSession], make_user: Any
) -> None:
    a101, _ = await make_user(role="operator", extension="101")
    a102, _ = await make_user(role="operator", extension="102")
    async with replayed_pbx(sessions) as pbx:
        await pbx.play("inbound_answered", "inbound_blind_transfer_dial", renumber=False)
    answered, transferred = await call_rows(sessions)
    assert answered.user_id == a101.id
    assert transferred.user_id == a102.id  # the final owner is the last agent who talked
    async with sessions() as s:
        client = await s.get(Client, answered.client_id)
        assert client is not None and client.name == "Ivan Petrov"


async def test_company_numbers_never_become_clients(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with replayed_pbx(sessions, company_numbers=("+79161234567",)) as pbx:
        await pbx.play("inbound_answered", "inbound_abandoned", renumber=False)
    # the company's own number logged nothing; the other caller in the same replay did
    calls = await call_rows(sessions)
    assert [c.phone for c in calls] == ["+79031234567"]
    async with sessions() as s:
        phones = (await s.scalars(select(ClientPhone.e164))).all()
    assert phones == ["+79031234567"]
