"""Fixtures shared by the browser tests: one headless chromium per module, a replayed PBX."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from telephony.replay import ReplayServer
from tests.web.live import headless_chromium


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
