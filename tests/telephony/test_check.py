"""crm-telephony check against the replay server set up right, and wrong in each way."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from telephony.check import CheckResult, run_check
from telephony.replay import ReplayServer
from telephony.settings import TelephonySettings
from tests.telephony.helpers import AMI_DIR

QUEUE = AMI_DIR / "inbound_router_down_queue.ami"
OBSERVE = 0.3


def make_settings(port: int, **overrides: Any) -> TelephonySettings:
    values: dict[str, Any] = {
        "AMI_PORT": port,
        "AMI_PING_INTERVAL": 0.5,
        "AMI_ACTION_TIMEOUT": 0.5,
        "AMI_RECONNECT_MIN": 0.05,
    }
    return TelephonySettings(**(values | overrides))


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


async def start(**kwargs: Any) -> ReplayServer:
    srv = ReplayServer(**kwargs)
    await srv.start()
    # Plays as soon as the check logs in: a queue call through from-pstn to Local/101@….
    await srv.play(QUEUE, speed=0, shift_to_now=True, renumber=True)
    return srv


@pytest.fixture
async def good() -> AsyncIterator[ReplayServer]:
    srv = await start()
    yield srv
    await srv.close()


async def test_everything_ok(good: ReplayServer) -> None:
    results = by_name(await run_check(make_settings(good.port), observe_seconds=OBSERVE))
    assert list(results) == [
        "reachable",
        "login",
        "permissions",
        "timestamps",
        "inbound_context",
        "agent_pattern",
    ]
    assert all(r.status == "ok" for r in results.values()), results
    assert "101" in results["agent_pattern"].message


async def test_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = by_name(await run_check(make_settings(port), observe_seconds=OBSERVE))
    assert results["reachable"].status == "fail"
    assert "Cannot reach" in results["reachable"].message
    assert f"127.0.0.1:{port}" in results["reachable"].message
    assert {r.status for n, r in results.items() if n != "reachable"} == {"skip"}


async def test_bad_credentials(good: ReplayServer) -> None:
    results = by_name(
        await run_check(make_settings(good.port, AMI_SECRET="wrong"), observe_seconds=OBSERVE)
    )
    assert results["reachable"].status == "ok"
    assert results["login"].status == "fail"
    assert "refused the login" in results["login"].message
    assert "Authentication failed" in results["login"].message


async def test_missing_read_permissions() -> None:
    srv = await start(read_perm="system,call")
    try:
        results = by_name(await run_check(make_settings(srv.port), observe_seconds=OBSERVE))
    finally:
        await srv.close()
    perm = results["permissions"]
    assert perm.status == "fail"
    assert "may not read dialplan, agent" in perm.message
    assert "read = all" in perm.message


async def test_missing_permissions_seen_from_events_when_cli_is_not_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = await start(read_perm="system,call")

    async def refuse_command(*_: Any) -> None:
        return None

    monkeypatch.setattr("telephony.check._command_output", refuse_command)
    try:
        results = by_name(await run_check(make_settings(srv.port), observe_seconds=OBSERVE))
    finally:
        await srv.close()
    assert results["permissions"].status == "warn"
    assert "dialplan, agent" in results["permissions"].message


async def test_timestampevents_off() -> None:
    srv = await start(timestamp_events=False)
    try:
        results = by_name(await run_check(make_settings(srv.port), observe_seconds=OBSERVE))
    finally:
        await srv.close()
    assert results["timestamps"].status == "fail"
    assert "timestampevents = yes" in results["timestamps"].message


async def test_timestamps_missing_from_events_even_if_setting_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = ReplayServer()
    await srv.start()
    await srv.play(QUEUE, speed=0, strip_timestamps=True)

    async def refuse_command(*_: Any) -> None:
        return None

    monkeypatch.setattr("telephony.check._command_output", refuse_command)
    try:
        results = by_name(await run_check(make_settings(srv.port), observe_seconds=OBSERVE))
    finally:
        await srv.close()
    assert results["timestamps"].status == "fail"


async def test_inbound_context_never_seen(good: ReplayServer) -> None:
    settings = make_settings(good.port, INBOUND_CONTEXTS=["from-trunk"])
    results = by_name(await run_check(settings, observe_seconds=OBSERVE))
    inbound = results["inbound_context"]
    assert inbound.status == "warn"
    assert "'from-trunk'" in inbound.message and "from-pstn" in inbound.message


async def test_agent_pattern_matching_no_channel(good: ReplayServer) -> None:
    settings = make_settings(good.port, AGENT_CHANNEL_PATTERN=r"^PJSIP/(?P<ext>\d+)-")
    results = by_name(await run_check(settings, observe_seconds=OBSERVE))
    agent = results["agent_pattern"]
    assert agent.status == "fail"
    assert "matched none" in agent.message and "Local/101@agent-phones" in agent.message


async def test_agent_pattern_without_ext_group(good: ReplayServer) -> None:
    settings = make_settings(good.port, AGENT_CHANNEL_PATTERN=r"^PJSIP/\d+-")
    results = by_name(await run_check(settings, observe_seconds=OBSERVE))
    assert results["agent_pattern"].status == "fail"
    assert "'ext'" in results["agent_pattern"].message


async def test_quiet_pbx_gives_warnings_not_passes() -> None:
    srv = ReplayServer()
    await srv.start()
    try:
        results = by_name(await run_check(make_settings(srv.port), observe_seconds=0.1))
    finally:
        await srv.close()
    assert results["inbound_context"].status == "warn"
    assert results["agent_pattern"].status == "warn"
    assert results["permissions"].status == "ok"  # stated by Asterisk itself
    assert results["timestamps"].status == "ok"
