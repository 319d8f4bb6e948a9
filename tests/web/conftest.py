"""Fixtures shared by the browser tests: one headless chromium per module, a replayed PBX."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from crm_core.users.models import User
from telephony.replay import ReplayServer
from tests.conftest import UserFactory
from tests.web.live import headless_chromium

OPERATOR = ("op101", "pw-101")  # login, password of the operator at extension 101


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with headless_chromium() as b:
        yield b


@pytest.fixture
async def replay() -> AsyncIterator[ReplayServer]:
    server = ReplayServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def operator(make_user: UserFactory) -> User:
    """Olga, the operator whose phone is extension 101 in the recordings."""
    user, _ = await make_user(
        role="operator",
        extension="101",
        login=OPERATOR[0],
        password=OPERATOR[1],
        full_name="Olga Operator",
    )
    return user
