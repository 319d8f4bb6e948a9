"""The operator's workspace end to end: real uvicorn, real AMI replay, real headless Chromium.

Each test serves the app on an ephemeral port with the call tracking following a `ReplayServer`
(as `crm-telephony demo` does), logs in through the page, plays recorded Asterisk traffic and
looks at what the page shows and what the database holds.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.calls import progress
from crm_core.clients.models import Client, ClientEmail, ClientPhone
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStage, DealStageMove
from crm_core.models_common import utcnow
from crm_core.tasks.models import Task
from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.telephony.helpers import AMI_DIR, split_recording
from tests.telephony.pbx import settle_pipeline
from tests.web.conftest import OPERATOR
from tests.web.live import (
    Contexts,
    LiveService,
    chromium_available,
    drain,
    live_service,
    second_container,
    sign_in_at_desk,
)
from web.settings import Settings

# No skipping: `make test` installs Debian's chromium first; without it these tests fail loudly.
assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, WebSocketRoute, expect  # noqa: E402

IVAN_PHONE = "+79161234567"
POP_SCREENSHOT = "/tmp/pop.png"
# Headless Chromium has no notification service: stand in for the browser's Notification with
# permission granted, so the page's own code path (permission check, title, body) runs.
FAKE_NOTIFICATION = """
window.Notification = function (title, options) { this.close = () => {}; };
Object.defineProperty(window.Notification, "permission", { get: () => "granted" });
window.Notification.requestPermission = async () => "granted";
"""
WORKSPACE_SCREENSHOT = "/tmp/workspace.png"


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture
def ready_before_service(operator: User) -> None:
    """Olga exists when the service starts."""


async def seed_ivan(sessions: async_sessionmaker[AsyncSession], operator: User) -> tuple[int, int]:
    """Ivan Petrov with a phone, an open deal, some history and an open task; both his."""
    async with sessions() as s:
        client = Client(
            name="Ivan Petrov",
            company="Petrov & Sons",
            kind="person",
            lead_source="website",
            responsible_id=operator.id,
            readiness=5,
            notes="",
            phones=[ClientPhone(e164=IVAN_PHONE, raw="8 916 123-45-67", label="mobile")],
            emails=[ClientEmail(email="ivan@petrov.example")],
        )
        s.add(client)
        await s.flush()
        deal = Deal(
            client_id=client.id,
            title="Supply contract",
            amount=Decimal("150000"),
            stage_id=2,
            responsible_id=operator.id,
            lead_source="website",
        )
        s.add(deal)
        await s.flush()
        s.add(
            Communication(
                kind="note",
                direction="out",
                status="done",
                occurred_at=utcnow() - timedelta(days=2),
                client_id=client.id,
                deal_id=deal.id,
                user_id=operator.id,
                subject="sent offer",
                body="Sent the price list",
                extra={"result": "sent offer"},
                created_at=utcnow(),
            )
        )
        s.add(
            Task(
                title="Prepare the contract draft",
                kind="other",
                due_at=utcnow() + timedelta(days=1),
                assignee_id=operator.id,
                client_id=client.id,
                deal_id=deal.id,
                created_by_id=operator.id,
                done=False,
            )
        )
        await s.commit()
        return client.id, deal.id


@pytest.fixture
async def ivan(sessions: async_sessionmaker[AsyncSession], operator: User) -> tuple[int, int]:
    """Ivan Petrov seeded (seed_ivan): (client id, deal id)."""
    return await seed_ivan(sessions, operator)


@pytest.fixture
async def signed_in(service: LiveService, page: Page) -> None:
    """The operator signed in on `page` (ask for `ivan` first to have him there already)."""
    await sign_in_at_desk(page, service, OPERATOR)


async def ivan_calls(replay: ReplayServer, page: Page) -> None:
    """Ivan's recorded inbound call, answered, played at once: his name pops."""
    await play(replay, "inbound_answered", speed=0)
    await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")


