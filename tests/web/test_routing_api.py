"""GET /api/routing/status and the /schedules page, over HTTP against the real database."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.models import AgentState
from tests.conftest import UserFactory

pytestmark = pytest.mark.usefixtures("db")

ALL_WEEK = {
    "intervals": [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)],
    "exceptions": [],
}

# what the status says of a free agent on duty, first in turn, who has not been routed a call
FREE_FIRST_IN_TURN = {
    "on_duty": True,
    "state": "free",
    "routed_count": 0,
    "presence": "available",
    "presence_reason": None,
    "presence_since": None,
    "wrapup_until": None,
    "turn": 1,
    "has_schedule": True,
    "routing_note": None,
}


async def test_status_needs_a_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/routing/status")).status_code == 401


async def test_status_shows_duty_phone_state_and_turn(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, admin = await make_user(role="admin")
    m1, _ = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    m3, _ = await make_user(role="manager", extension="103")
    off, _ = await make_user(role="manager", extension="104")
    op, op_headers = await make_user(role="operator", extension="201")
    for user in (m1, m2, m3, op):
        put = await api.put(f"/api/schedules/{user.id}", json=ALL_WEEK, headers=admin)
        assert put.status_code == 200, put.text
    async with sessions() as s:
        now = datetime.now(UTC)
        s.add(AgentState(extension="101", state="ringing", linkedid="1.1", since=now))
        s.add(AgentState(extension="102", state="talking", linkedid="1.2", since=now))
        await s.commit()

    r = await api.get("/api/routing/status", headers=op_headers)  # any signed-in role
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["on_duty"] == [m1.id, m2.id, m3.id, op.id]
    assert body["free"] == [m3.id, op.id]
    assert body["ringing"] == [m1.id] and body["talking"] == [m2.id]
    assert body["turn"] == [m3.id, op.id] and body["next_user_id"] == m3.id
    agents = {a["user_id"]: a for a in body["agents"]}
    assert agents[off.id]["on_duty"] is False and agents[off.id]["turn"] is None
    # no hours at all: not merely off duty now, never routed; the status says so
    assert agents[off.id]["has_schedule"] is False
    assert agents[off.id]["routing_note"] == "no schedule: never routed"
    # a colleague, to an operator: name and extension, not their login, role or time zone
    assert agents[m3.id] | {"user_id": 0} == {
        "user_id": 0,
        "full_name": m3.full_name,
        "extension": "103",
        **FREE_FIRST_IN_TURN,
    }
    assert agents[op.id]["login"] == op.login  # their own row is whole
    staff_view = (await api.get("/api/routing/status", headers=admin)).json()
    assert {a["user_id"]: a for a in staff_view["agents"]}[m3.id] | {"user_id": 0} == {
        "user_id": 0,
        "login": m3.login,
        "full_name": m3.full_name,
        "role": "manager",
        "extension": "103",
        "timezone": m3.timezone,
        **FREE_FIRST_IN_TURN,
    }


async def test_only_staff_edit_schedules_shown_in_the_status(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    m, m_headers = await make_user(role="manager", extension="101")
    assert (
        await api.put(f"/api/schedules/{m.id}", json=ALL_WEEK, headers=m_headers)
    ).status_code == 403
    _, sup = await make_user(role="supervisor")
    assert (await api.put(f"/api/schedules/{m.id}", json=ALL_WEEK, headers=sup)).status_code == 200
    body = (await api.get("/api/routing/status", headers=m_headers)).json()
    assert body["on_duty"] == [m.id] and body["next_user_id"] == m.id


async def test_a_schedule_reads_back_as_written(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """The weekly grid and every kind of exception, field by field, in PUT's and GET's answers."""
    m, _ = await make_user(role="manager", extension="101", timezone="Europe/Moscow")
    _, admin = await make_user(role="admin")
    written = {
        "intervals": [{"weekday": 0, "start": "09:00", "end": "18:00"}],
        "exceptions": [
            {"kind": "vacation", "start_date": "2030-07-01", "end_date": "2030-07-14"},
            {
                "kind": "extra_shift",
                "start_date": "2030-07-20",
                "start": "10:00",
                "end": "14:00",
                "note": "stock-taking",
            },
        ],
        "timezone": "Asia/Yekaterinburg",
    }
    expected = {
        "user_id": m.id,
        "timezone": "Asia/Yekaterinburg",
        "intervals": [{"weekday": 0, "start": "09:00:00", "end": "18:00:00"}],
        "exceptions": [
            {
                "kind": "vacation",
                "start_date": "2030-07-01",
                "end_date": "2030-07-14",
                "start": None,
                "end": None,
                "note": "",
            },
            {
                "kind": "extra_shift",
                "start_date": "2030-07-20",
                "end_date": "2030-07-20",
                "start": "10:00:00",
                "end": "14:00:00",
                "note": "stock-taking",
            },
        ],
    }
    put = await api.put(f"/api/schedules/{m.id}", json=written, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json() == expected
    assert (await api.get(f"/api/schedules/{m.id}", headers=admin)).json() == expected


async def test_the_schedules_page_is_served(api: httpx.AsyncClient) -> None:
    r = await api.get("/schedules")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    # a file (an ES module): the CSP allows no inline one
    assert '<script type="module" src="/static/schedules.js">' in r.text
    script = await api.get("/static/schedules.js")
    assert script.status_code == 200
    for needle in (
        'from "./lib/api.js"',
        "/api/auth/token",
        "/api/schedules/",
        "/api/routing/status",
    ):
        assert needle in script.text
    # the token it sends is the one the sign-in keeps (the pages' shared library)
    assert "crm_token" in (await api.get("/static/lib/api.js")).text
