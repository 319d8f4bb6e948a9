"""The demo PBX's FastAGI side: the recorded AGI step becomes the request Asterisk made."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from crm_core.routing.rules import Reason, RouteDecision
from telephony.agi import AgiServer, commands_for
from telephony.agi_client import CommandsAheadOfTurn, converse, parse_set_variable
from telephony.testing.agi_caller import agi_request_of, ask_route, env_from_event
from tests.conftest import RECORDINGS
from tests.telephony.helpers import read_events
from tests.telephony.test_agi import StubRoute

RECORDED_REQUEST = RECORDINGS / "agi_request.txt"


def recorded_env() -> dict[str, str]:
    lines = RECORDED_REQUEST.read_text().splitlines()
    return dict((k, v.strip()) for k, _, v in (line.partition(":") for line in lines if line))


def test_the_recorded_agi_step_gives_the_recorded_request() -> None:
    steps = [(e, agi_request_of(e)) for e in read_events("inbound_answered")]
    ((event, request),) = [(e, r) for e, r in steps if r is not None]
    assert request == "agi://127.0.0.1:4574/route"
    env = env_from_event(event, request)
    recorded = recorded_env()  # what Asterisk sent for this very call
    same = {k: recorded[k] for k in env if k in recorded}
    # every field both have agrees, and the request has nearly all Asterisk sent
    assert {k: env[k] for k in same} == same
    assert len(same) >= 13, set(env) - set(recorded)


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ('SET VARIABLE CRM_TARGET "101"', ("CRM_TARGET", "101")),
        ('SET VARIABLE CRM_TARGET ""', ("CRM_TARGET", "")),
        ('SET VARIABLE NOTE "say \\"hi\\" \\\\ bye"', ("NOTE", 'say "hi" \\ bye')),
        ("VERBOSE hello 1", None),
    ],
)
def test_set_variable_lines(line: str, parsed: tuple[str, str] | None) -> None:
    assert parse_set_variable(line) == parsed


async def test_ask_route_reads_what_our_server_sets() -> None:
    decision = RouteDecision("102", 5, 7, 9, Reason.round_robin)
    # what our server writes, read back by the PBX side: every variable, quotes undone
    assert [parse_set_variable(c) for c in commands_for(decision)] == [
        ("CRM_TARGET", "102"),
        ("CRM_CLIENT_ID", "7"),
        ("CRM_DEAL_ID", "9"),
    ]
    stub = StubRoute(decision)
    async with AgiServer(stub, port=0) as server:
        answer = await ask_route("127.0.0.1", server.port, recorded_env())
    assert answer == {"CRM_TARGET": "102", "CRM_CLIENT_ID": "7", "CRM_DEAL_ID": "9"}
    assert [(caller, did) for caller, did, _ in stub.calls] == [("+79161234567", "84951112233")]


async def test_a_command_written_ahead_of_its_turn_is_seen_only_when_the_socket_closes() -> None:
    """The stand-in reads as Asterisk does: a pipelining server (the router before the live
    Asterisk showed its 5.4 s stall) gets one reply, then nothing until it closes."""
    replies: list[bytes] = []

    async def pipelining(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline() not in (b"\n", b""):
            pass
        writer.write(b'SET VARIABLE A "1"\nSET VARIABLE B "2"\nSET VARIABLE C "3"\n')
        replies.append(await reader.readline())
        with contextlib.suppress(TimeoutError):  # the other two replies never come
            replies.append(await asyncio.wait_for(reader.readline(), 0.3))
        writer.close()

    server = await asyncio.start_server(pipelining, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(CommandsAheadOfTurn) as raised:
            await converse("127.0.0.1", port, b"agi_network: yes\n\n", within=5)
    assert raised.value.in_turn == ['SET VARIABLE A "1"']
    assert raised.value.late == ['SET VARIABLE B "2"', 'SET VARIABLE C "3"']
    assert replies == [b"200 result=1\n"]