async def play(replay: ReplayServer, name: str, *, speed: float) -> None:
    await replay.play([AMI_DIR / f"{name}.ami"], speed=speed, shift_to_now=True, renumber=True)


async def settle(live: LiveService, replay: ReplayServer) -> None:
    """Everything played is in the database and published."""
    await asyncio.wait_for(replay.wait_played(), 30)
    assert live.tracking.pipeline is not None
    await settle_pipeline(replay, live.tracking.pipeline)


async def diag(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        "() => ({log: __crm.log, rendered: __crm.popRenderedAt,"
        " stateAtRender: __crm.popStateAtRender, connects: __crm.connects,"
        " lastSeq: __crm.lastSeq, connected: __crm.connected, beeps: __crm.beeps,"
        " notifications: __crm.notifications})"
    )
    return result


# ---------------------------------------------------------------------------------- tests


async def test_known_caller_pops_while_ringing_and_lands_in_the_timeline(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    ivan: tuple[int, int],
) -> None:
    client_id, deal_id = ivan
    await page.add_init_script(FAKE_NOTIFICATION)
    await sign_in_at_desk(page, service, OPERATOR)

    await play(replay, "inbound_answered", speed=1)
    pop = page.locator("#pop")
    await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")
    await expect(page.locator("#pop-company")).to_have_text("Petrov & Sons")
    await expect(page.locator("#pop-phones")).to_contain_text(IVAN_PHONE)
    await expect(page.locator("#pop-responsible")).to_have_text("Olga Operator")
    await expect(page.locator("#pop-deal")).to_contain_text("Supply contract")
    await expect(page.locator("#pop-deal-stage")).to_have_text("First contact")
    await expect(page.locator("#pop-deal-amount")).to_contain_text("150")
    await expect(page.locator("#pop-recent")).to_contain_text("sent offer")
    await expect(page.locator("#pop-tasks")).to_contain_text("Prepare the contract draft")
    await expect(page.locator("#pop-new")).to_be_hidden()

    # the call is answered, then ends; the pop follows it
    await expect(pop).to_have_attribute("data-state", "answered")
    await page.screenshot(path=POP_SCREENSHOT, full_page=False)
    await page.click("#pop-open")
    await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
    await expect(page.locator("#deal-title")).to_have_text("Supply contract")
    await expect(pop).to_have_attribute("data-state", "ended", timeout=15_000)

    # the pop was on screen, showing "ringing", before the recorded moment of the answer
    d = await diag(page)
    ringing = [e for e in d["log"] if e["type"] == "call.ringing"]
    answered = [e for e in d["log"] if e["type"] == "call.answered"]
    assert len(ringing) == 1 and len(answered) == 1, d["log"]
    linkedid = ringing[0]["linkedid"]
    assert answered[0]["linkedid"] == linkedid
    rendered_ms = d["rendered"][linkedid]
    answer_ms = datetime.fromisoformat(answered[0]["answered_at"]).timestamp() * 1000
    assert d["stateAtRender"][linkedid] == "ringing"
    assert rendered_ms < answered[0]["at"], "the pop showed only after the answer arrived"
    assert rendered_ms < answer_ms, (
        f"pop rendered {rendered_ms - answer_ms:.0f} ms after the recorded answer"
    )
    # with it, one ring sound and one desktop notification
    assert d["beeps"] == 1
    assert d["notifications"] == [{"title": "Incoming call", "body": "Ivan Petrov, Petrov & Sons"}]

    # after the end the call is in the timeline, newest first, with direction, status, talk time
    first = page.locator("#timeline .tl-item").first
    await expect(first).to_have_attribute("data-kind", "call")
    await expect(first).to_have_attribute("data-direction", "in")
    await expect(first).to_have_attribute("data-status", "answered")
    await expect(first).to_contain_text("Inbound call")
    await expect(first).to_contain_text("talk 0:08")  # 7.5 s as recorded
    await expect(page.locator("#timeline .tl-item")).to_have_count(2)  # and the older note
    await expect(page.locator("#calls li").first).to_contain_text("answered")
    async with sessions() as s:
        call = await s.scalar(select(Communication).where(Communication.kind == "call"))
        assert call is not None
        assert (call.client_id, call.deal_id, call.status) == (client_id, deal_id, "answered")
        assert call.external_id == linkedid


