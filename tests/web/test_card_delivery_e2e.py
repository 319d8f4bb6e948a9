"""A failed email on the card reads as a reason in the user's language, never as a raw socket
error (`[Errno 111] Connect call failed`): the server writes a code, the page translates it.
A failure heard on the socket before the request's own answer (email, click-to-call) stays shown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from crm_core.users.models import User
from notifier.settings import NotifierSettings
from telephony.testing.replay import ReplayServer
from tests.ports import free_port
from tests.web.conftest import OPERATOR
from tests.web.live import (
    LiveService,
    chromium_available,
    fresh_contexts,
    sign_in_at_desk,
)
from tests.web.test_operator_e2e import seed_ivan
from tests.web.test_pages_e2e import play_and_settle
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Browser, Page, Route, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")

LAPTOP = {"width": 1366, "height": 768}
NOT_SENT_RU = "Не отправлено на ivan@petrov.example: почтовый сервер недоступен (SMTP_HOST)"


@pytest.fixture
def ready_before_service(settings: Settings, operator: User) -> None:
    """Olga exists; email goes to a port where nobody listens (connection refused)."""
    settings.notifier = NotifierSettings(
        TWILIO_ACCOUNT_SID="", SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), OUTBOX_MAX_ATTEMPTS=1
    )


@contextlib.asynccontextmanager
async def ivans_card(
    service: LiveService, replay: ReplayServer, browser: Browser
) -> AsyncIterator[Page]:
    """Olga at her desk in Russian, Ivan's card open from the pop of his call."""
    async with fresh_contexts(browser, viewport=LAPTOP, timeout_ms=15_000) as pages:
        page = await pages.page(locale="ru-RU")
        await sign_in_at_desk(page, service, OPERATOR)
        await play_and_settle(service, replay, "inbound_answered")
        await page.click("#pop-open")
        await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
        yield page


async def email_ivan(page: Page) -> None:
    await page.fill("#email-subject", "Offer")
    await page.fill("#email-body", "Dear Ivan")
    await page.click("#email-send")


async def test_an_unreachable_mail_server_reads_as_a_translated_reason(
    service: LiveService,
    replay: ReplayServer,
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
) -> None:
    client_id, _ = await seed_ivan(sessions, operator)
    async with ivans_card(service, replay, browser) as page:
        await email_ivan(page)
        status = page.locator("#message-status")
        await expect(status).to_have_text(NOT_SENT_RU)
        await expect(status).to_have_class("status error")
    async with sessions() as s:
        email = await s.scalar(select(Communication).where(Communication.kind == "email"))
    assert email is not None and email.client_id == client_id and email.status == "failed"
    assert str(email.extra["error"]).startswith("email.unreachable: the mail server 127.0.0.1:")


async def test_a_failure_heard_before_the_sends_answer_is_not_covered_by_queued(
    service: LiveService,
    replay: ReplayServer,
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
) -> None:
    """The outbox can fail (and the socket say so) before the POST's 202 reaches the page, as
    seen in CI: the late answer must not replace the failure with "queued"."""
    await seed_ivan(sessions, operator)
    async with ivans_card(service, replay, browser) as page:
        held: asyncio.Queue[Route] = asyncio.Queue()
        await page.route("**/api/clients/*/email", held.put_nowait)
        await email_ivan(page)
        send = await held.get()
        answer = await send.fetch()  # the server queued it; the page has not heard yet
        assert answer.status == 202
        status = page.locator("#message-status")
        await expect(status).to_have_text(NOT_SENT_RU)
        await send.fulfill(response=answer)
        # the page handled the answer: it cleared the form right after setting its status
        await expect(page.locator("#email-subject")).to_have_value("")
        await expect(status).to_have_text(NOT_SENT_RU)
        await expect(status).to_have_class("status error")


async def test_a_refused_click_to_call_heard_before_its_answer_stays_shown(
    service: LiveService,
    replay: ReplayServer,
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
) -> None:
    """The PBX refuses the Originate and `originate.failed` reaches the page before the 202 of
    `POST /api/calls/originate`: the late answer must not say "ringing your phone"."""
    await seed_ivan(sessions, operator)
    async with ivans_card(service, replay, browser) as page:
        replay.originate_response = "Failure"
        held: asyncio.Queue[Route] = asyncio.Queue()
        await page.route("**/api/calls/originate", held.put_nowait)
        call = page.locator("#client-call")
        await call.click()
        send = await held.get()
        await expect(call).to_be_disabled()  # no second call while this one is being placed
        answer = await send.fetch()
        assert answer.status == 202
        status = page.locator("#client-status")
        await expect(status).to_contain_text("Звонок не удался")
        await send.fulfill(response=answer)
        await expect(call).to_be_enabled()  # the page handled the answer
        await expect(status).to_contain_text("Звонок не удался")
        await expect(status).to_have_class("status error")
    assert [a["Exten"] for a in replay.originates] == ["79161234567"]
