"""The demo's stand-ins: email and SMS sent from a card go, through the real outbox worker and
the real SMTP and Twilio clients, to the demo's mailbox and Twilio stand-in, and are listed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from tests.conftest import UserFactory
from tests.ports import free_port
from tests.web.live import live_service
from web.container import Container
from web.demo import DEMO_USERS, demo_info, login_box, mount_demo, use_stand_ins
from web.demo_sinks import DemoOutbox, SmtpSink
from web.settings import Settings

pytestmark = pytest.mark.usefixtures("db")


async def test_email_and_sms_from_a_card_reach_the_demos_stand_ins(
    settings: Settings,
    db: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
) -> None:
    outbox = DemoOutbox()
    sink = SmtpSink(outbox)
    await sink.start()
    port = free_port()
    settings.web.http_port = port
    use_stand_ins(settings, sink)
    c = Container(
        settings=settings, database_url=settings.core.database_url, engine=db, sessions=sessions
    )
    try:
        async with live_service(c, port=port) as service:
            mount_demo(service.app, outbox, demo_info(settings, sink, "replay"))
            _, h = await make_user(role="manager")
            async with httpx.AsyncClient(base_url=service.url) as api:
                # public: the sign-in page shows the log-ins before anyone signs in
                info = (await api.get("/api/demo/info")).json()
                assert [(x["login"], x["password"], x["role"]) for x in info["logins"]] == [
                    (login, password, role) for login, password, role, _, _ in DEMO_USERS
                ]
                assert info["messages_url"] == "/api/demo/messages"
                assert info["smtp"] == f"127.0.0.1:{sink.port}"
                # the card knows before Send that both work
                channels = (await api.get("/api/messages/channels", headers=h)).json()
                assert channels["sms"]["available"] and channels["email"]["available"]
                card = await api.post(
                    "/api/clients",
                    json={
                        "name": "Ivan",
                        "phones": ["+7 916 123-45-67"],
                        "emails": ["ivan@example.com"],
                    },
                    headers=h,
                )
                cid = card.json()["id"]
                sms = await api.post(f"/api/clients/{cid}/sms", json={"text": "Hi"}, headers=h)
                email = await api.post(
                    f"/api/clients/{cid}/email",
                    json={"subject": "Offer", "body": "Our offer"},
                    headers=h,
                )
                assert (sms.status_code, email.status_code) == (202, 202), sms.text + email.text
                async with asyncio.timeout(20):
                    while True:
                        sent = (await api.get("/api/demo/messages")).json()
                        if sent["emails"] and sent["sms"]:
                            break
                        await asyncio.sleep(0.1)
                    # the worker records "sent"; the stand-in then reports the SMS delivered
                    # through the real, signed status webhook, as Twilio does
                    while True:
                        async with sessions() as s:
                            statuses = {
                                x.kind: x.status for x in await s.scalars(select(Communication))
                            }
                        if statuses == {"sms": "delivered", "email": "sent"}:
                            break
                        await asyncio.sleep(0.1)
    finally:
        await sink.stop()
    [mail] = sent["emails"]
    assert mail["to"] == ["ivan@example.com"] and mail["subject"] == "Offer"
    assert mail["body"].strip() == "Our offer"
    [text] = sent["sms"]
    assert (text["to"], text["body"]) == ("+79161234567", "Hi")
    assert text["sender"] == settings.notifier.twilio_from_number


async def test_the_demo_routes_are_not_there_outside_the_demo(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/demo/info")).status_code == 404
    assert (await api.get("/api/demo/messages")).status_code == 404


async def test_channels_say_what_is_not_configured(
    api: httpx.AsyncClient, make_user: UserFactory, settings: Settings
) -> None:
    settings.notifier.smtp_host = ""
    settings.notifier.twilio_account_sid = ""
    _, h = await make_user(role="operator")
    assert (await api.get("/api/messages/channels")).status_code == 401
    body = (await api.get("/api/messages/channels", headers=h)).json()
    assert body["sms"] == {
        "available": False,
        "reason": "not_configured",
        "settings": ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"],
    }
    assert body["email"] == {
        "available": False,
        "reason": "not_configured",
        "settings": ["SMTP_HOST"],
    }


def test_the_log_ins_are_boxed_with_the_address() -> None:
    info = demo_info(Settings(), SmtpSink(DemoOutbox()), "replay")
    box = login_box("http://127.0.0.1:8000", info, "A replayed PBX.").splitlines()
    assert box[0] == box[-1] and set(box[0]) == {"+", "-"}
    assert all(line.startswith("| ") and line.endswith(" |") for line in box[1:-1])
    assert len({len(line) for line in box}) == 1
    text = "\n".join(box)
    for login, password, *_ in DEMO_USERS:
        assert f"{login} " in text and f"password {password} " in text
    assert "http://127.0.0.1:8000/api/demo/messages" in text


async def test_the_sign_in_page_shows_the_demos_log_ins(
    container: Container, settings: Settings, browser: Any
) -> None:
    """The real demo's /api/demo/info feeds the sign-in page's banner (the shell's)."""
    sink = SmtpSink(DemoOutbox())
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    page = await context.new_page()
    try:
        async with live_service(container) as live:
            mount_demo(live.app, DemoOutbox(), demo_info(settings, sink, "replay"))
            await page.goto(live.url + "/")
            banner = page.get_by_test_id("demo-banner")
            await expect(banner.locator("li")).to_have_count(len(DEMO_USERS))
            for login, password, *_ in DEMO_USERS:
                await expect(banner.locator(f'li[data-login="{login}"]')).to_contain_text(password)
            await page.click("[data-testid=demo-use-admin]")
            await expect(page.locator("#login")).to_have_value("admin")
    finally:
        await context.close()