async def test_unknown_number_pops_a_new_card_that_survives_a_reload(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    pages: Contexts,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
    tmp_path: Path,
) -> None:
    await sign_in_at_desk(page, service, OPERATOR)
    # a second browser signed in earlier (a token in its storage) but with no page open yet
    fresh = await pages.page()
    await fresh.add_init_script(await _session_script(service, OPERATOR))
    # 89031234567 rings 101 (3.5 s as recorded): the recording is played up to the ring and held
    # there while the pages reload, whatever the machine's speed; the rest follows after
    ringing, rest = split_recording(
        "inbound_abandoned", "DialBegin", tmp_path, containing="Local/101@agent-phones"
    )
    await replay.play([ringing], speed=0, shift_to_now=True, renumber=True)
    pop = page.locator("#pop")
    await expect(page.locator("#pop-name")).to_have_text("+79031234567")
    await expect(page.locator("#pop-new")).to_be_visible()
    await expect(page.locator("#pop-new")).to_have_text("New client")
    await expect(pop).to_have_attribute("data-state", "ringing")
    # the card opens beside it, ready to fill in
    await expect(page.locator("#panel")).to_be_visible()
    await expect(page.locator("#client-name")).to_have_value("+79031234567")
    await expect(page.locator("#client-phones")).to_have_value("+79031234567")

    # a reload while it rings shows the pop again; so does a page opened only now
    await asyncio.gather(page.reload(), fresh.goto(service.url + "/operator"))
    for p in (page, fresh):
        await expect(p.locator("#pop-name")).to_have_text("+79031234567")
        await expect(p.locator("#pop-new")).to_be_visible()
    await expect(pop).to_have_attribute("data-state", "ringing")
    first_seen = [e for e in (await diag(fresh))["log"] if e["type"] == "call.ringing"]
    assert first_seen and first_seen[0]["replayed"]  # from the server's replay, not live
    # …and both follow the call to its end: the caller gave up
    await replay.play([rest], speed=0, resume=True)
    for p in (page, fresh):
        await expect(p.locator("#pop")).to_have_attribute("data-state", "ended")
        await expect(p.locator("#pop-state")).to_contain_text("abandoned")

    # the operator fills in the card from the pop
    await page.click("#pop-open")
    await expect(page.locator("#client-name")).to_have_value("+79031234567")
    await page.fill("#client-name", "Anna Smirnova")
    await page.fill("#client-company", "Romashka LLC")
    await page.fill("#client-emails", "anna@romashka.example")
    await page.fill("#client-phones", "+79031234567\n8 495 765-43-21")
    await page.fill("#client-notes", "Wants 40 chairs")
    await page.click("#client-save")
    await expect(page.locator("#client-status")).to_have_text("Saved")
    await expect(page.locator("#pop-name")).to_have_text("Anna Smirnova")
    # the missed call is in the timeline, and its callback task in the list
    await expect(page.locator("#timeline .tl-item[data-kind=call]")).to_have_attribute(
        "data-status", "abandoned"
    )
    # a shared record: written in DEFAULT_LOCALE (ru in the tests), whatever the page's language
    await expect(page.locator("#tasks")).to_contain_text("пропущенный звонок")
    async with sessions() as s:
        client = await s.scalar(
            select(Client).join(ClientPhone).where(ClientPhone.e164 == "+79031234567")
        )
        assert client is not None
        await s.refresh(client, ["phones", "emails"])
        assert (client.name, client.company, client.notes) == (
            "Anna Smirnova",
            "Romashka LLC",
            "Wants 40 chairs",
        )
        assert sorted(p.e164 for p in client.phones) == ["+74957654321", "+79031234567"]
        assert [e.email for e in client.emails] == ["anna@romashka.example"]


