"""/tasks in a real browser, as an operator in Russian and a manager in English: create a task,
reschedule it by dragging it to another day, mark it done, a reminder pops at its time (once),
a missed call appears with its tries and "Call back" sends the Originate the PBX receives."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.models_common import utcnow
from crm_core.tasks.models import Task
from crm_core.users.models import User
from notifier.settings import NotifierSettings
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.web.live import live_service, open_signed_in, with_ami
from tests.web.test_tasks_api import _log_missed
from web.container import Container
from web.settings import Settings

COMPANY_TZ = "Europe/Moscow"  # DEFAULT_TIMEZONE: the pages' calendar is in it

TEXT = {
    "ru": {"title": "Мой ежедневник", "tries": "2 попытки", "reminder": "Напоминание: "},
    "en": {"title": "My agenda", "tries": "2 tries", "reminder": "Reminder: "},
}


async def _wait_for(check: Any, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(("role", "locale"), [("operator", "ru"), ("manager", "en")])
async def test_agenda_walkthrough(
    role: str,
    locale: str,
    settings: Settings,
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    replay: ReplayServer,
    page: Any,
) -> None:
    settings.notifier = NotifierSettings(
        SMTP_HOST="", OUTBOX_ENABLED=False, REMINDER_POLL_SECONDS=0.2
    )
    with_ami(settings, replay)
    user, h = await make_user(role=role, extension="101", locale=locale, timezone=COMPANY_TZ)
    async with live_service(container) as live:
        await page.context.grant_permissions(["notifications"], origin=live.url)
        await open_signed_in(page, live, h, "/tasks")
        await page.wait_for_selector("body[data-ready=yes]")
        await page.wait_for_selector("#conn[data-state=open]")
        assert await page.inner_text("main h2") == TEXT[locale]["title"]

        # create: tomorrow 12:00 in the company's zone, through the form (tomorrow: its
        # reminder at 11:45 lies ahead at any hour the test runs, so it never pops here)
        zone = ZoneInfo(COMPANY_TZ)
        today = utcnow().astimezone(zone).date()
        day = today + timedelta(days=1)
        await page.fill("#nt-title", f"Call Ivan ({locale})")
        await page.select_option("#nt-kind", "meeting")
        await page.select_option("#nt-contact", "visit")
        await page.fill("#nt-goal", "sign the contract")
        await page.fill("#nt-due", f"{day.isoformat()}T12:00")
        await page.select_option("#nt-remind", "15")
        await page.click("[data-testid=nt-save]")
        await page.wait_for_selector("#nt-status:not([hidden])")
        async with sessions() as s:
            task = await s.scalar(select(Task).where(Task.title == f"Call Ivan ({locale})"))
        assert task is not None
        noon = datetime.combine(day, time(12, 0), tzinfo=zone)
        assert (task.assignee_id, task.kind, task.contact_type, task.goal) == (
            user.id,
            "meeting",
            "visit",
            "sign the contract",
        )
        assert task.due_at == noon and task.remind_at == noon - timedelta(minutes=15)

        # reschedule by drag: to another day of its week, same time of day
        monday = day - timedelta(days=day.weekday())
        if monday > today:  # today is Sunday: tomorrow is in the next week
            await page.click("#week-next")
        item = page.locator(f".week .item[data-task-id='{task.id}']")
        await item.wait_for()
        target = monday if day != monday else monday + timedelta(days=1)
        await item.drag_to(page.locator(f"[data-testid='day-{target.isoformat()}']"))

        async def moved() -> bool:
            async with sessions() as s:
                row = await s.get(Task, task.id, populate_existing=True)
                return row is not None and row.due_at == datetime.combine(
                    target, time(12), tzinfo=zone
                )

        await _wait_for(moved)
        await page.locator(
            f".week [data-day='{target.isoformat()}'] .item[data-task-id='{task.id}']"
        ).wait_for()

        # mark done from the list
        await page.click(f"ul.tasks li[data-task-id='{task.id}'] [data-testid=done]")
        r = await _api_task(live.url, h, task.id)
        assert r["done"] is True

        # a reminder pops at its time, once
        async with sessions() as s:
            soon = utcnow() + timedelta(seconds=2)
            due = Task(
                title="Send the offer",
                kind="other",
                due_at=soon + timedelta(minutes=10),
                remind_at=soon,
                assignee_id=user.id,
                done=False,
                tries=0,
            )
            s.add(due)
            await s.commit()
        pop = page.locator(f"[data-testid=reminder][data-task-id='{due.id}']")
        await pop.wait_for()
        assert await pop.get_attribute("role") == "alert"
        assert (await pop.inner_text()).startswith(TEXT[locale]["reminder"] + "Send the offer")
        assert await pop.get_attribute("data-sound") in ("played", "none")
        assert await pop.get_attribute("data-notified") == "yes"
        await asyncio.sleep(0.6)  # a few scheduler rounds: nothing pops twice
        assert await page.locator("[data-testid=reminder]").count() == 1

        # a missed call, repeated: one row, two tries; "Call back" sends the Originate
        now = utcnow()
        await _log_missed(sessions, 1, now, timedelta(minutes=30), missed=True)
        await _log_missed(
            sessions, 2, now + timedelta(seconds=30), timedelta(minutes=30), missed=True
        )
        await page.reload()
        await page.wait_for_selector("body[data-ready=yes]")
        row = page.locator("#missed li[data-client-id]")
        await row.wait_for()
        assert await row.count() == 1
        assert await row.locator("[data-testid=tries]").inner_text() == TEXT[locale]["tries"]
        await row.locator("[data-testid=call-back]").click()

        async def originated() -> bool:
            return bool(replay.originates)

        await _wait_for(originated)
        sent = replay.originates[0]
        assert (sent["Channel"], sent["Exten"]) == ("PJSIP/101", "79161234567")
        assert f"CRM_USER_ID={user.id}" in sent["Variable"]
        await page.wait_for_selector("#missed-status:not([hidden])")


async def _api_task(url: str, h: dict[str, str], task_id: int) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=url, headers=h) as client:
        async with asyncio.timeout(10):
            while True:
                got: dict[str, Any] = (await client.get(f"/api/tasks/{task_id}")).json()
                if got["done"]:
                    return got
                await asyncio.sleep(0.05)


async def _olga_with_a_visit_and_a_supervisor(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> tuple[User, User, dict[str, str], Task]:
    """Olga (an operator) with a visit in nine days; Sofia, a supervisor, and her headers."""
    olga, _ = await make_user(role="operator", full_name="Olga Operator", timezone=COMPANY_TZ)
    sofia, h = await make_user(role="supervisor", full_name="Sofia Sup", locale="en")
    async with sessions() as s:
        theirs = Task(
            title="Olga's visit",
            kind="meeting",
            due_at=utcnow() + timedelta(days=9),
            assignee_id=olga.id,
            done=False,
            tries=0,
        )
        s.add(theirs)
        await s.commit()
    return olga, sofia, h, theirs


async def test_a_supervisor_reads_and_plans_anothers_agenda(
    settings: Settings,
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    page: Any,
) -> None:
    settings.notifier = NotifierSettings(SMTP_HOST="", OUTBOX_ENABLED=False)
    olga, _, h, theirs = await _olga_with_a_visit_and_a_supervisor(sessions, make_user)
    async with live_service(container) as live:
        await open_signed_in(page, live, h, "/tasks")
        await page.wait_for_selector("body[data-ready=yes]")
        assert await page.locator(f"#upcoming li[data-task-id='{theirs.id}']").count() == 0
        await page.select_option("#whose", str(olga.id))
        await page.locator(f"#upcoming li[data-task-id='{theirs.id}']").wait_for()
        # a task for her, from the form (the assignee follows the agenda shown)
        await page.fill("#nt-title", "Call the bank for Olga")
        await page.click("[data-testid=nt-save]")
        await page.wait_for_selector("#nt-status:not([hidden])")
        async with sessions() as s:
            made = await s.scalar(select(Task).where(Task.title == "Call the bank for Olga"))
        assert made is not None and made.assignee_id == olga.id and made.due_at is None
        await page.locator(f"#upcoming li[data-task-id='{made.id}']").wait_for()


async def test_an_older_answer_is_not_drawn_over_a_newer_one(
    settings: Settings,
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    page: Any,
) -> None:
    """A supervisor opens Olga's agenda and comes back to her own before Olga's lists arrive:
    Olga's late answer must not be drawn under her own name (nor any answer read before a
    newer one)."""
    settings.notifier = NotifierSettings(SMTP_HOST="", OUTBOX_ENABLED=False)
    olga, sofia, h, theirs = await _olga_with_a_visit_and_a_supervisor(sessions, make_user)
    async with live_service(container) as live:
        await open_signed_in(page, live, h, "/tasks")
        await page.wait_for_selector("body[data-ready=yes][data-refreshes='1']")
        held: asyncio.Queue[Any] = asyncio.Queue()
        await page.route(f"**/api/tasks?assignee={olga.id}&state=upcoming*", held.put_nowait)
        await page.select_option("#whose", str(olga.id))
        olgas = await asyncio.wait_for(held.get(), 30)
        answer = await olgas.fetch()
        assert answer.status == 200 and theirs.id in {t["id"] for t in await answer.json()}
        await page.select_option("#whose", str(sofia.id))
        await page.wait_for_selector("body[data-refreshes='2']")  # her own, drawn
        await olgas.fulfill(response=answer)
        await page.wait_for_selector("body[data-refreshes='3']")  # Olga's, handled
        assert await page.input_value("#whose") == str(sofia.id)
        assert await page.locator(f"#upcoming li[data-task-id='{theirs.id}']").count() == 0
        assert await page.locator("#n-upcoming").inner_text() == "0"
