"""GET /api/events/schema: the catalogue of what /ws sends, and the checks made against it."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import collect_event, unit_of_work
from crm_core.events.messages import BY_TYPE, CATALOGUE, CallRingingMessage, payload_schemas
from crm_core.events.types import CallEvent
from tests.event_contract import frame_violations, violations

ROOT = Path(__file__).resolve().parents[2]
# Every message type a page or another instance receives today (web/ws.py's contract).
EXPECTED = {
    "call.started",
    "call.ringing",
    "call.ring_ended",
    "call.answered",
    "call.queued",
    "call.dequeued",
    "call.transferred",
    "call.ended",
    "originate.failed",
    "task.created",
    "communication.logged",
    "deal.stage_changed",
    "deal.created",
    "deal.updated",
    "message.received",
    "message.status",
    "subscribed",
    "replay.truncated",
    "ping",
    "task.updated",  # agenda (issue 15)
    "task.done",
    "task.reminder",
    "system.status",
    "agent.presence",
    "call.card_opened",  # a new caller's card, after the pop (issue 13 item 8)
    "call.card_failed",  # ...or that it could not be opened
    "call.hung_up",  # the board drops a call before its log (issue 16)
}


async def test_the_catalogue_lists_every_message_type_without_signing_in(
    api: httpx.AsyncClient,
) -> None:
    r = await api.get("/api/events/schema")
    assert r.status_code == 200, r.text
    schemas = r.json()
    assert set(schemas) == EXPECTED == set(BY_TYPE)
    assert len(CATALOGUE) == len(BY_TYPE)  # no two classes claim one type
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    ringing = schemas["call.ringing"]
    assert {"linkedid", "extensions", "call"} <= set(ringing["required"])


async def test_the_catalogue_is_in_the_api_docs(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    answer = spec["paths"]["/api/events/schema"]["get"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    declared = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    # the docs name every message type the websocket sends
    assert set(declared["properties"]) == set(payload_schemas())


def test_a_payload_that_does_not_match_its_schema_fails() -> None:
    pop = {"linkedid": "L1", "extensions": ["101"], "call": {"linkedid": "L1"}}
    assert violations("call.ringing", pop) == []
    assert violations("call.ringing", {"linkedid": "L1", "extensions": ["101"]})  # no call
    assert violations("call.ringing", {**pop, "extensions": "101"})  # not a list
    ended = {
        "linkedid": "L1",
        "extensions": [],
        "status": "answered",
        "answered_by": "101",
        "missed": "no",  # not a boolean
        "client_number": None,
        "client_id": None,
        "deal_id": None,
        "communication_id": None,
        "talk_seconds": 1.5,
        "ring_seconds": 2,
    }
    assert violations("call.ended", ended)
    assert violations("call.ended", {**ended, "missed": False}) == []
    assert violations("call.nonsense", {})  # a type nobody declared
    assert frame_violations({"type": "subscribed", "channels": ["ext:101"], "last_seq": 3}) == []
    assert frame_violations({"type": "subscribed", "channels": "ext:101"})
    assert frame_violations({"seq": 1, "channel": "ext:101", "type": "call.ringing", "payload": {}})


async def test_a_unit_of_work_sending_a_bad_message_is_caught(
    sessions: async_sessionmaker[AsyncSession], messages_match_catalogue: list[str]
) -> None:
    """The autouse check sees events however they are published (here: nobody listens)."""
    async with unit_of_work(sessions) as session:
        collect_event(session, CallEvent(CallRingingMessage.TYPE, "L1", ("101",), {"n": 1}))
    # one for the phone's channel, one for the supervisors' summary
    assert messages_match_catalogue == ["call.ringing: $: 'call' is a required property"] * 2
    messages_match_catalogue.clear()  # the mismatch was this test's point, not a failure


@pytest.mark.parametrize("package", ["crm_core", "telephony", "notifier", "web"])
def test_message_types_are_spelled_only_in_the_catalogue(package: str) -> None:
    """Producers name a type by its class's constant (CallRingingMessage.TYPE), never a string."""
    catalogue = ROOT / "crm_core" / "events" / "messages.py"
    spelled: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if path == catalogue:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            # "ping" is also an AMI action: undotted names count in the websocket's own code only
            if (
                isinstance(node, ast.Constant)
                and node.value in EXPECTED
                and ("." in node.value or package == "web")
            ):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert spelled == []
