"""FastAGI over a real socket: the recorded request, bad input, idle crowds, a dead database."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.schemas import ClientCreate
from crm_core.clients.service import create_client
from crm_core.deals.service import ensure_open_deal
from crm_core.routing.router import Router
from crm_core.routing.rules import Reason, RouteDecision
from crm_core.schedules.schemas import IntervalIn, ScheduleIn
from crm_core.schedules.service import replace_schedule
from telephony.agi import AgiServer, commands_for, parse_env_line, quote, reply_code, script_of
from telephony.agi_client import converse
from telephony.settings import TelephonySettings
from tests.conftest import RECORDINGS, UserFactory
from web.container import Container
from web.parts.agi_routing import AgiRouting
from web.settings import Settings

RECORDED = (RECORDINGS / "agi_request.txt").read_bytes()
OK = b"200 result=1\n"


class StubRoute:
    """A route callable recording what it was asked."""

    def __init__(self, decision: RouteDecision | None = None, delay: float = 0.0) -> None:
        self.decision = decision or RouteDecision("101", 1, 7, 9, Reason.round_robin)
        self.delay = delay
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, caller: str, did: str, env: Mapping[str, str]) -> RouteDecision:
        self.calls.append((caller, did, dict(env)))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.decision


@pytest.fixture
def stub() -> StubRoute:
    return StubRoute()


@pytest.fixture
async def agi(stub: StubRoute) -> AsyncIterator[AgiServer]:
    async with AgiServer(stub, port=0, read_timeout=1.0, route_timeout=1.0) as server:
        yield server


async def asterisk(port: int, request: bytes, replies: list[bytes] | None = None) -> list[str]:
    """Play Asterisk: send `request`, answer each command (OK unless told), return the commands."""
    return await converse("127.0.0.1", port, request, replies, within=5)


# --- the protocol, pure ----------------------------------------------------------------------


def test_protocol_pieces() -> None:
    assert parse_env_line("agi_callerid: +79161234567") == ("agi_callerid", "+79161234567")
    assert parse_env_line("agi_accountcode: ") == ("agi_accountcode", "")
    assert parse_env_line("garbage") is None
    assert parse_env_line("GET / HTTP/1.1") is None
    assert script_of({"agi_network_script": "route"}) == "route"
    assert script_of({"agi_request": "agi://127.0.0.1:4574/route?x=1"}) == "route"
    assert script_of({}) == ""
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c d"'
    assert commands_for(RouteDecision()) == ['SET VARIABLE CRM_TARGET ""']
    assert reply_code("200 result=1") == (200, True)
    assert reply_code("520-Invalid command syntax.") == (520, False)
    assert reply_code("HANGUP") == (None, False)


# --- the recorded request --------------------------------------------------------------------


async def test_the_recorded_request_sets_target_client_and_deal(
    agi: AgiServer, stub: StubRoute
) -> None:
    commands = await asterisk(agi.port, RECORDED)
    assert commands == [
        'SET VARIABLE CRM_TARGET "101"',
        'SET VARIABLE CRM_CLIENT_ID "7"',
        'SET VARIABLE CRM_DEAL_ID "9"',
    ]
    ((caller, did, env),) = stub.calls
    assert (caller, did) == ("+79161234567", "84951112233")
    assert env["agi_channel"] == "Local/s@caller-sim-00000000;1"
    assert env["agi_accountcode"] == ""
    assert len(env) == 22


async def test_the_script_comes_from_agi_request_when_agi_network_script_is_absent(
    agi: AgiServer, stub: StubRoute
) -> None:
    request = RECORDED.replace(b"agi_network_script: route\n", b"")
    assert (await asterisk(agi.port, request))[0] == 'SET VARIABLE CRM_TARGET "101"'
    assert len(stub.calls) == 1


async def test_an_unknown_script_answers_no_target_without_routing(
    agi: AgiServer, stub: StubRoute, caplog: pytest.LogCaptureFixture
) -> None:
    request = RECORDED.replace(b"script: route", b"script: billing").replace(
        b"4574/route", b"4574/billing"
    )
    with caplog.at_level(logging.WARNING, logger="telephony.agi"):
        assert await asterisk(agi.port, request) == ['SET VARIABLE CRM_TARGET ""']
    assert stub.calls == []
    assert "unknown script 'billing'" in caplog.text


async def test_each_decision_is_timed_from_environment_to_answer() -> None:
    """The bench's server-side decision latency: environment read -> commands written."""
    timings: list[float] = []
    async with AgiServer(StubRoute(delay=0.05), port=0, on_decision=timings.append) as server:
        await asterisk(server.port, RECORDED)
        await asterisk(server.port, b"garbage\n\n")  # answered too (no target): timed as well
    assert len(timings) == 2  # the garbage one was timed too
    # a lower bound only (a loaded machine may stretch any run): the route's 50 ms are in it
    assert timings[0] >= 0.05


