"""crm-telephony check against the replay server set up right, and wrong in each way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from telephony.agi import AgiServer
from telephony.check import CheckResult, check_router, run_check
from telephony.settings import TelephonySettings
from telephony.testing.replay import ReplayServer
from tests.ports import free_port
from tests.telephony.helpers import AMI_DIR, split_recording
from tests.telephony.test_agi import StubRoute

QUEUE = AMI_DIR / "inbound_router_down_queue.ami"
# The check observes until the replay has played everything; this is only a ceiling.
OBSERVE = 60.0


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


async def observed(srv: ReplayServer, **overrides: Any) -> dict[str, CheckResult]:
    """Run the check against `srv` (settings `overrides`), observing until it has played all."""
    settings = make_settings(srv.port, **overrides)
    return by_name(await run_check(settings, observe_seconds=OBSERVE, until=srv.wait_played))


async def checked(srv: ReplayServer, **overrides: Any) -> dict[str, CheckResult]:
    """`observed`, then close `srv`."""
    try:
        return await observed(srv, **overrides)
    finally:
        await srv.close()


@pytest.fixture
def no_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AMI user may not run CLI commands: the check learns nothing from them."""

    async def refuse_command(*_: Any) -> None:
        return None

    monkeypatch.setattr("telephony.check._command_output", refuse_command)


@pytest.fixture
async def router() -> AsyncIterator[tuple[AgiServer, StubRoute]]:
    stub = StubRoute()
    async with AgiServer(stub, port=0) as server:
        yield server, stub


@pytest.fixture
async def good() -> AsyncIterator[ReplayServer]:
    srv = await start()
    yield srv
    await srv.close()


async def test_everything_ok(good: ReplayServer, router: tuple[AgiServer, StubRoute]) -> None:
    results = await observed(good, AGI_PORT=router[0].port)
    assert list(results) == [
        "reachable",
        "login",
        "permissions",
        "timestamps",
        "inbound_context",
        "agent_pattern",
        "router",
    ]
    assert all(r.status == "ok" for r in results.values()), results
    assert "101" in results["agent_pattern"].message
    assert "one command per reply" in results["router"].message
    assert router[1].calls == []  # the check's request routes nobody: no turn taken


async def test_router_not_listening_or_pipelining_fails() -> None:
    port = free_port()
    result = await check_router(make_settings(0, AGI_PORT=port))
    assert result.status == "fail"
    assert f"Nothing answers FastAGI at 127.0.0.1:{port}" in result.message

    async def pipelining(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline() not in (b"\n", b""):
            pass
        writer.write(b'SET VARIABLE CRM_TARGET ""\nSET VARIABLE CRM_CHECK "ok"\n')
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(pipelining, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        result = await check_router(make_settings(0, AGI_PORT=port))
    assert result.status == "fail"
    assert "before Asterisk has answered" in result.message


async def test_only_a_callers_channel_seen_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    """Before any phone rings (the caller is still in the router's AGI step) the pattern can't
    be judged: a PJSIP-only pattern must not be reported as wrong."""
    head, _ = split_recording("inbound_answered", "AGIExecStart", tmp_path)
    srv = ReplayServer()
    await srv.start()
    await srv.play(head, speed=0)
    results = await checked(srv, AGENT_CHANNEL_PATTERN=r"^PJSIP/(?P<ext>\d+)-")
    agent = results["agent_pattern"]
    assert agent.status == "warn", agent
    assert "Local/s@caller-sim" in agent.message and "no phone rung" in agent.message


async def test_unreachable() -> None:
    port = free_port()
    results = by_name(await run_check(make_settings(port), observe_seconds=0.3))
    assert results["reachable"].status == "fail"
    assert "Cannot reach" in results["reachable"].message
    assert f"127.0.0.1:{port}" in results["reachable"].message
    assert {r.status for n, r in results.items() if n not in ("reachable", "router")} == {"skip"}


async def test_bad_credentials(good: ReplayServer) -> None:
    results = await observed(good, AMI_SECRET="wrong")
    assert results["reachable"].status == "ok"
    assert results["login"].status == "fail"
    assert "refused the login" in results["login"].message
    assert "Authentication failed" in results["login"].message


async def test_missing_read_permissions() -> None:
    srv = await start(read_perm="system,call")
    results = await checked(srv)
    perm = results["permissions"]
    assert perm.status == "fail"
    assert "may not read dialplan, agent" in perm.message
    assert "read = all" in perm.message


async def test_missing_permissions_seen_from_events_when_cli_is_not_allowed(no_cli: None) -> None:
    srv = await start(read_perm="system,call")
    results = await checked(srv)
    assert results["permissions"].status == "warn"
    assert "dialplan, agent" in results["permissions"].message


async def test_timestampevents_off() -> None:
    srv = await start(timestamp_events=False)
    results = await checked(srv)
    assert results["timestamps"].status == "fail"
    assert "timestampevents = yes" in results["timestamps"].message


async def test_timestamps_missing_from_events_even_if_setting_unknown(no_cli: None) -> None:
    srv = ReplayServer()
    await srv.start()
    await srv.play(QUEUE, speed=0, strip_timestamps=True)
    results = await checked(srv)
    assert results["timestamps"].status == "fail"


@pytest.mark.parametrize(
    ("overrides", "check", "status", "said"),
    [
        pytest.param(
            {"INBOUND_CONTEXTS": ["from-trunk"]},
            "inbound_context",
            "warn",
            ["'from-trunk'", "from-pstn"],
            id="inbound_context_never_seen",
        ),
        pytest.param(
            {"AGENT_CHANNEL_PATTERN": r"^PJSIP/(?P<ext>\d+)-"},
            "agent_pattern",
            "fail",
            ["matched none", "Local/101@agent-phones"],
            id="agent_pattern_matching_no_channel",
        ),
        pytest.param(
            {"AGENT_CHANNEL_PATTERN": r"^PJSIP/\d+-"},
            "agent_pattern",
            "fail",
            ["'ext'"],
            id="agent_pattern_without_ext_group",
        ),
    ],
)
async def test_a_setting_that_does_not_fit_the_pbx_is_said(
    good: ReplayServer, overrides: dict[str, Any], check: str, status: str, said: list[str]
) -> None:
    result = (await observed(good, **overrides))[check]
    assert result.status == status
    for words in said:
        assert words in result.message


async def test_quiet_pbx_gives_warnings_not_passes() -> None:
    srv = ReplayServer()
    await srv.start()
    results = await checked(srv)
    assert results["inbound_context"].status == "warn"
    assert results["agent_pattern"].status == "warn"
    assert results["permissions"].status == "ok"  # stated by Asterisk itself
    assert results["timestamps"].status == "ok"


async def test_a_router_that_turns_this_machine_away_names_the_setting() -> None:
    async with AgiServer(StubRoute(), port=0, allowed_hosts=["192.0.2.0/24"]) as server:
        result = await check_router(make_settings(1, AGI_PORT=server.port))
    assert result.status == "fail" and "AGI_ALLOWED_HOSTS" in result.message
