"""Presence over HTTP: agents set their own, supervisors anyone's; the routing status shows it;
supervisors are told (agent.presence); bad input is a 4xx; the pause reasons list is editable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.presence import service as presence
from crm_core.presence.events import PresenceChanged
from crm_core.presence.models import PauseReason, PresenceSpan
from crm_core.users.models import User
from notifier.channels import SUPERVISORS, messages_for, user_channel
from telephony.presence_events import PresenceFromPbx
from telephony.presence_pusher import PresencePusher
from tests.conftest import UserFactory
from tests.web.conftest import publishing_into
from web.app import create_app
from web.container import Container

pytestmark = pytest.mark.usefixtures("db")

ALL_WEEK = {
    "intervals": [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)],
    "exceptions": [],
}


@pytest.fixture
def container(container: Container, published: list[Any]) -> Container:
    return publishing_into(container, published)


@pytest.fixture
async def restore_reasons(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """The seeded reasons survive between tests: put them back as they were."""
    async with sessions() as s:
        before = [
            (r.id, r.name, r.position, r.is_active) for r in await s.scalars(select(PauseReason))
        ]
    yield
    async with sessions() as s:
        await s.execute(delete(PauseReason).where(PauseReason.id.not_in([b[0] for b in before])))
        for rid, name, position, active in before:
            await s.execute(
                update(PauseReason)
                .where(PauseReason.id == rid)
                .values(name=name, position=position, is_active=active)
            )
        await s.commit()


async def test_an_agent_pauses_and_the_routing_status_and_supervisors_see_it(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    published: list[Any],
) -> None:
    _, admin = await make_user(role="admin")
    m1, h1 = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    for user in (m1, m2):
        assert (await api.put(f"/api/schedules/{user.id}", json=ALL_WEEK, headers=admin)).is_success

    r = await api.put("/api/presence/me", json={"state": "paused", "reason": "lunch"}, headers=h1)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["reason"], r.json()["user_id"]) == (
        "paused",
        "lunch",
        m1.id,
    )
    status = (await api.get("/api/routing/status", headers=h1)).json()
    agents = {a["user_id"]: a for a in status["agents"]}
    assert (agents[m1.id]["presence"], agents[m1.id]["presence_reason"]) == ("paused", "lunch")
    assert agents[m2.id]["presence"] == "available"
    assert status["paused"] == [m1.id] and status["free"] == [m2.id]
    assert status["turn"] == [m2.id] and agents[m1.id]["turn"] is None

    (event,) = [e for e in published if isinstance(e, PresenceChanged)]
    messages = [m for m in messages_for([event])]
    assert {m.channel for m in messages} == {SUPERVISORS, user_channel(m1.id)}
    assert messages[0].type == "agent.presence"
    assert messages[0].payload | {"since": None} == {
        "user_id": m1.id,
        "extension": "101",
        "state": "paused",
        "reason": "lunch",
        "since": None,
        "until": None,
        "source": "api",
    }
    # the same state again changes nothing and tells nobody
    again = await api.put(
        "/api/presence/me", json={"state": "paused", "reason": "Lunch"}, headers=h1
    )
    assert again.status_code == 200 and again.json()["since"] == r.json()["since"]
    assert len([e for e in published if isinstance(e, PresenceChanged)]) == 1

    # a supervisor sets DND for m2, then makes m1 available
    _, sup = await make_user(role="supervisor")
    assert (await api.put(f"/api/presence/{m2.id}", json={"state": "dnd"}, headers=sup)).is_success
    assert (
        await api.put(f"/api/presence/{m1.id}", json={"state": "available"}, headers=sup)
    ).json()["state"] == "available"
    status = (await api.get("/api/routing/status", headers=sup)).json()
    assert status["dnd"] == [m2.id] and status["paused"] == [] and status["free"] == [m1.id]
    board = {p["user_id"]: p["state"] for p in (await api.get("/api/presence", headers=sup)).json()}
    assert board == {m1.id: "available", m2.id: "dnd"}
    own = (await api.get("/api/presence", headers=h1)).json()
    assert [p["user_id"] for p in own] == [m1.id]
    async with sessions() as s:
        spans = (
            await s.execute(
                select(PresenceSpan.state, PresenceSpan.until.is_(None))
                .where(PresenceSpan.user_id == m1.id)
                .order_by(PresenceSpan.id)
            )
        ).all()
    assert [tuple(x) for x in spans] == [("paused", False), ("available", True)]


async def test_presence_input_is_checked_and_only_staff_set_others(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    m1, h1 = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    _, sup = await make_user(role="supervisor")
    for body in (
        {"state": "wrapup"},  # started by calls only
        {"state": "asleep"},
        {"state": "paused", "reason": "no such reason"},
        {"state": "paused", "reason": "x" * 101},
        {},
        {"state": "dnd", "extra": 1},
    ):
        r = await api.put("/api/presence/me", json=body, headers=h1)
        assert r.status_code == 422, (body, r.text)
    assert (
        await api.put(f"/api/presence/{m2.id}", json={"state": "dnd"}, headers=h1)
    ).status_code == 403
    assert (
        await api.put("/api/presence/99999", json={"state": "dnd"}, headers=sup)
    ).status_code == 404
    assert (await api.put("/api/presence/me", json={"state": "dnd"})).status_code == 401
    me = (await api.get("/api/presence/me", headers=h1)).json()
    assert (me["user_id"], me["state"], me["since"]) == (m1.id, "available", None)


@pytest.mark.usefixtures("restore_reasons")
async def test_pause_reasons_are_seeded_and_staff_edit_them(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h1 = await make_user(role="manager", extension="101")
    _, sup = await make_user(role="supervisor")
    codes = [r["code"] for r in (await api.get("/api/presence/reasons", headers=h1)).json()]
    assert codes[:4] == ["lunch", "break", "training", "paperwork"]
    new = {"code": "coaching", "name": "Coaching"}
    assert (await api.post("/api/presence/reasons", json=new, headers=h1)).status_code == 403
    made = await api.post("/api/presence/reasons", json=new, headers=sup)
    assert made.status_code == 201, made.text
    assert (await api.post("/api/presence/reasons", json=new, headers=sup)).status_code == 422
    r = await api.put(
        "/api/presence/me", json={"state": "paused", "reason": "Coaching"}, headers=h1
    )
    assert r.json()["reason"] == "coaching"
    lunch = next(
        x
        for x in (await api.get("/api/presence/reasons", headers=h1)).json()
        if x["code"] == "lunch"
    )
    off = await api.patch(
        f"/api/presence/reasons/{lunch['id']}", json={"is_active": False}, headers=sup
    )
    assert off.status_code == 200 and off.json()["is_active"] is False
    r = await api.put("/api/presence/me", json={"state": "paused", "reason": "lunch"}, headers=h1)
    assert r.status_code == 422  # retired from the list
    every = (await api.get("/api/presence/reasons?include_inactive=true", headers=sup)).json()
    assert "lunch" in [x["code"] for x in every]


class ConnectedAmi:
    """What the API pushes to the PBX, through a fake of the listener (connected)."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def wait_connected(self) -> None:
        return None

    async def send_action(self, action: dict[str, str]) -> list[dict[str, str]]:
        self.sent.append(action)
        if action["Action"] == "QueueStatus":
            return [
                {"Response": "Success"},
                {"Event": "QueueMember", "Queue": "sales", "Location": "Local/101@agent-phones/n"},
            ]
        return [{"Response": "Success"}]