ALL_THREE = [
    'SET VARIABLE CRM_TARGET "101"',
    'SET VARIABLE CRM_CLIENT_ID "7"',
    'SET VARIABLE CRM_DEAL_ID "9"',
]


async def test_error_replies_and_hangup_end_the_conversation_cleanly(
    agi: AgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    # one command at a time; an error reply is logged and the next command still goes out
    usage = b"520-Invalid command syntax.  Proper usage follows:\nUsage: SET VARIABLE\n520 End\n"
    with caplog.at_level(logging.WARNING, logger="telephony.agi"):
        assert await asterisk(agi.port, RECORDED, [usage]) == ALL_THREE
    assert "answered '520 End'" in caplog.text
    served = agi.served
    # the channel hung up after the first: nothing more is sent, and the server closes at once
    assert await asterisk(agi.port, RECORDED, [b"HANGUP\n"]) == ALL_THREE[:1]
    assert agi.served == served + 1


async def test_a_failing_or_hanging_route_answers_no_target(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(caller: str, did: str, env: Mapping[str, str]) -> RouteDecision:
        raise RuntimeError("boom")

    async with AgiServer(broken, port=0) as server:
        assert await asterisk(server.port, RECORDED) == ['SET VARIABLE CRM_TARGET ""']
    slow = StubRoute(delay=30)
    async with AgiServer(slow, port=0, route_timeout=0.2) as server:
        assert await asterisk(server.port, RECORDED) == ['SET VARIABLE CRM_TARGET ""']


# --- bad input -------------------------------------------------------------------------------


async def test_garbage_and_a_missing_environment_answer_no_target(
    agi: AgiServer, stub: StubRoute
) -> None:
    garbage = b"GET / HTTP/1.1\nHost: x\n\xff\xfe\x00binary\nno colon here\n\n"
    assert await asterisk(agi.port, garbage) == ['SET VARIABLE CRM_TARGET ""']
    assert await asterisk(agi.port, b"\n") == ['SET VARIABLE CRM_TARGET ""']
    assert await asterisk(agi.port, b"\r\n") == ['SET VARIABLE CRM_TARGET ""']
    assert stub.calls == []
    # still serving
    assert (await asterisk(agi.port, RECORDED))[0] == 'SET VARIABLE CRM_TARGET "101"'


async def test_an_endless_line_or_endless_environment_is_closed(agi: AgiServer) -> None:
    assert await asterisk(agi.port, b"agi_x: " + b"y" * 100_000 + b"\n\n") == []
    assert await asterisk(agi.port, b"agi_x: y\n" * 1000) == []
    assert (await asterisk(agi.port, RECORDED))[0] == 'SET VARIABLE CRM_TARGET "101"'


async def test_a_client_disconnecting_mid_request_is_handled_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = StubRoute(delay=0.2)
    async with AgiServer(slow, port=0) as server:
        with caplog.at_level(logging.WARNING):
            # mid-environment
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(RECORDED[:100])
            await writer.drain()
            writer.close()
            # after the environment, while the route is still deciding
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(RECORDED)
            await writer.drain()
            writer.close()
            # before replying to a command
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(RECORDED)
            assert (await reader.readline()).startswith(b"SET VARIABLE")
            writer.transport.abort()
            await asyncio.sleep(0.4)
            assert (await asterisk(server.port, RECORDED))[0] == 'SET VARIABLE CRM_TARGET "101"'
        assert caplog.records == []
        assert server.served == 1  # only the last one completed; the others ended quietly


async def test_1000_idle_connections_neither_block_a_real_request_nor_stay_open(
    stub: StubRoute,
) -> None:
    async with AgiServer(stub, port=0, read_timeout=1.0) as server:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(1000)]
        for _, writer in idle[::2]:
            writer.write(b"agi_network: yes\n")  # half of them start and stall
        answered = await asyncio.gather(*(asterisk(server.port, RECORDED) for _ in range(20)))
        assert all(a[0] == 'SET VARIABLE CRM_TARGET "101"' for a in answered)
        # the read timeout closes every idle one: each sees the end of the stream
        async with asyncio.timeout(10):
            ends = await asyncio.gather(*(reader.read() for reader, _ in idle))
        assert ends == [b""] * 1000
        for _, writer in idle:
            writer.close()


Opened = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _idle(port: int, n: int, source: str = "127.0.0.1") -> list[Opened]:
    """`n` connections that never send their environment (the attacker's), from `source`.
    The writers are kept: a writer collected as garbage closes its connection."""
    return [
        await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)) for _ in range(n)
    ]


