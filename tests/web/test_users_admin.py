"""Users administration: create (with default working hours), roster, password reset, deactivate."""

from __future__ import annotations

from datetime import time

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.schedules.models import ScheduleInterval
from tests.conftest import UserFactory
from web.settings import WebSettings
from web.user_defaults import parse_weekly

pytestmark = pytest.mark.usefixtures("db")


async def _token(api: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await api.post("/api/auth/token", data={"username": login, "password": password})


async def _hours(
    sessions: async_sessionmaker[AsyncSession], user_id: int
) -> list[tuple[int, time, time]]:
    async with sessions() as s:
        rows = await s.scalars(
            select(ScheduleInterval)
            .where(ScheduleInterval.user_id == user_id)
            .order_by(ScheduleInterval.weekday)
        )
        return [(r.weekday, r.start_time, r.end_time) for r in rows]


def test_default_schedule_specs() -> None:
    nine_to_six = (time(9), time(18))
    assert parse_weekly("Mon-Fri 09:00-18:00") == [(d, *nine_to_six) for d in range(5)]
    assert parse_weekly("sat 10:00-14:00; Sun 22:00-24:00") == [
        (5, time(10), time(14)),
        (6, time(22), time(0)),
    ]
    assert parse_weekly("none") == parse_weekly("") == []
    for bad in ("Mon-Fry 09:00-18:00", "Fri-Mon 09:00-18:00", "Mon 9-18", "Mon 25:00-26:00"):
        with pytest.raises(ValueError):
            parse_weekly(bad)
    with pytest.raises(ValidationError, match="weekly schedule"):
        WebSettings(DEFAULT_SCHEDULE="weekdays")


async def test_a_new_user_with_an_extension_gets_the_companys_hours(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, admin = await make_user(role="admin")
    r = await api.post(
        "/api/users",
        json={"login": "olga", "password": "S3cret!", "role": "operator", "extension": "201"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    olga = r.json()
    assert olga["has_schedule"] is True and olga["routing_note"] is None
    assert await _hours(sessions, olga["id"]) == [(d, time(9), time(18)) for d in range(5)]
    # chosen without hours: the admin's list and the routing status both say what that means
    r = await api.post(
        "/api/users",
        json={
            "login": "pavel",
            "password": "S3cret!",
            "role": "operator",
            "extension": "202",
            "schedule": "none",
        },
        headers=admin,
    )
    pavel = r.json()
    assert pavel["routing_note"] == "no schedule: never routed"
    assert await _hours(sessions, pavel["id"]) == []
    roster = {u["login"]: u for u in (await api.get("/api/users/roster", headers=admin)).json()}
    assert roster["pavel"]["routing_note"] == "no schedule: never routed"
    assert roster["olga"]["routing_note"] is None
    status = (await api.get("/api/routing/status", headers=admin)).json()
    agents = {a["user_id"]: a for a in status["agents"]}
    assert agents[pavel["id"]]["routing_note"] == "no schedule: never routed"
    assert agents[pavel["id"]]["has_schedule"] is False
    assert agents[olga["id"]]["has_schedule"] is True
    # a user without a phone gets no hours (nothing rings them anyway)
    r = await api.post(
        "/api/users",
        json={"login": "sveta", "password": "S3cret!", "role": "supervisor"},
        headers=admin,
    )
    assert r.json()["has_schedule"] is False and r.json()["routing_note"] is None


async def test_only_admins_manage_users(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    target, _ = await make_user(role="operator")
    _, supervisor = await make_user(role="supervisor")
    assert (await api.get("/api/users/roster", headers=supervisor)).status_code == 403
    r = await api.post(f"/api/users/{target.id}/password", json={}, headers=supervisor)
    assert r.status_code == 403
    new = {"login": "x", "password": "S3cret!", "role": "operator"}
    assert (await api.post("/api/users", json=new, headers=supervisor)).status_code == 403


async def test_a_reset_password_ends_the_users_sessions(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user, old = await make_user(role="operator", login="olga", password="first-pw")
    _, admin = await make_user(role="admin")
    assert (await api.get("/api/auth/me", headers=old)).status_code == 200
    r = await api.post(f"/api/users/{user.id}/password", json={}, headers=admin)
    assert r.status_code == 200, r.text
    temporary = r.json()["temporary_password"]
    assert isinstance(temporary, str) and len(temporary) >= 12
    assert (await api.get("/api/auth/me", headers=old)).status_code == 401
    assert (await _token(api, "olga", "first-pw")).status_code == 401
    signed = await _token(api, "olga", temporary)
    assert signed.status_code == 200, signed.text
    # or one the admin chose: nothing is generated
    r = await api.post(
        f"/api/users/{user.id}/password", json={"password": "chosen-pw"}, headers=admin
    )
    assert r.json()["temporary_password"] is None
    fresh = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    assert (await api.get("/api/auth/me", headers=fresh)).status_code == 401
    assert (await _token(api, "olga", "chosen-pw")).status_code == 200
    bad = await api.post(f"/api/users/{user.id}/password", json={"password": "ab"}, headers=admin)
    assert bad.status_code == 422
    assert (await api.post("/api/users/999999/password", json={}, headers=admin)).status_code == 404


async def test_deactivate_and_change_role_and_extension(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user, token = await make_user(role="operator", extension="301")
    me, admin = await make_user(role="admin")
    r = await api.patch(
        f"/api/users/{user.id}", json={"role": "manager", "extension": "302"}, headers=admin
    )
    assert (r.json()["role"], r.json()["extension"]) == ("manager", "302")
    r = await api.patch(f"/api/users/{user.id}", json={"is_active": False}, headers=admin)
    assert r.json()["is_active"] is False
    assert (await api.get("/api/auth/me", headers=token)).status_code == 401
    # an admin cannot lock themselves out
    r = await api.patch(f"/api/users/{me.id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 422
    r = await api.patch(f"/api/users/{me.id}", json={"role": "operator"}, headers=admin)
    assert r.status_code == 422
