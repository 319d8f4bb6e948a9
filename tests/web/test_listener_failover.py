"""The AMI listener runs in exactly one instance; another takes over when that one dies."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from telephony.testing.replay import ReplayServer
from tests.telephony.helpers import AMI_DIR
from tests.telephony.pbx import ami_settings
from web.app import create_app
from web.container import Container
from web.parts.call_tracking import CallTracking
from web.settings import Settings


def _instance(
    settings: Settings, db: AsyncEngine, sessions: async_sessionmaker[AsyncSession], port: int
) -> Container:
    own = Settings(
        core=settings.core,
        web=settings.web,
        notifier=settings.notifier,
        telephony=ami_settings(port, AGI_ENABLED=False),
    )
    return Container(
        settings=own, database_url=settings.core.database_url, engine=db, sessions=sessions
    )


async def _wait(predicate: object, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_one_instance_follows_and_another_takes_over(
    settings: Settings, db: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    server = ReplayServer()
    await server.start()
    a = _instance(settings, db, sessions, server.port)
    b = _instance(settings, db, sessions, server.port)
    app_a, app_b = create_app(container=a), create_app(container=b)
    try:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(app_a.router.lifespan_context(app_a))
            ctx_b = app_b.router.lifespan_context(app_b)
            await ctx_b.__aenter__()

            def following() -> list[str]:
                return [
                    name
                    for name, app in (("a", app_a), ("b", app_b))
                    if isinstance(app.state.container.call_tracking, CallTracking)
                    and app.state.container.call_tracking.listener is not None
                ]

            await _wait(lambda: len(following()) == 1)
            await asyncio.sleep(1.5)  # a few election polls later, still exactly one
            assert len(following()) == 1
            leader = following()[0]
            survivor = "b" if leader == "a" else "a"
            if leader == "a":
                await stack.aclose()  # instance a dies (its lock connection closes)
            else:
                await ctx_b.__aexit__(None, None, None)
            await _wait(lambda: following() == [survivor])
            await server.play(AMI_DIR / "inbound_answered.ami", speed=0, renumber=False)
            await asyncio.wait_for(server.wait_played(), 30)

            async def logged() -> int:
                async with sessions() as s:
                    return len((await s.scalars(select(Communication))).all())

            async with asyncio.timeout(15):
                while await logged() < 1:
                    await asyncio.sleep(0.05)
            if leader == "a":
                await ctx_b.__aexit__(None, None, None)
        assert await logged() == 1
    finally:
        await server.close()


pytestmark = pytest.mark.usefixtures("db")
