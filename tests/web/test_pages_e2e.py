"""The supervisors' board, the schedules page and the card's SMS/email forms, in a real browser.

Real uvicorn on an ephemeral port, real AMI replay, Debian's headless Chromium: people sign in
through the pages, click the pages' own controls, and the tests look at what the page shows and
at the rows in the database. No JavaScript error may happen on any page.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from crm_core.messaging.models import OutboxMessage
from crm_core.schedules.models import ScheduleException, ScheduleInterval
from crm_core.users.models import User
from notifier.settings import NotifierSettings
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.mailbox import Mailbox
from tests.ports import free_port
from tests.telephony.helpers import AMI_DIR, split_recording
from tests.telephony.pbx import settle_pipeline
from tests.web.conftest import OPERATOR, signing_in_as
from tests.web.live import (
    Contexts,
    LiveService,
    change_storage,
    chromium_available,
    live_service,
    sign_in,
    sign_in_at_desk,
    with_ami,
)
from tests.web.test_operator_e2e import seed_ivan
from web.container import Container
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, expect  # noqa: E402

SUPERVISOR = ("sup1", "pw-sup")
MANAGER = ("mgr102", "pw-102")
ABANDONED_CALLER = "+79031234567"  # inbound_abandoned.ami: rings 101 for 3.5 s, nobody answers
MOSCOW = ZoneInfo("Europe/Moscow")


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture
async def supervisor(make_user: UserFactory) -> User:
    return await signing_in_as(
        make_user, SUPERVISOR, role="supervisor", full_name="Sofia Supervisor"
    )


@pytest.fixture
async def manager(make_user: UserFactory) -> User:
    return await signing_in_as(
        make_user,
        MANAGER,
        role="manager",
        extension="102",
        full_name="Mark Manager",
        timezone="Europe/Moscow",
    )


# ---------------------------------------------------------------------------------- helpers


async def sign_in_on_schedules(page: Page, live: LiveService, credentials: tuple[str, str]) -> None:
    """Through the schedules page's own sign-in form (a browser with no token yet)."""
    await page.goto(live.url + "/schedules")
    await page.fill("#login-user", credentials[0])
    await page.fill("#login-password", credentials[1])
    await page.click("[data-testid=login-submit]")


async def play_and_settle(
    live: LiveService, replay: ReplayServer, name: str | Path, *, resume: bool = False
) -> None:
    """Play a recording (by name, or a file) as fast as possible, moved to now with new ids;
    wait until it is all in. `resume`: the second half of a split recording (the first half's
    time shift and ids)."""
    path = name if isinstance(name, Path) else AMI_DIR / f"{name}.ami"
    await replay.play([path], speed=0, resume=resume)
    await asyncio.wait_for(replay.wait_played(), 30)
    assert live.tracking.pipeline is not None
    await settle_pipeline(replay, live.tracking.pipeline)


async def always_on_duty(sessions: async_sessionmaker[AsyncSession], user: User) -> None:
    async with sessions() as s:
        for day in range(7):
            s.add(
                ScheduleInterval(user_id=user.id, weekday=day, start_time=time(0), end_time=time(0))
            )
        await s.commit()


async def schedule_rows(
    sessions: async_sessionmaker[AsyncSession], user: User
) -> tuple[list[tuple[int, time, time]], list[tuple[str, date, date]]]:
    async with sessions() as s:
        intervals = (
            await s.execute(
                select(
                    ScheduleInterval.weekday, ScheduleInterval.start_time, ScheduleInterval.end_time
                )
                .where(ScheduleInterval.user_id == user.id)
                .order_by(ScheduleInterval.weekday)
            )
        ).all()
        exceptions = (
            await s.execute(
                select(
                    ScheduleException.kind,
                    ScheduleException.start_date,
                    ScheduleException.end_date,
                ).where(ScheduleException.user_id == user.id)
            )
        ).all()
    return [tuple(r) for r in intervals], [tuple(r) for r in exceptions]  # type: ignore[misc]


# ---------------------------------------------------------------------------------- the board


