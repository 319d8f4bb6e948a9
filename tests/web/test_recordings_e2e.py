"""Recordings in the browser: real uvicorn, real AMI replay of a recorded call, headless Chromium.

The replayed call is the one Asterisk recorded (asterisk/recordings/inbound_recorded), and the
folder the service reads holds the very WAV file MixMonitor wrote for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.telephony.helpers import AMI_DIR
from tests.web.conftest import OPERATOR
from tests.web.live import (
    LiveService,
    chromium_available,
    sign_in,
    sign_in_at_desk,
)
from tests.web.recorded_calls import ANSWERED, WAV
from tests.web.test_operator_e2e import play, seed_ivan, settle

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Locator, Page, expect  # noqa: E402

SUPERVISOR = ("sup", "pw-sup")


@pytest.fixture
def ready_before_service(operator: User, rec_dir: Path) -> None:
    """Olga and the recordings' folder are there when the service starts."""


async def _src_plays(page: Page, audio: Locator) -> None:
    """The player's source is served: it has a duration, and a byte range of it is a 206."""
    duration = await audio.evaluate(
        """async (a) => {
            if (!(a.duration > 0)) await new Promise((ok, no) => {
                a.addEventListener("loadedmetadata", ok, { once: true });
                a.addEventListener("error", () => no(new Error("media error")), { once: true });
            });
            return a.duration;
        }"""
    )
    assert duration == pytest.approx(ANSWERED["talk_s"], abs=1.0)
    src = await audio.get_attribute("src")
    assert src and "/recording?token=" in src
    ranged: dict[str, Any] = await page.evaluate(
        """async (src) => {
            const r = await fetch(src, { headers: { Range: "bytes=0-99" } });
            const body = await r.arrayBuffer();
            return { status: r.status, range: r.headers.get("content-range"), n: body.byteLength };
        }""",
        src,
    )
    size = WAV.stat().st_size
    assert ranged == {"status": 206, "range": f"bytes 0-99/{size}", "n": 100}


async def test_the_cards_timeline_plays_the_calls_recording_and_says_when_it_is_missing(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
    rec_dir: Path,
) -> None:
    await seed_ivan(sessions, operator)
    await sign_in_at_desk(page, service, OPERATOR)
    await play(replay, "inbound_recorded", speed=0)
    await settle(service, replay)
    await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")
    await page.click("#pop-open")  # the card, with its timeline
    entry = page.locator("#timeline li[data-kind='call']")
    await expect(entry).to_have_count(1)
    audio = entry.get_by_test_id("recording-player")
    await expect(audio).to_be_visible()
    await _src_plays(page, audio)

    # the file is gone (cleaned up on the PBX): the card says so, the page stays whole
    (rec_dir / WAV.name).unlink()
    await page.reload()
    await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")
    await page.click("#pop-open")
    entry = page.locator("#timeline li[data-kind='call']")
    await expect(entry.get_by_test_id("recording-missing")).to_have_text("recording missing")
    await expect(entry.get_by_test_id("recording-player")).to_have_count(0)


async def test_the_board_plays_recent_calls_and_says_what_has_no_audio(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    make_user: UserFactory,
    rec_dir: Path,
) -> None:
    await make_user(role="supervisor", login=SUPERVISOR[0], password=SUPERVISOR[1])
    names = ("inbound_recorded", "inbound_recorded_abandoned")
    await replay.play([AMI_DIR / f"{n}.ami" for n in names], speed=0, shift_to_now=True)
    await settle(service, replay)

    await sign_in(page, service, SUPERVISOR, "/dashboard")
    rows = page.locator("#recent tr")
    await expect(rows).to_have_count(2)
    # newest first: the abandoned call, whose file MixMonitor left with a header only
    await expect(rows.nth(0)).to_contain_text("abandoned")
    await expect(rows.nth(0)).to_contain_text("no audio")
    await expect(rows.nth(1)).to_contain_text("answered")

    await rows.nth(1).locator("button[data-play]").click()
    audio = page.get_by_test_id("board-player").get_by_test_id("recording-player")
    await expect(audio).to_be_visible()
    await _src_plays(page, audio)
    # the board redraws every second; the player above the list keeps its source
    src = await audio.get_attribute("src")
    await page.wait_for_timeout(1500)
    assert await audio.get_attribute("src") == src

    (rec_dir / WAV.name).unlink()
    await page.reload()
    await page.locator("#recent tr").nth(1).locator("button[data-play]").click()
    player = page.get_by_test_id("board-player")
    await expect(player.get_by_test_id("recording-missing")).to_have_text("recording missing")
    await expect(page.locator("#recent tr")).to_have_count(2)  # the board is still there
