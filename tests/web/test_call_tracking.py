"""Call tracking's publisher as the service wires it (web/compose.py: hub.staged)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import StagedPublisher, collect_event, unit_of_work
from crm_core.events.messages import CallRingingMessage
from crm_core.events.types import CallEvent
from notifier.hub import EventHub
from telephony.presence_pusher import PresencePusher
from tests.telephony.pbx import ami_settings, service_settings
from web.parts.call_tracking import CallTracking

pytestmark = pytest.mark.usefixtures("db")


class _Told:
    """Where the pusher would hear of committed presence changes: what it was told, when."""

    def __init__(self) -> None:
        self.told: list[list[Any]] = []

    def changed(self, events: list[Any]) -> None:
        self.told.append(list(events))


async def test_a_batch_is_staged_in_its_transaction_then_told_to_people_and_the_pusher(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    hub = EventHub(database_url, queue_size=64)
    sub = hub.subscribe({"ext:101"})
    sub.go_live(0)
    await hub.start()
    try:
        async with asyncio.timeout(10):
            await hub.wait_ready()
        tracking = CallTracking(service_settings(ami_settings(0)), sessions, hub.staged)
        pusher = _Told()
        tracking.pusher = cast(PresencePusher, pusher)
        publish = tracking._pipeline_publisher()
        assert isinstance(publish, StagedPublisher)
        ring = CallEvent(CallRingingMessage.TYPE, "L1", ("101",), {"call": {"linkedid": "L1"}})
        async with unit_of_work(sessions, publish) as session:
            await session.execute(text("SELECT 1"))
            collect_event(session, ring)
        # committed: staged and released, so on event_log and nothing left staged
        async with sessions() as session:
            staged = await session.scalar(text("SELECT count(*) FROM event_staged"))
            logged = await session.scalar(
                text("SELECT count(*) FROM event_log WHERE channel = 'ext:101'")
            )
        assert (staged, logged) == (0, 1)
        assert pusher.told == [[ring]]
        async with asyncio.timeout(10):
            (frame,) = await sub.next_frames()
        assert json.loads(frame)["payload"]["call"]["linkedid"] == "L1"
    finally:
        await hub.stop()