async def test_supervisor_board_shows_calls_agents_today_and_report(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    pages: Contexts,
    sessions: async_sessionmaker[AsyncSession],
    supervisor: User,
    operator: User,
) -> None:
    await always_on_duty(sessions, operator)
    with_ami(settings, replay)
    async with live_service(container) as live:
        board = await pages.page()
        await sign_in(board, live, SUPERVISOR, "/dashboard")
        agent = board.locator('#agents tr[data-ext="101"]')
        await expect(agent).to_contain_text("Olga Operator")
        await expect(agent.locator("td").nth(2)).to_have_text("free")
        await expect(board.locator("#missed li")).to_have_count(0)

        await play_and_settle(live, replay, "inbound_abandoned")
        await play_and_settle(live, replay, "inbound_answered")

        # the board follows (the supervisors' channel, or its poll): the missed caller, who rang
        missed = board.locator("#missed li")
        await expect(missed).to_have_count(1)
        await expect(missed).to_contain_text(ABANDONED_CALLER)
        await expect(missed).to_contain_text("rang 101")
        # the calls are over: 101 is free again, nothing in progress, nobody waiting
        await expect(agent.locator("td").nth(2)).to_have_text("free")
        await expect(board.locator("#n-calls")).to_have_text("(0)")
        await expect(board.locator("#n-queue")).to_have_text("(0)")
        # today per manager: Olga took the answered call (7.5 s of talk), and the missed one
        # rang her phone: it counts for her (issue 16), not for nobody
        olga = board.locator("#today tr", has_text="Olga Operator")
        await expect(olga).to_have_count(1)
        cells = olga.locator("td")
        await expect(cells.nth(1)).to_have_text("2")  # in
        await expect(cells.nth(2)).to_have_text("0")  # out
        await expect(cells.nth(3)).to_have_text("1")  # answered
        await expect(cells.nth(4)).to_have_text("1")  # missed
        await expect(cells.nth(5)).to_have_text("0:08")  # talk

        # the report for today, through the date range controls
        today = datetime.now(MOSCOW).date().isoformat()
        await board.fill("#rep-from", today)
        await board.fill("#rep-to", today)
        await board.click("#rep-load")
        report = board.locator("#report tr")
        await expect(report.filter(has_text="Olga Operator")).to_have_count(1)
        await expect(report.filter(has_text="Team")).to_have_count(1)
        olga_report = report.filter(has_text="Olga Operator").locator("td")
        await expect(olga_report.nth(1)).to_have_text("2")  # calls in (the missed one rang her)
        await expect(board.locator("#report-period")).to_contain_text("Period:")
        # a range with nothing in it empties the table
        await board.fill("#rep-from", "2020-01-01")
        await board.fill("#rep-to", "2020-01-02")
        await board.click("#rep-load")
        await expect(report.filter(has_text="Olga Operator")).to_have_count(0)
        # a reversed range is refused, and the page says so instead of showing stale figures
        await board.fill("#rep-from", "2020-01-05")
        await board.click("#rep-load")
        await expect(board.locator("#report-error")).to_have_text("date_to is before date_from")
        await expect(board.locator("#report tr")).to_have_count(0)
        await expect(board.locator("#report-period")).to_have_text("")
        # signed in, the sign-in page sends a supervisor back to the board
        await board.goto(live.url + "/")
        await board.wait_for_url("**/dashboard")

        async with sessions() as s:
            calls = (
                await s.scalars(select(Communication).where(Communication.kind == "call"))
            ).all()
        assert sorted(c.status for c in calls) == ["abandoned", "answered"]
        answered = next(c for c in calls if c.status == "answered")
        assert answered.user_id == operator.id

        # an operator is refused the board
        op = await pages.page()
        await sign_in(op, live, OPERATOR, "/operator")
        await op.goto(live.url + "/dashboard")
        await expect(op.locator("body")).to_contain_text("Supervisors only.")
        await expect(op.locator("#agents")).to_have_count(0)
        await op.click("text=Back to your workspace")
        await op.wait_for_url("**/operator")
        # the workspace started (its socket is up): clearing the storage under a page still
        # starting would send it to "/" (no token) in the middle of the next navigation
        await expect(op.locator("#conn")).to_have_attribute("data-state", "open")
        # and signed out, the schedules page shows its sign-in form and nothing of the app
        await op.evaluate("localStorage.clear()")
        await op.goto(live.url + "/schedules")
        await expect(op.locator("#login")).to_be_visible()
        await expect(op.locator("#app")).to_be_hidden()