async def _closed(opened: Opened) -> bool:
    """Whether the server closed (or reset) it; ours is closed afterwards either way."""
    try:
        return await opened[0].read() == b""
    except ConnectionResetError:
        return True
    finally:
        opened[1].close()


def _close_all(opened: list[Opened]) -> None:
    for _, writer in opened:
        writer.close()


async def test_more_idle_connections_than_the_server_holds_still_leave_room_for_asterisk(
    stub: StubRoute,
) -> None:
    """The probe: idle sockets past the server's cap. The oldest still-silent ones make room, so
    real requests are answered instead of reset (timeouts long: room is made, not waited for)."""
    async with AgiServer(
        stub, port=0, read_timeout=60, env_timeout=60, max_connections=100
    ) as server:
        idle = await _idle(server.port, 300)
        await asyncio.sleep(0.2)
        assert len(server._connections) == 100  # full: the newest hundred idle ones
        answered = await asyncio.gather(*(asterisk(server.port, RECORDED) for _ in range(10)))
        assert all(a[0] == 'SET VARIABLE CRM_TARGET "101"' for a in answered)
        assert len(stub.calls) == 10
        async with asyncio.timeout(30):  # the oldest made room: they were closed
            assert all(await asyncio.gather(*(_closed(o) for o in idle[:200])))
        assert len(server._connections) <= 100
        _close_all(idle)


async def test_one_address_is_capped_and_crowds_out_only_itself(stub: StubRoute) -> None:
    async with AgiServer(
        stub, port=0, read_timeout=60, env_timeout=60, max_connections_per_host=50
    ) as server:
        crowd = await _idle(server.port, 150, source="127.0.0.2")
        mine = await _idle(server.port, 10)  # idle too, but from another address
        await asyncio.sleep(0.2)
        assert server.per_host == {"127.0.0.2": 50, "127.0.0.1": 10}
        # from the crowd's own address a request still gets in, making room among its own
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=("127.0.0.2", 0)
        )
        writer.write(RECORDED)
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"SET VARIABLE")
        writer.close()
        assert (await asterisk(server.port, RECORDED))[0] == 'SET VARIABLE CRM_TARGET "101"'
        async with asyncio.timeout(30):
            assert all(await asyncio.gather(*(_closed(o) for o in crowd[:100])))
        # the other address's idle connections were not the ones closed for the crowd
        assert server.per_host["127.0.0.1"] == len(mine)
        _close_all(crowd + mine)


