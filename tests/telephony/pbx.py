"""A replayed PBX wired into the real listener, tracker, pipeline and database, for tests.

Wired by the service's own CallTracking (web/parts/call_tracking.py), without its election.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from crm_core.db import Publisher
from crm_core.presence.settings import PresenceSettings
from crm_core.settings import CoreSettings
from telephony.ami_listener import AmiListener
from telephony.call_pipeline import CallPipeline
from telephony.settings import TelephonySettings
from telephony.testing.replay import ReplayServer
from tests.telephony.helpers import AMI_DIR
from web.parts.call_tracking import CallTracking, call_pipeline
from web.settings import Settings


@dataclass
class Pbx:
    server: ReplayServer
    listener: AmiListener
    pipeline: CallPipeline

    async def play(self, *names: str, speed: float = 0, **options: Any) -> None:
        """Play recordings to the end and wait until the database has everything."""
        await self.server.play([AMI_DIR / f"{n}.ami" for n in names], speed=speed, **options)
        await asyncio.wait_for(self.server.wait_played(), 120)
        await self.settle()

    async def settle(self) -> None:
        await settle_pipeline(self.server, self.pipeline)


async def settle_pipeline(server: ReplayServer, pipeline: CallPipeline) -> None:
    """Every event the replay sent is through the pipeline, in the database and published."""
    async with asyncio.timeout(30):
        # the listener only counts what it read: poll the counter (no event to wait on)
        while pipeline.stats["events"] < server.events_sent:
            await asyncio.sleep(0.01)
        await pipeline.drain()
    # a fact that failed is logged and skipped by the service; in a test it is a bug
    assert pipeline.stats["errors"] == 0, "call facts failed: see the log"


WRAPUP_SECONDS = 30.0  # the service's default, whatever the environment says


def ami_settings(port: int, **overrides: Any) -> TelephonySettings:
    values: dict[str, Any] = {
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": port,
        "AMI_USERNAME": "crm",
        "AMI_SECRET": "crmsecret",
        "AMI_PING_INTERVAL": 5.0,
        "AMI_RECONNECT_MIN": 0.05,
        "AMI_RECONNECT_MAX": 0.5,
        **overrides,
    }
    return TelephonySettings(**values)


def service_settings(
    telephony: TelephonySettings,
    company_numbers: tuple[str, ...] = (),
    wrapup_seconds: float = WRAPUP_SECONDS,
) -> Settings:
    """The settings call tracking reads, as the test database's service has them."""
    core = CoreSettings(
        PHONE_DEFAULT_REGION="RU", COMPANY_NUMBERS=list(company_numbers), CALLBACK_DUE_MINUTES=30
    )
    presence = PresenceSettings(WRAPUP_SECONDS=wrapup_seconds)
    return Settings(core=core, telephony=telephony, presence=presence)


@asynccontextmanager
async def replayed_pbx(
    sessions: async_sessionmaker[AsyncSession],
    publish: Publisher | None = None,
    *,
    server: ReplayServer | None = None,
    company_numbers: tuple[str, ...] = (),
) -> AsyncIterator[Pbx]:
    server = server or ReplayServer()
    await server.start()
    tracking = CallTracking(
        service_settings(ami_settings(server.port), company_numbers), sessions, publish
    )
    try:
        await tracking.start_following()
        assert tracking.listener is not None and tracking.pipeline is not None
        await asyncio.wait_for(tracking.listener.wait_connected(), 10)
        yield Pbx(server, tracking.listener, tracking.pipeline)
    finally:
        await tracking.stop_following()
        await server.close()


async def call_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Communication]:
    """Every call logged, oldest first."""
    async with sessions() as s:
        rows = await s.scalars(
            select(Communication).where(Communication.kind == "call").order_by(Communication.id)
        )
        return list(rows.all())


def bare_pipeline(sessions: async_sessionmaker[AsyncSession]) -> CallPipeline:
    """The call pipeline with the service's defaults and nobody listening to its events."""
    return call_pipeline(service_settings(ami_settings(0)), sessions, None)
