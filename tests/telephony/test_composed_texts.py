"""The words the service writes when a call opens records are in DEFAULT_LOCALE: a missed call
from a new number, replayed through the service's own call tracking, gives a Russian card, deal
and callback task with DEFAULT_LOCALE=ru and English ones with en (issue 14, "Language")."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.deals.models import Deal
from crm_core.tasks.models import Task
from tests.telephony.pbx import call_rows, replayed_pbx

pytestmark = pytest.mark.usefixtures("db")

# the recording's caller, as the service normalises it
CALLER = "+79031234567"
LATIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

EXPECTED = {
    "ru": {
        "task": f"Перезвонить {CALLER}: пропущенный звонок",
        "deal": f"Входящий звонок {CALLER}",
        "source": "Входящий звонок",
    },
    "en": {
        "task": f"Call back {CALLER}: missed call",
        "deal": f"Inbound call {CALLER}",
        "source": "Inbound call",
    },
}


@pytest.mark.parametrize("locale", ["ru", "en"])
async def test_a_missed_call_writes_its_task_deal_and_card_in_default_locale(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, locale: str
) -> None:
    monkeypatch.setenv("DEFAULT_LOCALE", locale)
    async with replayed_pbx(sessions) as pbx:
        await pbx.play("inbound_abandoned", renumber=False)
    [call] = await call_rows(sessions)
    assert call.status == "abandoned" and call.phone == CALLER
    async with sessions() as s:
        task = await s.scalar(select(Task).where(Task.kind == "callback"))
        deal = await s.get(Deal, call.deal_id)
        card = await s.get(Client, call.client_id)
    assert task is not None and deal is not None and card is not None
    want = EXPECTED[locale]
    assert (task.title, deal.title, card.lead_source) == (
        want["task"],
        want["deal"],
        want["source"],
    )
    if locale == "ru":
        # nothing English left in what the service composed (the number is the caller's own)
        for written in (task.title, deal.title, card.lead_source or ""):
            assert not LATIN & set(written), written
