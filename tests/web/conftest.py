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
from tests.telephony.helpers import replay_server
from tests.web.live import (
    Contexts,
    LiveService,
    fresh_contexts,
    headless_chromium,
    live_service,
    watch_errors,
    with_ami,
)
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
    async with replay_server() as server:
        yield server


@pytest.fixture
def ready_before_service() -> None:
    """What must be in place before `service` starts; a module overrides it with its users."""


@pytest.fixture
async def service(
    settings: Settings, container: Container, replay: ReplayServer, ready_before_service: None
) -> AsyncIterator[LiveService]:
    """The app served live, its call tracking following `replay` (as `crm-telephony demo`)."""
    with_ami(settings, replay)
    async with live_service(container) as live:
        yield live


@pytest.fixture
async def operator(make_user: UserFactory) -> User:
    """Olga, the operator whose phone is extension 101 in the recordings."""
    return await signing_in_as(
        make_user, OPERATOR, role="operator", extension="101", full_name="Olga Operator"
    )


async def signing_in_as(
    make_user: UserFactory, credentials: tuple[str, str], **fields: Any
) -> User:
    """A user who signs in with `credentials` (login, password); `fields` as make_user takes."""
    user, _ = await make_user(login=credentials[0], password=credentials[1], **fields)
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
async def pages(browser: Any) -> AsyncIterator[Contexts]:
    """Fresh 1366×860 contexts, one a signed-in person; the test fails on any JavaScript error."""
    async with fresh_contexts(
        browser, viewport={"width": 1366, "height": 860}, timeout_ms=10_000
    ) as p:
        yield p


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
