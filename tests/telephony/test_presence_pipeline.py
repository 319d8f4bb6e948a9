"""The call pipeline's presence hook, with a replayed PBX: an answered call puts the agent who
talked into wrap-up from the call's end (published to supervisors, and pushed to the PBX by the
service's own wiring); a missed call does not."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from crm_core.presence.events import PresenceChanged
from crm_core.presence.models import AgentPresence
from tests.conftest import UserFactory
from tests.telephony.pbx import WRAPUP_SECONDS, replayed_pbx

pytestmark = pytest.mark.usefixtures("db")


async def test_an_answered_call_starts_wrapup_for_the_agent_who_talked(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a101, _ = await make_user(role="operator", extension="101")
    published: list[Any] = []

    async def publish(events: list[Any]) -> None:
        published.extend(events)

    async with replayed_pbx(sessions, publish) as pbx:
        await pbx.play("inbound_abandoned")  # moved to now; nobody answered: no wrap-up
        async with sessions() as s:
            assert (await s.get(AgentPresence, a101.id)) is None
        assert not [a for a in pbx.server.actions_received if a.name == "QueueStatus"]
        await pbx.play("inbound_answered")
        # the wrap-up went to the PBX: its queue members looked up to pause 101's
        # (the replayed PBX knows no queues; tests/telephony/test_presence_pusher.py has one)
        async with asyncio.timeout(30):
            while not [a for a in pbx.server.actions_received if a.name == "QueueStatus"]:
                await asyncio.sleep(0.02)
    async with sessions() as s:
        row = await s.get(AgentPresence, a101.id)
        call = await s.scalar(select(Communication).where(Communication.status == "answered"))
    assert row is not None and call is not None and call.ended_at is not None
    assert (row.state, row.source) == ("wrapup", "call")
    seconds = WRAPUP_SECONDS
    assert row.until is not None
    assert abs((row.until - call.ended_at) - timedelta(seconds=seconds)) < timedelta(seconds=1)
    (change,) = [e for e in published if isinstance(e, PresenceChanged)]
    assert (change.user_id, change.state, change.source) == (a101.id, "wrapup", "call")
