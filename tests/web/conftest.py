"""Fixtures shared by the browser tests: one headless chromium per module, a replayed PBX."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.web.live import headless_chromium, watch_errors
from tests.web.recorded_calls import HEADER_ONLY, WAV
from web.container import Container
from web.settings import Settings

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


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser page at 1366×860; the test fails on any JavaScript error it showed."""
    context = await browser.new_context(viewport={"width": 1366, "height": 860})
    p = await context.new_page()
    p.set_default_timeout(15_000)
    errors: list[str] = []
    watch_errors(p, errors)
    yield p
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def rec_dir(tmp_path: Path, settings: Settings) -> Path:
    """RECORDINGS_DIR shared with 'Asterisk', holding the files of both recorded calls."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(WAV, folder)
    shutil.copy(HEADER_ONLY, folder)
    settings.web.recordings_dir = folder
    return folder


@pytest.fixture
def published() -> list[Any]:
    """What committed units of work publish (the hub's input), where a module's `container`
    fixture is `publishing_into(container, published)`."""
    return []


def publishing_into(container: Container, published: list[Any]) -> Container:
    """The container publishing into `published` (it is frozen: a copy)."""

    async def publish(batch: list[Any]) -> None:
        published.extend(batch)

    return replace(container, publish=publish)