async def test_a_change_is_pushed_to_the_pbx_and_the_pbx_echo_changes_nothing(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    published: list[Any],
) -> None:
    m1, h1 = await make_user(role="manager", extension="101")
    ami = ConnectedAmi()
    pusher = PresencePusher(ami, sessions)
    pusher.start()
    # this instance follows the PBX through `ami` (the container is frozen: a new app on it)
    following = replace(container, call_tracking=SimpleNamespace(listener=ami, pusher=pusher))
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(container=following)), base_url="http://test"
    )
    r = await api.put("/api/presence/me", json={"state": "paused", "reason": "lunch"}, headers=h1)
    assert r.status_code == 200
    await pusher.idle()
    assert ami.sent[-1] == {
        "Action": "QueuePause",
        "Interface": "Local/101@agent-phones/n",
        "Paused": "true",
        "Reason": "lunch",
    }
    pbx = PresenceFromPbx(sessions, container.publish)
    echo = {
        "Event": "QueueMemberPause",
        "Queue": "sales",
        "Interface": "Local/101@agent-phones/n",
        "Paused": "1",
        "PausedReason": "lunch",
    }
    await pbx.on_event(echo)
    assert len([e for e in published if isinstance(e, PresenceChanged)]) == 1
    # unpaused at the phone: the CRM follows, and says so
    await pbx.on_event({**echo, "Paused": "0", "PausedReason": ""})
    me = (await api.get("/api/presence/me", headers=h1)).json()
    assert me["state"] == "available"
    last = [e for e in published if isinstance(e, PresenceChanged)][-1]
    assert (last.user_id, last.state, last.source) == (m1.id, "available", "pbx")
    # paused at the PBX by a feature code: paused here too, with the PBX's reason
    await pbx.on_event({**echo, "PausedReason": "Break"})
    me = (await api.get("/api/presence/me", headers=h1)).json()
    assert (me["state"], me["reason"]) == ("paused", "Break")
    # available again from the API: unpaused, in order after the pause
    r = await api.put("/api/presence/me", json={"state": "available"}, headers=h1)
    assert r.status_code == 200
    await pusher.idle()
    assert ami.sent[-1] == {
        "Action": "QueuePause",
        "Interface": "Local/101@agent-phones/n",
        "Paused": "false",
    }
    await pusher.stop()
    await api.aclose()