async def test_board_shows_who_waits_in_the_asterisk_queue(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    pages: Contexts,
    supervisor: User,
    tmp_path: Path,
) -> None:
    with_ami(settings, replay)
    head, tail = split_recording("inbound_missed_queue", "QueueCallerJoin", tmp_path)
    async with live_service(container) as live:
        board = await pages.page()
        await sign_in(board, live, SUPERVISOR, "/dashboard")
        await expect(board.locator("#n-queue")).to_have_text("(0)")
        await play_and_settle(live, replay, head)
        waiting = board.locator("#queue li")
        await expect(waiting).to_have_count(1)
        await expect(waiting).to_contain_text("+74957654321")
        await expect(waiting).to_contain_text("in queue sales #1")
        await expect(board.locator("#n-queue")).to_have_text("(1)")
        await play_and_settle(live, replay, tail, resume=True)
        await expect(board.locator("#n-queue")).to_have_text("(0)")
        await expect(board.locator("#missed li")).to_contain_text("+74957654321")


# ---------------------------------------------------------------------------------- schedules


async def test_signing_in_on_any_page_lands_each_user_on_their_page(
    container: Container, pages: Contexts, supervisor: User
) -> None:
    """The schedules page has its own sign-in; after it, the other pages know who it is (they
    bounced between `/` and `/operator` for ever when only the token was kept)."""
    async with live_service(container) as live:
        page = await pages.page()
        await sign_in_on_schedules(page, live, SUPERVISOR)
        await expect(page.locator("#me")).to_contain_text("Sofia Supervisor")
        await page.click("text=Workspace")
        await page.wait_for_url("**/operator")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        await page.goto(live.url + "/")
        await page.wait_for_url("**/dashboard")
        # a token whose user the page does not know yet: asked, then the right page
        await change_storage(page, live, "localStorage.removeItem('crm_user')")
        await page.goto(live.url + "/")
        await page.wait_for_url("**/dashboard")
        # a token the server no longer takes: forgotten, and the sign-in form shows
        await change_storage(
            page,
            live,
            "localStorage.setItem('crm_token', 'stale'); localStorage.removeItem('crm_user')",
        )
        await page.goto(live.url + "/")
        await expect(page.locator("#login-form")).to_be_visible()
        assert await page.evaluate("localStorage.getItem('crm_token')") is None


