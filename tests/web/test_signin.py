"""Sign-in under attack (hardening issue, item 1): argon2 off the event loop, unknown logins cost
a verification too, and attempts are throttled per login and per address across instances."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from crm_core.users import security, service
from crm_core.users.schemas import UserUpdate
from tests.conftest import UserFactory
from web.app import create_app
from web.container import Container
from web.settings import WebSettings

WAIT = 10.0


class Verifications:
    """Counts password verifications and can hold them, in whatever thread they run."""

    def __init__(self) -> None:
        self.calls = 0
        self.done = 0
        self.on_loop = 0
        self.gate = threading.Event()
        self.gate.set()
        self.real = security.verify_password

    def __call__(self, password_hash: str, password: str) -> bool:
        self.calls += 1
        try:
            asyncio.get_running_loop()
            self.on_loop += 1
        except RuntimeError:
            pass
        self.gate.wait(WAIT)
        try:
            return self.real(password_hash, password)
        finally:
            self.done += 1


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Verifications:
    v = Verifications()
    monkeypatch.setattr(security, "verify_password", v)
    monkeypatch.setattr(service, "verify_password", v, raising=False)  # where it was used before
    return v


def form(login: str, password: str) -> dict[str, str]:
    return {"username": login, "password": password}


async def test_health_answers_while_a_password_is_being_checked(
    api: httpx.AsyncClient, make_user: UserFactory, verifications: Verifications
) -> None:
    await make_user(login="olga", password="pw-olga")
    verifications.gate.clear()  # the verification is held until health has answered
    login = asyncio.create_task(api.post("/api/auth/token", data=form("olga", "wrong")))
    async with asyncio.timeout(WAIT):
        while verifications.calls == 0:
            await asyncio.sleep(0.01)
        health = await api.get("/api/health")
    held = verifications.done == 0
    verifications.gate.set()
    assert health.status_code == 200
    assert held, "health only answered once the verification let go of the event loop"
    assert (await login).status_code == 401
    assert verifications.on_loop == 0


@pytest.mark.parametrize("who", ["unknown", "disabled"])
async def test_an_unknown_or_disabled_login_costs_a_verification_too(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    container: Container,
    verifications: Verifications,
    who: str,
) -> None:
    ghost, _ = await make_user(login="ghost", password="pw-ghost")
    async with container.sessions() as s:
        await service.update_user(s, ghost.id, UserUpdate(is_active=False))
        await s.commit()
    login = "nobody-here" if who == "unknown" else "ghost"
    r = await api.post("/api/auth/token", data=form(login, "pw-ghost"))
    assert r.status_code == 401
    assert r.json()["detail"] == "wrong login or password"
    assert verifications.calls == 1


async def test_a_login_is_locked_after_too_many_failures(
    api: httpx.AsyncClient, make_user: UserFactory, container: Container
) -> None:
    await make_user(login="olga", password="pw-olga")
    limit = container.settings.web.login_max_attempts
    for _ in range(limit):
        assert (await api.post("/api/auth/token", data=form("olga", "guess"))).status_code == 401
    locked = await api.post("/api/auth/token", data=form("olga", "pw-olga"))
    assert locked.status_code == 429
    retry = int(locked.headers["Retry-After"])
    assert 0 < retry <= container.settings.web.login_lockout_seconds
    assert "too many sign-in attempts" in locked.json()["detail"]
    # another login from the same address still signs in
    await make_user(login="ivan", password="pw-ivan")
    assert (await api.post("/api/auth/token", data=form("ivan", "pw-ivan"))).status_code == 200


async def test_a_good_password_clears_the_logins_failures(
    api: httpx.AsyncClient, make_user: UserFactory, container: Container
) -> None:
    await make_user(login="olga", password="pw-olga")
    for _ in range(3):
        for _ in range(container.settings.web.login_max_attempts - 1):
            r = await api.post("/api/auth/token", data=form("olga", "typo"))
            assert r.status_code == 401
        assert (await api.post("/api/auth/token", data=form("olga", "pw-olga"))).status_code == 200


@asynccontextmanager
async def instance(container: Container, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another service instance on the same database, seen from one client address."""
    other = Container(
        settings=container.settings,
        database_url=container.database_url,
        engine=container.engine,
        sessions=container.sessions,
    )
    transport = httpx.ASGITransport(app=create_app(container=other), client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_limits_hold_across_instances_per_login_and_per_address(
    container: Container, make_user: UserFactory
) -> None:
    container.settings.web = WebSettings(
        SECRET_KEY="x" * 40, LOGIN_MAX_ATTEMPTS=4, LOGIN_MAX_ATTEMPTS_PER_ADDRESS=6
    )
    await make_user(login="olga", password="pw-olga")
    async with (
        instance(container, "198.51.100.1") as a,
        instance(container, "198.51.100.1") as b,
        instance(container, "198.51.100.2") as elsewhere,
    ):
        # per login: the attacker alternates instances, the lock still comes after 4
        for n in range(4):
            r = await (a if n % 2 else b).post("/api/auth/token", data=form("olga", "guess"))
            assert r.status_code == 401
        for client in (a, b, elsewhere):
            r = await client.post("/api/auth/token", data=form("olga", "pw-olga"))
            assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        # per address: 6 attempts from .1 so far (the refused ones count), so it is locked for
        # any login, good password or not, on either instance; another address is not
        await make_user(login="ivan", password="pw-ivan")
        r = await a.post("/api/auth/token", data=form("ivan", "pw-ivan"))
        assert r.status_code == 429
        r = await elsewhere.post("/api/auth/token", data=form("ivan", "pw-ivan"))
        assert r.status_code == 200


async def test_a_burst_of_concurrent_guesses_stops_at_the_limit(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    container: Container,
    verifications: Verifications,
) -> None:
    await make_user(login="olga", password="pw-olga")
    answers = await asyncio.gather(
        *(api.post("/api/auth/token", data=form("olga", f"guess{n}")) for n in range(20))
    )
    codes = sorted(r.status_code for r in answers)
    limit = container.settings.web.login_max_attempts
    assert codes == [401] * limit + [429] * (20 - limit)
    assert verifications.calls == limit  # the refused ones never reached argon2