async def test_a_connection_silent_past_the_environment_timeout_is_closed(
    stub: StubRoute,
) -> None:
    async with AgiServer(stub, port=0, read_timeout=60, env_timeout=0.3) as server:
        [silent] = await _idle(server.port, 1)
        async with asyncio.timeout(20):  # generous: 0.3 s plus the sweep, on a busy machine
            assert await _closed(silent)
        # a request whose route takes longer than that is not cut short by it
        stub.delay = 0.6
        assert (await asterisk(server.port, RECORDED))[0] == 'SET VARIABLE CRM_TARGET "101"'
        assert server.per_host == {}


async def test_only_allowed_addresses_are_answered(stub: StubRoute) -> None:
    async with AgiServer(stub, port=0, allowed_hosts=["127.0.0.2", "10.0.0.0/8"]) as server:
        refused = await asyncio.open_connection("127.0.0.1", server.port)
        refused[1].write(RECORDED)
        async with asyncio.timeout(10):
            assert await _closed(refused)
        assert stub.calls == [] and server.refused == 1
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=("127.0.0.2", 0)
        )
        writer.write(RECORDED)
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"SET VARIABLE")
        writer.close()
    # by name: localhost resolves to loopback; the default is loopback alone
    async with AgiServer(stub, port=0, allowed_hosts=["localhost"]) as server:
        assert (await asterisk(server.port, RECORDED))[0] == 'SET VARIABLE CRM_TARGET "101"'
    assert AgiServer(stub).allowed("127.0.0.1") and AgiServer(stub).allowed("::1")
    assert not AgiServer(stub).allowed("192.0.2.7")
    assert AgiServer(stub, allowed_hosts=["192.0.2.0/24"]).allowed("::ffff:192.0.2.7")


async def test_the_service_passes_its_settings_to_the_server(
    container: Container, settings: Settings
) -> None:
    settings.telephony = TelephonySettings(
        AMI_ENABLED=False,
        AGI_PORT=0,
        AGI_ALLOWED_HOSTS=["127.0.0.2"],
        AGI_MAX_CONNECTIONS_PER_HOST=7,
        AGI_ENV_TIMEOUT=0.5,
    )
    routing = AgiRouting(container.settings, container.database_url)
    await routing.start()
    try:
        server = routing.server
        assert server is not None
        assert server.allowed("127.0.0.2") and not server.allowed("127.0.0.1")
        assert server._max_per_host == 7 and server._env_timeout == 0.5
    finally:
        await routing.stop()


async def test_stop_closes_open_connections() -> None:
    server = AgiServer(StubRoute(), port=0, read_timeout=60)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.stop(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


# --- with the real router ----------------------------------------------------------------------

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


@pytest.mark.usefixtures("db")
async def test_the_recorded_call_reaches_its_responsible_manager_over_the_socket(
    make_user: UserFactory, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    manager, _ = await make_user(role="manager", extension="105")
    async with sessions() as s:
        await replace_schedule(
            s,
            manager.id,
            ScheduleIn(intervals=[IntervalIn(weekday=1, start=time(9), end=time(18))]),
        )
        client = await create_client(
            s,
            ClientCreate(name="Ivan Petrov", phones=["+79161234567"], responsible_id=manager.id),  # type: ignore[list-item]
            region="RU",
        )
        deal, _ = await ensure_open_deal(s, client.id, responsible_id=manager.id, title="t")
        await s.commit()
    router = Router(database_url, clock=lambda: NOW)
    try:
        async with AgiServer(router.route, port=0) as server:
            commands = await asterisk(server.port, RECORDED)
    finally:
        await router.close()
    assert commands == [
        'SET VARIABLE CRM_TARGET "105"',
        f'SET VARIABLE CRM_CLIENT_ID "{client.id}"',
        f'SET VARIABLE CRM_DEAL_ID "{deal.id}"',
    ]


async def test_a_dead_database_answers_no_target_over_the_socket() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    router = Router(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=0.5)
    try:
        async with AgiServer(router.route, port=0) as server:
            results = await asyncio.gather(*(asterisk(server.port, RECORDED) for _ in range(20)))
    finally:
        await router.close()
    assert results == [['SET VARIABLE CRM_TARGET ""']] * 20