async def test_supervisor_edits_a_schedule_and_the_status_follows(
    container: Container,
    pages: Contexts,
    sessions: async_sessionmaker[AsyncSession],
    supervisor: User,
    manager: User,
) -> None:
    async with live_service(container) as live:
        page = await pages.page()
        await sign_in(page, live, SUPERVISOR, "/dashboard")
        await page.goto(live.url + "/schedules")
        await expect(page.locator("#me")).to_have_text("Sofia Supervisor (supervisor)")
        row = page.locator(f'tr[data-testid=status-row][data-user-id="{manager.id}"]')
        await expect(row.locator("td").nth(2)).to_have_text("no")  # no schedule yet
        await expect(page.locator("#next")).to_have_text(
            "Nobody is on duty and free: calls go to the queue."
        )

        # open Mark's schedule from the status table; a shift every day, all day long
        await row.click()
        await expect(page.locator("#editor-name")).to_have_text("Mark Manager")
        await expect(page.locator("#tz")).to_have_value("Europe/Moscow")
        for day in range(7):
            await page.click(f"[data-testid=add-interval-{day}]")
        await expect(page.locator("[data-testid=interval]")).to_have_count(7)
        for field in ("interval-start", "interval-end"):
            inputs = page.locator(f"[data-testid={field}]")
            for i in range(7):
                await inputs.nth(i).fill("00:00")
        # and a vacation next summer
        await page.click("#add-exception")
        exc = page.locator("[data-testid=exception]")
        await exc.locator("[data-testid=exception-kind]").select_option("vacation")
        await exc.locator("[data-testid=exception-start-date]").fill("2031-07-01")
        await exc.locator("[data-testid=exception-end-date]").fill("2031-07-14")
        await page.click("#save")
        await expect(page.locator("#save-result")).to_have_text("Saved.")

        intervals, exceptions = await schedule_rows(sessions, manager)
        assert intervals == [(d, time(0), time(0)) for d in range(7)]
        assert exceptions == [("vacation", date(2031, 7, 1), date(2031, 7, 14))]
        await expect(row.locator("td").nth(2)).to_have_text("yes")
        await expect(row.locator("td").nth(3)).to_have_text("free")
        await expect(row.locator("td").nth(4)).to_have_text("1")
        await expect(page.locator("#next")).to_have_text(
            "Next round-robin call rings Mark Manager (102)."
        )

        # the vacation moved to today (Mark's day, in Moscow): off duty now
        today = datetime.now(MOSCOW).date()
        await exc.locator("[data-testid=exception-start-date]").fill(today.isoformat())
        await exc.locator("[data-testid=exception-end-date]").fill(today.isoformat())
        await page.click("#save")
        await expect(page.locator("#save-result")).to_have_text("Saved.")
        await expect(row.locator("td").nth(2)).to_have_text("no")
        await expect(page.locator("#next")).to_have_text(
            "Nobody is on duty and free: calls go to the queue."
        )
        intervals, exceptions = await schedule_rows(sessions, manager)
        assert len(intervals) == 7
        assert exceptions == [("vacation", today, today)]


async def test_manager_sees_the_status_but_may_not_save(
    container: Container,
    pages: Contexts,
    sessions: async_sessionmaker[AsyncSession],
    supervisor: User,
    manager: User,
    operator: User,
) -> None:
    await always_on_duty(sessions, operator)
    before = await schedule_rows(sessions, manager)
    async with live_service(container) as live:
        # the schedules page's own sign-in form (no token in this browser yet)
        page = await pages.page()
        await sign_in_on_schedules(page, live, MANAGER)
        await expect(page.locator("#me")).to_have_text("Mark Manager (manager)")

        # the status: Olga on duty and next in turn, Mark not on duty
        olga = page.locator(f'tr[data-testid=status-row][data-user-id="{operator.id}"]')
        mark = page.locator(f'tr[data-testid=status-row][data-user-id="{manager.id}"]')
        await expect(olga.locator("td").nth(2)).to_have_text("yes")
        await expect(mark.locator("td").nth(2)).to_have_text("no")
        await expect(page.locator("#next")).to_have_text(
            "Next round-robin call rings Olga Operator (101)."
        )

        # Olga's schedule is not his to read: her row opens nothing, the list offers him alone
        await olga.click()
        await expect(page.locator("#editor")).to_be_hidden()
        await expect(page.locator("#user-select option")).to_have_count(2)  # "choose" and him

        # his own schedule is read-only for him
        await mark.click()
        await expect(page.locator("#editor-name")).to_have_text("Mark Manager")
        await expect(page.locator("#readonly")).to_be_visible()
        await expect(page.locator("#save")).to_be_hidden()
        await expect(page.locator("#add-exception")).to_be_hidden()

        # a save that still reaches the server (a stale page) is refused, and the page says so
        await page.evaluate("() => { document.getElementById('save').hidden = false; }")
        await page.click("#save")
        await expect(page.locator("#save-result")).to_have_text(
            "Not saved: role 'manager' may not do this (allowed: supervisor, admin)"
        )
        await expect(page.locator("#save-result")).to_have_class("error")
    assert await schedule_rows(sessions, manager) == before


# ---------------------------------------------------------------------------------- SMS / email


