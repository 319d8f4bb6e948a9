"""The demo PBX asks the real FastAGI router where its recordings ran AGI(agi://…/route)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telephony.agi import AgiServer
from tests.telephony.pbx import replayed_pbx
from tests.telephony.test_agi import StubRoute
from web.demo import _AgiCaller

pytestmark = pytest.mark.usefixtures("db")


async def test_each_recorded_agi_step_asks_the_router(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stub = StubRoute()
    async with AgiServer(stub, port=0) as agi, replayed_pbx(sessions) as pbx:
        pbx.server.on_event = _AgiCaller("0.0.0.0", agi.port)  # as AGI_HOST is in docker
        await pbx.play("inbound_answered", "inbound_missed_queue", "click_to_call")
        async with asyncio.timeout(5):
            while len(stub.calls) < 2:
                await asyncio.sleep(0.01)
    # the two inbound calls ran the AGI step; the click-to-call did not
    asked = [(caller, did, env["agi_context"]) for caller, did, env in stub.calls]
    assert asked == [
        ("+79161234567", "84951112233", "from-pstn"),
        ("+74957654321", "84951112233", "from-pstn"),
    ]
    assert all(env["agi_network_script"] == "route" for _, _, env in stub.calls)