async def _card_of(sessions: async_sessionmaker[AsyncSession], phone: str) -> tuple[Client, Deal]:
    """The card a call opened for `phone`, and its one deal: both must exist."""
    async with sessions() as s:
        client = await s.scalar(select(Client).join(ClientPhone).where(ClientPhone.e164 == phone))
        assert client is not None
        deal = await s.scalar(select(Deal).where(Deal.client_id == client.id))
        assert deal is not None
    return client, deal


async def test_a_new_callers_pop_shows_at_once_and_fills_in_when_the_card_is_opened(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    db: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
) -> None:
    caller = "+79031234567"
    await sign_in_at_desk(page, service, OPERATOR)
    # another transaction holds the clients table: the card cannot be opened, the pop still comes
    async with db.connect() as blocker:
        await blocker.execute(text("LOCK TABLE clients IN EXCLUSIVE MODE"))
        await play(replay, "inbound_abandoned", speed=1)  # 89031234567 rings 101 for 3.5 s
        await expect(page.locator("#pop")).to_have_attribute("data-state", "ringing")
        await expect(page.locator("#pop-name")).to_have_text(caller)
        await expect(page.locator("#pop-new")).to_have_text("New caller")
        await expect(page.locator("#pop-deal")).to_have_text("Opening the card…")
        await expect(page.locator("#pop-open")).to_be_disabled()
        async with sessions() as s:
            assert await s.scalar(select(ClientPhone).where(ClientPhone.e164 == caller)) is None
        await blocker.rollback()

    # committed: the pop fills in with the new card and its deal, and the card opens beside it
    await expect(page.locator("#pop-new")).to_have_text("New client")
    await expect(page.locator("#pop-open")).to_be_enabled()
    await expect(page.locator("#client-name")).to_have_value(caller)
    client, deal = await _card_of(sessions, caller)
    await expect(page.locator("#pop-deal")).to_contain_text(deal.title)
    await expect(page.locator("#pop-phones")).to_have_text(caller)
    shown = json.loads(await page.evaluate(f"() => localStorage.getItem('crm_pop:{operator.id}')"))
    assert (shown["card"]["client"]["id"], shown["card"]["deal"]["id"]) == (client.id, deal.id)
    await expect(page.locator("#pop")).to_have_attribute("data-state", "ended")
    calls = [e["type"] for e in (await diag(page))["log"] if e["type"].startswith("call.")]
    assert calls == ["call.ringing", "call.card_opened", "call.ring_ended", "call.ended"]


