from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client, ClientPhone
from crm_core.communications.models import Communication
from crm_core.communications.schemas import CommunicationIn
from crm_core.communications.service import CompanyNumber, log_communication
from crm_core.deals.models import Deal, DealStage
from crm_core.errors import Invalid


def _call(external_id: str = "1795570489.0", phone: str = "89161234567") -> CommunicationIn:
    return CommunicationIn(
        kind="call",
        direction="in",
        status="answered",
        occurred_at=datetime.now(UTC),
        phone=phone,
        contact_name="Ivan Petrov",
        external_id=external_id,
        extra={"agents_rung": ["101"]},
    )


async def _count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_unknown_number_opens_a_card_and_a_deal_in_unsorted(session: AsyncSession) -> None:
    logged = await log_communication(session, _call(), region="RU")
    await session.commit()
    assert logged.created and logged.client_created and logged.deal_created
    phone = await session.scalar(select(ClientPhone))
    assert phone is not None and phone.e164 == "+79161234567"
    client = await session.get(Client, phone.client_id)
    assert client is not None and client.name == "Ivan Petrov"
    deal = await session.get(Deal, logged.communication.deal_id)
    stage = await session.get(DealStage, deal.stage_id)  # type: ignore[union-attr]
    assert stage is not None and stage.name == "Unsorted"
    assert logged.communication.phone == "+79161234567"


async def test_known_number_lands_on_the_open_deal(session: AsyncSession) -> None:
    first = await log_communication(session, _call("a"), region="RU")
    second = await log_communication(session, _call("b", phone="+7 (916) 123-45-67"), region="RU")
    await session.commit()
    assert not second.client_created and not second.deal_created
    assert second.communication.client_id == first.communication.client_id
    assert second.communication.deal_id == first.communication.deal_id
    assert await _count(session, Client) == 1
    assert await _count(session, Deal) == 1


async def test_same_external_id_is_stored_once(session: AsyncSession) -> None:
    a = await log_communication(session, _call(), region="RU")
    b = await log_communication(session, _call(), region="RU")
    await session.commit()
    assert a.created and not b.created
    assert a.communication.id == b.communication.id
    assert await _count(session, Communication) == 1


async def test_two_sessions_inserting_one_event_at_once_make_one_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def log_in_own_session() -> bool:
        async with sessions() as s:
            logged = await log_communication(s, _call("race-1"), region="RU")
            await asyncio.sleep(0.05)  # hold the transaction open so the two overlap
            await s.commit()
            return logged.created

    results = await asyncio.gather(*(log_in_own_session() for _ in range(2)))
    assert sorted(results) == [False, True]
    async with sessions() as s:
        assert await _count(s, Communication) == 1
        assert await _count(s, Client) == 1
        assert await _count(s, Deal) == 1


async def test_company_numbers_never_become_clients(session: AsyncSession) -> None:
    with pytest.raises(CompanyNumber):
        await log_communication(
            session, _call(phone="84951112233"), region="RU", company_numbers={"+74951112233"}
        )
    assert await _count(session, Client) == 0


async def test_garbage_number_is_rejected(session: AsyncSession) -> None:
    with pytest.raises(Invalid, match="not a phone number"):
        await log_communication(session, _call(phone="garbage"), region="RU")