async def test_time_per_state_report_sums_the_history(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    m1, h1 = await make_user(role="manager", extension="101")
    m2, _ = await make_user(role="manager", extension="102")
    _, sup = await make_user(role="supervisor")
    # 10 February 2026, Moscow: 09:00 available … 12:00 lunch … 13:00 back … 14:00 wrap-up 30 s
    day = datetime(2026, 2, 10, 6, 0, tzinfo=UTC)  # 09:00 in Moscow
    async with sessions() as s:
        user = await s.get(User, m1.id)
        assert user is not None
        await presence.set_state(s, user, "dnd", None, day)
        await presence.set_state(s, user, "available", None, day + timedelta(minutes=30))
        await presence.set_state(s, user, "paused", "lunch", day + timedelta(hours=3))
        await presence.set_state(s, user, "available", None, day + timedelta(hours=4))
        ended = day + timedelta(hours=5)
        await presence.start_wrapup(s, ["101"], ended, 30, ended, on={"101": user})
        await s.commit()
    params = {"date_from": "2026-02-10", "date_to": "2026-02-10"}
    rows = (await api.get("/api/reports/presence", params=params, headers=sup)).json()["items"]
    by_user = {r["user_id"]: r for r in rows}
    # until the end of the day in Moscow (21:00 UTC): 15 h from 06:00 UTC
    assert by_user[m1.id] == {
        "user_id": m1.id,
        "name": m1.full_name,
        "available_seconds": 15 * 3600 - 1800 - 3600 - 30,
        "paused_seconds": 3600,
        "dnd_seconds": 1800,
        "wrapup_seconds": 30,
    }
    assert by_user[m2.id]["available_seconds"] == 0  # no history: nothing to count
    own = (await api.get("/api/reports/presence", params=params, headers=h1)).json()["items"]
    assert [r["user_id"] for r in own] == [m1.id]
    csv = await api.get("/api/reports/presence", params={**params, "format": "csv"}, headers=sup)
    assert csv.text.splitlines()[0] == (
        "user_id,name,available_seconds,paused_seconds,dnd_seconds,wrapup_seconds"
    )
