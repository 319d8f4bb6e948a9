"""The demo's click-to-call: the recorded one, renamed into the call asked for, followed by AMI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from playwright.async_api import expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from crm_core.users.models import User
from telephony.testing.replay import ReplayServer, load_recording
from tests.conftest import UserFactory
from tests.telephony.helpers import AMI_DIR
from tests.web.conftest import OPERATOR
from tests.web.live import drain, fresh_contexts, live_service, sign_in, with_ami
from tests.web.test_operator_e2e import seed_ivan
from web.click_to_call import originator_of
from web.container import Container
from web.demo_originate import RECORDING, RecordedCall, ReplayedOriginator, rewrite
from web.settings import Settings

pytestmark = pytest.mark.usefixtures("db")


def test_the_recording_is_renamed_into_the_call_asked_for() -> None:
    events = load_recording(AMI_DIR / f"{RECORDING}.ami")
    recorded = RecordedCall.load(AMI_DIR / f"{RECORDING}.truth.json")
    assert recorded == RecordedCall("101", "79161234567", "42", "7")
    out = rewrite(
        events, recorded, agent_extension="205", number="74951234500", deal_id=9, user_id=31
    )
    text = "\n".join(f"{k}: {v}" for e in out for k, v in e)
    assert "79161234567" not in text
    assert "Local/101@" not in text and "Manager 101" not in text
    assert "Channel: Local/205@agent-phones-00000000;1" in text
    assert "Exten: 74951234500" in text
    variables = {
        dict(e)["Variable"]: dict(e)["Value"]
        for e in out
        if dict(e).get("Event") == "VarSet" and dict(e)["Variable"].startswith("CRM_")
    }
    assert variables == {"CRM_DEAL_ID": "9", "CRM_USER_ID": "31"}
    # ids and clocks are left to the replay's renumbering and shifting
    assert [dict(e).get("Uniqueid") for e in out] == [
        dict(e).get("Uniqueid")
        for e in events
        if dict(e)["Event"] not in ("SuccessfulAuth", "FullyBooted")
    ]


async def test_bad_input_never_reaches_the_pbx() -> None:
    replay = ReplayServer()
    originator = ReplayedOriginator(replay, AMI_DIR)
    with pytest.raises(ValueError, match="dialable"):
        await originator.originate(
            agent_extension="101", number="1\r\nAction: Hangup", deal_id=1, user_id=1
        )


def demo(
    settings: Settings,
    db: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    replay: ReplayServer,
    *,
    speed: float,
) -> tuple[Container, ReplayedOriginator]:
    """The demo's container: click-to-call plays the recorded call on `replay` at `speed`."""
    originator = ReplayedOriginator(replay, AMI_DIR, speed=speed)
    c = Container(
        settings=with_ami(settings, replay),
        database_url=settings.core.database_url,
        engine=db,
        sessions=sessions,
        originator=originator,
    )
    return c, originator


async def test_a_demo_click_to_call_rings_answers_and_ends_on_the_page(
    settings: Settings,
    db: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    replay: ReplayServer,
) -> None:
    c, originator = demo(settings, db, sessions, replay, speed=4)
    assert originator_of(c) is originator
    async with live_service(c) as service:
        manager, h = await make_user(role="manager", extension="102")
        token = h["Authorization"].removeprefix("Bearer ")
        async with httpx.AsyncClient(base_url=service.url) as api:
            client = await api.post(
                "/api/clients",
                json={"name": "Ivan", "phones": ["+7 495 765-43-21"]},
                headers=h,
            )
            async with websockets.connect(f"{service.ws_url}?token={token}") as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert hello["type"] == "subscribed"
                r = await api.post(
                    "/api/calls/originate", json={"client_id": client.json()["id"]}, headers=h
                )
                assert r.status_code == 202, r.text
                got = await drain(ws, until="call.ended")
        await originator.wait_played()
    calls = [m for m in got if str(m["type"]).startswith("call.")]
    # the tracker's outbound call: placed (the agent's phone rings), answered, ended
    assert [m["type"] for m in calls] == ["call.started", "call.answered", "call.ended"]
    assert {m["channel"] for m in calls} == {"ext:102"}
    ended = calls[-1]["payload"]
    assert ended["status"] == "answered" and ended["answered_by"] == "client"
    assert ended["deal_id"] == r.json()["deal_id"]
    assert ended["client_number"] == "74957654321"  # as dialled
    async with sessions() as s:
        logged = (await s.scalars(select(Communication))).all()
    assert [(x.deal_id, x.direction, x.user_id) for x in logged] == [
        (r.json()["deal_id"], "out", manager.id)
    ]


async def test_the_demo_click_to_call_on_the_operators_page(
    settings: Settings,
    db: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
    browser: Any,
    replay: ReplayServer,
) -> None:
    """The card's Call button in the demo: "ringing your phone", then the call is answered and
    ends, from the recorded call's real events (it stayed on "ringing" for ever before)."""
    c, _ = demo(settings, db, sessions, replay, speed=1)
    client_id, _ = await seed_ivan(sessions, operator)
    laptop = {"width": 1366, "height": 768}
    async with fresh_contexts(browser, viewport=laptop, timeout_ms=20_000) as pages:
        page = await pages.page()
        async with live_service(c) as service:
            await sign_in(page, service, OPERATOR)
            await page.fill("#find-q", "Ivan")
            await page.click("[data-testid=find-submit]")
            await page.locator(f'#find-results li[data-client-id="{client_id}"]').click()
            await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
            await page.click("#client-call")
            status = page.locator("#client-status")
            await expect(status).to_contain_text("On the call with")
            ended = page.locator('#calls li[data-state="ended"]')
            await expect(ended).to_have_count(1, timeout=20_000)  # after ~6 s of talk
            await expect(ended).to_contain_text("Ivan Petrov")
            await expect(ended).to_contain_text("answered")