async def test_a_new_callers_pop_says_when_its_card_cannot_be_opened_and_the_log_opens_it(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = "+79031234567"

    async def refused(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database refuses the card")

    monkeypatch.setattr(progress, "open_card", refused)  # the service runs in this process
    await sign_in_at_desk(page, service, OPERATOR)
    await play(replay, "inbound_abandoned", speed=1)  # 89031234567 rings 101 for 3.5 s
    # the pop stops waiting for the card: it says so, with the number and a new caller's badge
    await expect(page.locator("#pop-deal")).to_have_text(
        "The card could not be opened: the call is logged on a new card when it ends"
    )
    await expect(page.locator("#pop-name")).to_have_text(caller)
    await expect(page.locator("#pop-new")).to_have_text("New caller")
    await expect(page.locator("#pop-open")).to_be_disabled()
    # the call's log opens the card (an unknown number's): it opens beside the ended pop, and
    # the pop takes it, so that the call's result can be noted there
    await expect(page.locator("#pop")).to_have_attribute("data-state", "ended")
    await expect(page.locator("#client-name")).to_have_value(caller)
    client, deal = await _card_of(sessions, caller)
    async with sessions() as s:
        (logged,) = (await s.scalars(select(Communication))).all()
    assert (logged.client_id, logged.deal_id) == (client.id, deal.id)
    await expect(page.locator("#pop-deal")).to_contain_text(deal.title)
    await expect(page.locator("#pop-new")).to_have_text("New client")
    await expect(page.locator("#pop-phones")).to_have_text(caller)
    await expect(page.locator("#result-save")).to_be_enabled()
    await page.select_option("#result-select", "sent offer")
    await page.fill("#result-note", "Called about chairs")
    await page.click("#result-save")
    await expect(page.locator("#result-status")).to_have_text("Saved")
    async with sessions() as s:
        notes = (await s.scalars(select(Communication).where(Communication.kind == "note"))).all()
    assert [(n.client_id, n.deal_id) for n in notes] == [(client.id, deal.id)]
    calls = [e["type"] for e in (await diag(page))["log"] if e["type"].startswith("call.")]
    assert calls == ["call.ringing", "call.card_failed", "call.ring_ended", "call.ended"]


async def test_second_instance_delivers_the_pop_through_listen_notify(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    settings: Settings,
    ivan: tuple[int, int],
) -> None:
    async with second_container(settings) as other, live_service(other) as second:
        assert second.tracking.listener is None  # this one does not follow the PBX
        await sign_in_at_desk(page, second, OPERATOR)
        await ivan_calls(replay, page)
        await expect(page.locator("#pop-deal-stage")).to_have_text("First contact")
        await expect(page.locator("#pop")).to_have_attribute("data-state", "ended")
        d = await diag(page)
        # the user's channel also carries the agent's presence (the wrap-up after the answered
        # call, crm_core/presence); the call's own messages come in order, all three, live
        calls = [e for e in d["log"] if e["type"].startswith("call.")]
        assert [e["type"] for e in calls] == ["call.ringing", "call.answered", "call.ended"]
        assert not any(e["replayed"] for e in d["log"])  # live, not caught up later
        assert {e["type"] for e in d["log"]} <= {*(e["type"] for e in calls), "agent.presence"}


@pytest.mark.usefixtures("ivan", "signed_in")
async def test_dropped_socket_reconnects_and_gets_what_it_missed(
    service: LiveService, replay: ReplayServer, page: Page
) -> None:
    assert (await diag(page))["connects"] == 1

    # the network goes away and the socket with it; the call rings and ends meanwhile.
    # Chromium's offline mode does not always stop a new socket to 127.0.0.1, so every new
    # socket also goes through a gate that refuses it until the network is back.
    network = {"up": False}

    async def gate(ws: WebSocketRoute) -> None:
        if network["up"]:
            ws.connect_to_server()
        else:
            await ws.close(code=1011, reason="offline")

    await page.route_web_socket(re.compile(r"/ws(\?|$)"), gate)
    await page.context.set_offline(True)
    await page.evaluate("() => __crm.drop()")
    await expect(page.locator("#conn")).not_to_have_attribute("data-state", "open")
    await play(replay, "inbound_answered", speed=0)
    await settle(service, replay)
    await asyncio.sleep(0.5)  # a reconnect attempt or two fail while offline
    d = await diag(page)
    assert not d["connected"]
    assert not [e for e in d["log"] if e["type"].startswith("call.")]

    # back online: the page reconnects with its last seq and receives the missed events in order
    network["up"] = True
    await page.context.set_offline(False)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")
    await expect(page.locator("#pop")).to_have_attribute("data-state", "ended")
    d = await diag(page)
    calls = [e for e in d["log"] if e["type"].startswith("call.")]
    assert [e["type"] for e in calls] == ["call.ringing", "call.answered", "call.ended"]
    assert all(e["replayed"] for e in calls)
    assert d["beeps"] == 0  # the call it missed is over: nothing to ring for
    assert d["connects"] >= 2
    seqs = [e["seq"] for e in d["log"]]
    assert seqs == sorted(set(seqs))  # in order, none twice
    await expect(page.locator("#calls li")).to_have_count(1)


async def test_another_users_token_cannot_read_101s_events(
    service: LiveService,
    replay: ReplayServer,
    make_user: Any,
    operator: User,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, h102 = await make_user(role="operator", extension="102", login="op102")
    token102 = h102["Authorization"].removeprefix("Bearer ")
    # 102 asking for 101's phone is refused with 4403
    async with websockets.connect(f"{service.ws_url}?token={token102}&channels=ext:101") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    # a bad token is refused too
    async with websockets.connect(f"{service.ws_url}?token=nonsense") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    # and 102's own socket stays silent while 101's phone rings
    token101 = await _token(service, OPERATOR)
    async with (
        websockets.connect(f"{service.ws_url}?token={token102}") as ws102,
        websockets.connect(f"{service.ws_url}?token={token101}") as ws101,
    ):
        for ws in (ws101, ws102):
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert hello["type"] == "subscribed"
        await play(replay, "inbound_answered", speed=0)
        await settle(service, replay)
        got101 = await _until_fence(service, ws101, token101)
        got102 = await _until_fence(service, ws102, token102)
    calls101 = [m for m in got101 if str(m["type"]).startswith("call.")]
    # a new caller: the card follows the pop, unless the pop was read after it was committed
    types = [m["type"] for m in calls101]
    if "call.card_opened" in types:
        assert types == ["call.ringing", "call.card_opened", "call.answered", "call.ended"]
        assert calls101[0]["payload"]["new_caller"] is True
        assert calls101[1]["payload"]["card"]["client"]["id"] == calls101[1]["payload"]["client_id"]
    else:
        assert types == ["call.ringing", "call.answered", "call.ended"]
        assert calls101[0]["payload"]["card"]["client"]["id"] is not None
    assert all(m["channel"] == "ext:101" for m in calls101)
    # besides the call, 101's own channel says 101 is in wrap-up after answering it
    presence101 = [m for m in got101 if m["type"] == "agent.presence"]
    assert [(m["channel"], m["payload"]["user_id"]) for m in presence101] == [
        (f"user:{operator.id}", operator.id)
    ]
    assert presence101[0]["payload"]["state"] == "wrapup"
    assert len(got101) == len(calls101) + len(presence101)
    # 102 hears nothing of 101: neither the call nor 101's presence
    assert not [m for m in got102 if str(m.get("type", "")).startswith("call.")]
    assert not [m for m in got102 if m.get("type") == "agent.presence"]


@pytest.mark.usefixtures("ivan", "signed_in")
async def test_call_result_callback_and_stage_move_persist(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
    ivan: tuple[int, int],
) -> None:
    client_id, deal_id = ivan
    await ivan_calls(replay, page)

    # result: call back later, with a date -> a note with the formal result and a callback task
    await page.select_option("#result-select", "call back later")
    await expect(page.locator("#result-callback-at")).to_be_visible()
    await page.fill("#result-callback-at", "2031-03-04T15:30")
    await page.fill("#result-note", "Asked to call after the board meeting")
    await page.click("#result-save")
    await expect(page.locator("#result-status")).to_have_text("Saved")
    await expect(page.locator("#pop-tasks")).to_contain_text("Call back Ivan Petrov")

    # stage: from the deal panel
    await page.click("#pop-open")
    await expect(page.locator("#deal-stage")).to_have_value("2")
    await page.select_option("#deal-stage", label="Negotiation")
    await page.click("#deal-stage-save")
    await expect(page.locator("#deal-status")).to_have_text("Moved to Negotiation")
    await expect(page.locator("#pop-deal-stage")).to_have_text("Negotiation")
    await expect(page.locator("#timeline")).to_contain_text("Asked to call after the board meeting")
    await expect(page.locator("#tasks")).to_contain_text("Call back Ivan Petrov")
    await page.screenshot(path=WORKSPACE_SCREENSHOT, full_page=True)

    async with sessions() as s:
        note = await s.scalar(
            select(Communication).where(
                Communication.kind == "note", Communication.body.like("Asked to call%")
            )
        )
        assert note is not None
        assert (note.client_id, note.deal_id, note.user_id) == (client_id, deal_id, operator.id)
        assert note.extra == {"result": "call back later"}
        task = await s.scalar(
            select(Task).where(Task.client_id == client_id, Task.kind == "callback")
        )
        assert task is not None and not task.done
        assert task.title == "Call back Ivan Petrov" and task.assignee_id == operator.id
        # the page sent the operator's local wall time; the browser runs in this machine's zone
        expected = datetime(2031, 3, 4, 15, 30).astimezone(UTC)
        assert task.due_at == expected
        negotiation = await s.scalar(select(DealStage.id).where(DealStage.name == "Negotiation"))
        deal = await s.get(Deal, deal_id)
        assert deal is not None and deal.stage_id == negotiation
        move = await s.scalar(select(DealStageMove).where(DealStageMove.deal_id == deal_id))
        assert move is not None
        assert (move.from_stage_id, move.to_stage_id, move.user_id) == (2, negotiation, operator.id)

    # "deal won" closes the deal in the won stage
    await page.select_option("#result-select", "deal won")
    await page.click("#result-save")
    await expect(page.locator("#result-status")).to_have_text("Saved")
    await expect(page.locator("#deal-stage")).to_have_value(str(await stage_id(sessions, "Won")))
    async with sessions() as s:
        deal = await s.get(Deal, deal_id)
        assert deal is not None and deal.closed_at is not None


# ---------------------------------------------------------------------------------- helpers


async def _sign_in(live: LiveService, credentials: tuple[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.url) as http:
        res = await http.post(
            "/api/auth/token", data={"username": credentials[0], "password": credentials[1]}
        )
        res.raise_for_status()
        body: dict[str, Any] = res.json()
        return body


async def _token(live: LiveService, credentials: tuple[str, str]) -> str:
    return str((await _sign_in(live, credentials))["access_token"])


async def _session_script(live: LiveService, credentials: tuple[str, str]) -> str:
    """An init script putting a signed-in session (token, user; no seq yet) in localStorage."""
    body = await _sign_in(live, credentials)
    token, user = json.dumps(body["access_token"]), json.dumps(json.dumps(body["user"]))
    return f"localStorage.setItem('crm_token', {token}); localStorage.setItem('crm_user', {user});"


async def _until_fence(live: LiveService, ws: Any, token: str) -> list[dict[str, Any]]:
    """Everything `ws` got before a fence: its own person set to do-not-disturb over the API now.
    The hub delivers in one seq order, so whatever was published earlier for this socket has
    arrived before the fence's agent.presence (no waiting for a quiet spell)."""
    import httpx

    async with httpx.AsyncClient(base_url=live.url) as http:
        headers = {"Authorization": f"Bearer {token}"}
        res = await http.put("/api/presence/me", json={"state": "dnd"}, headers=headers)
    assert res.status_code == 200, res.text
    me = res.json()["user_id"]
    got = await drain(
        ws,
        until=lambda m: (
            m.get("type") == "agent.presence"
            and (m["payload"]["user_id"], m["payload"]["state"]) == (me, "dnd")
        ),
    )
    return got[:-1]


async def stage_id(sessions: async_sessionmaker[AsyncSession], name: str) -> int:
    async with sessions() as s:
        value = await s.scalar(select(DealStage.id).where(DealStage.name == name))
        assert value is not None
        return value


@pytest.mark.usefixtures("ivan", "signed_in")
async def test_next_pop_starts_a_clean_result_and_outbound_calls_are_named(
    service: LiveService, replay: ReplayServer, page: Page
) -> None:
    await ivan_calls(replay, page)
    # a result begun for Ivan and not saved ...
    await page.select_option("#result-select", "call back later")
    await page.fill("#result-note", "Meant for Ivan")
    await settle(service, replay)
    # ... is not carried over to the next caller's pop
    await play(replay, "inbound_abandoned", speed=0)
    await expect(page.locator("#pop-number")).to_have_text("+79031234567")
    await expect(page.locator("#result-note")).to_have_value("")
    await expect(page.locator("#result-select")).to_have_value("")
    await expect(page.locator("#result-callback-at")).to_be_hidden()
    await settle(service, replay)

    # a click-to-call this phone placed shows in the recent calls with the client and number
    await play(replay, "click_to_call", speed=0)
    await settle(service, replay)
    outbound = page.locator("#calls li").first
    await expect(outbound).to_contain_text("Ivan Petrov")
    await expect(outbound).to_contain_text("answered")
    await expect(page.locator("#calls")).not_to_contain_text("unknown")
    # and a recent call opens its client's card
    await outbound.click()
    await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")


@pytest.mark.usefixtures("ivan", "signed_in")
async def test_a_card_is_found_without_a_call(page: Page, ivan: tuple[int, int]) -> None:
    client_id, deal_id = ivan
    results = page.locator("#find-results li")
    # nothing typed: the clients this user is responsible for
    await page.click("[data-testid=find-submit]")
    await expect(results).to_have_count(1)
    await expect(results.first).to_contain_text("Ivan Petrov · Petrov & Sons")
    # by phone, in another written form than stored
    await page.fill("#find-q", "+7 (916) 123-45-67")
    await page.click("[data-testid=find-submit]")
    await expect(results).to_have_count(1)
    await expect(results.first).to_have_attribute("data-client-id", str(client_id))
    # by company; a click opens the card and its open deal
    await page.fill("#find-q", "petrov & sons")
    await page.click("[data-testid=find-submit]")
    await results.first.click()
    await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
    await expect(page.locator("#deal-id")).to_have_text(f"#{deal_id}")
    # nobody, and a number that cannot be one, are said plainly
    await page.fill("#find-q", "Nobody Such")
    await page.click("[data-testid=find-submit]")
    await expect(results).to_have_text(["nobody found"])
    await page.fill("#find-q", "12345")
    await page.click("[data-testid=find-submit]")
    await expect(results.first).to_have_class("error")


@pytest.mark.usefixtures("signed_in")
async def test_a_call_another_phone_answered_reads_so(
    service: LiveService, replay: ReplayServer, page: Page
) -> None:
    # 101 rings twice (router, then queue) and 102 answers
    await play(replay, "inbound_queue_second_answers", speed=0)
    await settle(service, replay)
    await expect(page.locator("#calls li").first).to_contain_text("answered by 102")
    await expect(page.locator("#pop-state")).to_have_text("Ended · answered by 102")


async def test_a_card_other_than_the_callers_says_so_while_the_call_is_on(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    ivan: tuple[int, int],
    tmp_path: Path,
) -> None:
    async with sessions() as s:
        s.add(Client(name="Olga Other", kind="person", readiness=0, notes=""))
        await s.commit()
    await sign_in_at_desk(page, service, OPERATOR)
    # Ivan's call, answered and still going on
    head, _ = split_recording("inbound_answered", "BridgeEnter", tmp_path)
    await replay.play([head], speed=0)
    await expect(page.locator("#pop-state")).to_have_text("On the call")
    await page.click("#pop-open")
    await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
    await expect(page.locator("#panel-other")).to_be_hidden()
    # another card opened meanwhile is marked, and one click goes back to the caller's
    await page.fill("#find-q", "Olga Other")
    await page.click("[data-testid=find-submit]")
    await page.locator("#find-results li").first.click()
    await expect(page.locator("#client-name")).to_have_value("Olga Other")
    await expect(page.locator("#panel-other")).to_contain_text("On the line: Ivan Petrov")
    await page.click("#panel-other-open")
    await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
    await expect(page.locator("#panel-other")).to_be_hidden()
