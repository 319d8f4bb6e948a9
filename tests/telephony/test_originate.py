"""Click-to-call through the real listener against the replay server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from telephony.ami_listener import AmiConnectionLost, AmiListener
from telephony.originate import OriginateError, originate_call
from telephony.settings import TelephonySettings
from telephony.testing.replay import ReplayServer
from tests.telephony.helpers import replay_server


def make_settings(port: int) -> TelephonySettings:
    return TelephonySettings(
        AMI_PORT=port,
        AMI_PING_INTERVAL=0.2,
        AMI_ACTION_TIMEOUT=0.3,
        AMI_RECONNECT_MIN=0.05,
        AMI_RECONNECT_MAX=0.2,
        ORIGINATE_CONTEXT="crm-outbound",
        ORIGINATE_CHANNEL="PJSIP/{ext}",
    )


async def ignore(*_: Any) -> None:
    return None


async def call_from_101(
    listener: AmiListener,
    server: ReplayServer,
    *,
    deal_id: int = 42,
    user_id: int = 7,
    **extra: Any,
) -> str:
    """Click-to-call from extension 101 to 79161234567; the Originate's ActionID."""
    return await originate_call(
        listener,
        agent_extension="101",
        number="79161234567",
        deal_id=deal_id,
        user_id=user_id,
        settings=make_settings(server.port),
        **extra,
    )


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    async with replay_server(originate_delay=0.02) as srv:
        yield srv


@pytest.fixture
async def listener(server: ReplayServer) -> AsyncIterator[AmiListener]:
    lst = AmiListener(make_settings(server.port), ignore)
    await lst.start()
    async with asyncio.timeout(2):
        await lst.wait_connected()
    yield lst
    await lst.close(drain_timeout=1)


async def test_originate_request_carries_async_and_both_variables(
    server: ReplayServer, listener: AmiListener
) -> None:
    action_id = await call_from_101(listener, server)
    [seen] = server.originates
    assert seen["ActionID"] == action_id
    assert seen["Async"] == "true"
    assert seen["Variable"] == "CRM_DEAL_ID=42,CRM_USER_ID=7"
    assert seen["Channel"] == "PJSIP/101"
    assert seen["Context"] == "crm-outbound"
    assert seen["Exten"] == "79161234567"
    assert seen["Priority"] == "1"
    assert seen["CallerID"] == '"79161234567" <101>'


async def test_originate_failure_is_reported_in_plain_words(
    server: ReplayServer, listener: AmiListener
) -> None:
    server.originate_response = "Failure"
    with pytest.raises(OriginateError, match="could not be called") as info:
        await call_from_101(listener, server, deal_id=1, user_id=2)
    assert info.value.action_id == server.originates[0]["ActionID"]


async def test_originate_timeout_is_reported(server: ReplayServer, listener: AmiListener) -> None:
    server.originate_delay = 2.0  # the agent's phone rings on and on
    with pytest.raises(OriginateError, match="no answer from Asterisk"):
        await call_from_101(listener, server, deal_id=1, user_id=2, ring_seconds=0.1)


async def test_pending_originate_is_not_resent_after_reconnect(
    server: ReplayServer, listener: AmiListener
) -> None:
    server.freeze_clients()  # the Originate reaches Asterisk; its reply never comes back
    call = asyncio.create_task(call_from_101(listener, server))
    async with asyncio.timeout(2):
        while not server.originates:
            await asyncio.sleep(0.005)
    server.drop_clients()
    with pytest.raises(AmiConnectionLost):
        await call
    await asyncio.wait_for(server.wait_logins(2), 2)
    await asyncio.sleep(0.3)
    assert len(server.originates) == 1  # the client's phone rings once


@pytest.mark.parametrize(
    ("field", "value"),
    [("number", "7916\r\nAction: Hangup"), ("agent_extension", "101,1"), ("deal_id", "4,2")],
)
async def test_unsafe_values_are_refused_before_sending(
    server: ReplayServer, listener: AmiListener, field: str, value: str
) -> None:
    kwargs: dict[str, Any] = {
        "agent_extension": "101",
        "number": "79161234567",
        "deal_id": 42,
        "user_id": 7,
    }
    kwargs[field] = value
    with pytest.raises(ValueError):
        await originate_call(listener, settings=make_settings(server.port), **kwargs)
    assert server.originates == []