async def test_card_sends_email_and_says_sms_is_not_configured_before_send(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    mailbox: Mailbox,
    pages: Contexts,
    sessions: async_sessionmaker[AsyncSession],
    operator: User,
) -> None:
    # email through a local SMTP server; no Twilio credentials: SMS is not configured
    settings.notifier = NotifierSettings(
        TWILIO_ACCOUNT_SID="",
        TWILIO_AUTH_TOKEN="",
        TWILIO_FROM_NUMBER="",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=mailbox.port,
        SMTP_FROM="crm@sales.example.com",
        # and our own SMTP server, taking mail for sales.example.com (SMTP_FROM's domain)
        INBOUND_SMTP_ENABLED=True,
        INBOUND_SMTP_PORT=free_port(),
    )
    with_ami(settings, replay)
    client_id, deal_id = await seed_ivan(sessions, operator)
    async with live_service(container) as live:
        page = await pages.page()
        await sign_in_at_desk(page, live, OPERATOR)
        await play_and_settle(live, replay, "inbound_answered")
        await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")
        await page.click("#pop-open")
        await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
        status = page.locator("#message-status")

        # SMS: known before Send (GET /api/messages/channels): the button is off, a note says
        # why and what would configure it; nothing is written
        await page.fill("#sms-text", "Your offer is ready")
        await expect(page.locator("#sms-send")).to_be_disabled()
        await expect(page.get_by_test_id("sms-unavailable")).to_contain_text(
            "SMS is not configured here (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER)"
        )
        await expect(page.locator("#email-send")).to_be_enabled()
        await expect(page.get_by_test_id("email-unavailable")).to_have_count(0)
        async with sessions() as s:
            assert (
                await s.scalar(
                    select(func.count())
                    .select_from(Communication)
                    .where(Communication.kind == "sms")
                )
                == 0
            )
            assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 0

        # email: queued, the form clears, the outbox worker delivers it, the timeline says sent
        await page.fill("#email-subject", "Offer for chairs")
        await page.fill("#email-body", "Dear Ivan,\nthe price list is attached.")
        await page.click("#email-send")
        await expect(status).to_have_text("Email to ivan@petrov.example queued")
        await expect(status).not_to_have_class("status error")
        await expect(page.locator("#email-subject")).to_have_value("")
        await asyncio.wait_for(mailbox.arrived.wait(), 15)
        [(_, mail)] = mailbox.messages
        assert mail["Subject"] == "Offer for chairs"
        assert mail["To"] == "ivan@petrov.example"
        assert "the price list is attached" in mail.get_content()
        email_item = page.locator("#timeline .tl-item[data-kind=email]")
        await expect(email_item).to_have_attribute("data-status", "sent")
        await expect(email_item).to_contain_text("Offer for chairs")
        await expect(email_item.locator("[data-testid=unverified]")).to_have_count(0)

        # a reply claiming to be Ivan's, handed to our port directly (no relay vouches for it):
        # on his card all the same, marked, and the operator's notice says so
        reply = EmailMessage()
        reply["From"] = "Ivan Petrov <ivan@petrov.example>"
        reply["To"] = "crm@sales.example.com"
        reply["Subject"] = "Re: Offer for chairs"
        reply.set_content("Please send the invoice to my new account.")
        await aiosmtplib.send(
            reply,
            hostname="127.0.0.1",
            port=settings.notifier.inbound_smtp_port,
            timeout=10,
        )
        received = page.locator("#timeline .tl-item[data-kind=email][data-direction=in]")
        await expect(received).to_contain_text("Re: Offer for chairs")
        await expect(received.locator("[data-testid=unverified]")).to_have_text("unverified sender")
        await expect(status).to_contain_text("(unverified sender)")

        async with sessions() as s:
            email = await s.scalar(
                select(Communication).where(
                    Communication.kind == "email", Communication.direction == "out"
                )
            )
            assert email is not None
            assert (email.client_id, email.deal_id, email.user_id) == (
                client_id,
                deal_id,
                operator.id,
            )
            assert (email.direction, email.status, email.subject) == (
                "out",
                "sent",
                "Offer for chairs",
            )
            assert mail["Message-ID"] == email.external_id
            [row] = (await s.scalars(select(OutboxMessage))).all()
            assert (row.kind, row.state, row.communication_id) == ("email", "done", email.id)
