"""Tokens end: sign-out, a new password and a disabled account end them at once, on every
instance, and close the websockets they opened (hardening issue, item 5)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import delete, func, select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crm_core.users.models import AuthSession
from tests.conftest import UserFactory
from tests.web.test_ws import WAIT, Launch, launch, recv, token_of
from web.session_watch import SessionWatch

__all__ = ["launch"]  # the fixture, shared with test_ws.py

pytestmark = pytest.mark.usefixtures("db")


async def _sign_in(api: httpx.AsyncClient, login: str, password: str) -> dict[str, str]:
    r = await api.post("/api/auth/token", data={"username": login, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_sign_out_ends_that_token_only(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    await make_user(role="manager", login="mira", password="pw-mira")
    laptop = await _sign_in(api, "mira", "pw-mira")
    phone = await _sign_in(api, "mira", "pw-mira")
    assert (await api.get("/api/auth/me", headers=laptop)).status_code == 200

    assert (await api.post("/api/auth/logout", headers=laptop)).status_code == 204

    gone = await api.get("/api/auth/me", headers=laptop)
    assert gone.status_code == 401
    assert gone.json()["detail"] == "invalid, expired or signed-out token"
    assert (await api.post("/api/auth/logout", headers=laptop)).status_code == 401
    # the other sign-in of the same user is untouched
    assert (await api.get("/api/auth/me", headers=phone)).status_code == 200


@pytest.mark.parametrize(
    "change", [{"password": "a-new-one"}, {"is_active": False}], ids=["password", "disabled"]
)
async def test_new_password_or_disabled_user_ends_every_token(
    api: httpx.AsyncClient, make_user: UserFactory, change: dict[str, object]
) -> None:
    _, admin = await make_user(role="admin")
    user, fixture_token = await make_user(role="operator", login="olga", password="pw-olga")
    signed_in = await _sign_in(api, "olga", "pw-olga")
    for headers in (fixture_token, signed_in):
        assert (await api.get("/api/auth/me", headers=headers)).status_code == 200

    r = await api.patch(f"/api/users/{user.id}", json=change, headers=admin)
    assert r.status_code == 200, r.text

    for headers in (fixture_token, signed_in):
        assert (await api.get("/api/auth/me", headers=headers)).status_code == 401
    if "password" in change:
        assert (await _sign_in(api, "olga", "a-new-one"))["Authorization"]
    # the admin's own session is not touched
    assert (await api.get("/api/auth/me", headers=admin)).status_code == 200


async def _closed_with(ws_url: str, token: str, act: asyncio.Future[None]) -> int | None:
    """Open a socket, let `act` happen, return the close code the server sent."""
    async with connect(ws_url) as ws:
        await ws.send(f'{{"token": "{token}"}}')
        assert (await recv(ws))["type"] == "subscribed"
        act.set_result(None)
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    await ws.recv()
        except ConnectionClosed:
            pass
        return ws.close_code


@pytest.mark.parametrize("how", ["disabled", "password", "signed out"])
async def test_ending_a_session_on_one_instance_closes_its_sockets_on_another(
    launch: Launch, make_user: UserFactory, how: str
) -> None:
    """Two instances on one database: the change is made through A, the socket is held by B."""
    user, operator = await make_user(role="operator", extension="101")
    _, admin = await make_user(role="admin")
    token = operator["Authorization"].removeprefix("Bearer ")
    bystander = await token_of(make_user, role="operator", extension="102")
    async with launch() as a, launch() as b:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        other: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        closing = asyncio.create_task(_closed_with(b.ws, token, ready))
        untouched = asyncio.create_task(_closed_with(b.ws, bystander, other))
        await ready
        await other
        async with httpx.AsyncClient(base_url=a.http) as http:
            if how == "signed out":
                r = await http.post("/api/auth/logout", headers=operator)
                assert r.status_code == 204
            else:
                change = {"is_active": False} if how == "disabled" else {"password": "x-new-x"}
                r = await http.patch(f"/api/users/{user.id}", json=change, headers=admin)
                assert r.status_code == 200
        assert await closing == 4401
        # a socket of somebody else stays open
        assert not untouched.done()
        untouched.cancel()
        # and the ended token opens no new socket on either instance
        for instance in (a, b):
            async with connect(instance.ws) as ws:
                await ws.send(f'{{"token": "{token}"}}')
                with pytest.raises(ConnectionClosed):
                    await recv(ws)
                assert ws.close_code == 4401


async def test_a_session_ended_while_the_listener_was_away_closes_on_reconnect(
    launch: Launch, make_user: UserFactory
) -> None:
    """Notifications sent while an instance's listener is down are lost: it re-checks its
    sockets' sessions when the listener is back."""
    user, operator = await make_user(role="operator", extension="101")
    token = operator["Authorization"].removeprefix("Bearer ")
    async with launch() as a:
        watch = a.container.session_watch
        assert isinstance(watch, SessionWatch)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        closing = asyncio.create_task(_closed_with(a.ws, token, ready))
        await ready
        async with a.container.engine.begin() as conn:
            # ended without an announcement, as if it had been lost, then the listener drops
            await conn.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
            await conn.execute(select(func.pg_terminate_backend(watch.bus.backend_pid)))
        assert await closing == 4401
