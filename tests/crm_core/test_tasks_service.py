"""Tasks in the domain: rescheduling re-arms the reminder, claims are exclusive, presence and
language decide the reminder's email."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.events.types import TaskReminder
from crm_core.models_common import utcnow
from crm_core.tasks import open_pages
from crm_core.tasks.models import OpenPage, ReminderEmail, Task
from crm_core.tasks.reminder_text import pick_locale, reminder_email
from crm_core.tasks.reminders import EmailPolicy, claim_due
from crm_core.tasks.schemas import Reschedule, TaskCreate
from crm_core.tasks.service import create_task, reschedule
from crm_core.users.models import User
from tests.conftest import UserFactory

POLICY = EmailPolicy(
    enabled=True,
    presence_ttl=timedelta(seconds=30),
    default_locale="ru",
    page_url="http://crm.test/tasks",
    sender="crm@example.com",
)


def armed(*, title: str, kind: str, due: datetime, assignee: User) -> Task:
    """An open task whose reminder is due at `due`, never tried."""
    return Task(
        title=title,
        kind=kind,
        due_at=due,
        remind_at=due,
        assignee_id=assignee.id,
        done=False,
        tries=0,
    )


@pytest.fixture
async def manager(make_user: UserFactory) -> User:
    user, _ = await make_user(role="manager")
    return user


async def test_rescheduling_re_arms_the_reminder_keeping_its_lead(
    sessions: async_sessionmaker[AsyncSession], manager: User
) -> None:
    user = manager
    due = utcnow() - timedelta(minutes=1)
    async with sessions() as s:
        me = await s.get(type(user), user.id)
        assert me is not None
        task = await create_task(
            s,
            TaskCreate(
                title="Meet", kind="meeting", due_at=due, remind_at=due - timedelta(minutes=15)
            ),
            actor=me,
        )
        await s.commit()
        assert [e.task_id for e in await claim_due(s, POLICY)] == [task.id]
        await s.commit()
        assert await claim_due(s, POLICY) == []  # claimed once
        new_due = utcnow() + timedelta(days=1)
        moved = await reschedule(s, task.id, Reschedule(due_at=new_due), actor=me)
        await s.commit()
        assert moved.reminded_at is None
        assert moved.remind_at == new_due - timedelta(minutes=15)
        # an explicit reminder time wins
        soon = utcnow() + timedelta(hours=1)
        moved = await reschedule(s, task.id, Reschedule(due_at=new_due, remind_at=soon), actor=me)
        await s.commit()
        assert (moved.remind_at, moved.reminded_at) == (soon, None)
        # moved into the past: not armed (nothing rings for a task dragged to yesterday)
        moved = await reschedule(s, task.id, Reschedule(due_at=due), actor=me)
        await s.commit()
        assert moved.reminded_at is not None
        assert await claim_due(s, POLICY) == []


async def test_concurrent_claims_never_share_a_reminder(
    sessions: async_sessionmaker[AsyncSession], manager: User
) -> None:
    due = utcnow() - timedelta(seconds=1)
    async with sessions() as s:
        s.add_all(armed(title=f"t{i}", kind="other", due=due, assignee=manager) for i in range(200))
        await s.commit()

    async def claim() -> list[TaskReminder]:
        got: list[TaskReminder] = []
        while True:
            async with sessions() as s, s.begin():
                batch = await claim_due(s, POLICY, batch=7)
            if not batch:
                return got
            got += batch

    results = await asyncio.gather(*(claim() for _ in range(4)))
    ids = [e.task_id for r in results for e in r]
    assert len(ids) == 200 and len(set(ids)) == 200


async def test_an_absent_user_with_an_address_gets_an_email_in_their_language(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    present, _ = await make_user(role="manager", email="here@example.com")
    absent, _ = await make_user(role="manager", email="away@example.com")  # no locale: ru
    silent, _ = await make_user(role="manager")  # no address
    due = utcnow() - timedelta(seconds=1)
    async with sessions() as s:
        await open_pages.heartbeat(s, "instance-a", [present.id])
        s.add_all(
            armed(title="Call back", kind="callback", due=due, assignee=u)
            for u in (present, absent, silent)
        )
        await s.commit()
        events = await claim_due(s, POLICY)
        await s.commit()
        assert sorted(e.assignee_id for e in events) == sorted([present.id, absent.id, silent.id])
        mails = (await s.scalars(select(ReminderEmail))).all()
        assert [(m.address, m.subject) for m in mails] == [
            ("away@example.com", "Напоминание: Call back")
        ]
        # an instance's heartbeat replaces its set: the user left
        await open_pages.heartbeat(s, "instance-a", [])
        assert await open_pages.present_users(s, [present.id], timedelta(seconds=30)) == set()


async def test_an_instances_heartbeat_sets_exactly_its_own_present_users(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    users = [(await make_user(role="manager"))[0] for _ in range(3)]
    a, b, c = (u.id for u in users)
    gone = max(a, b, c) + 1000  # a user deleted while their socket lingers
    async with sessions() as s, s.begin():
        await open_pages.heartbeat(s, "instance-b", [a])
        await open_pages.heartbeat(s, "instance-a", [a, b, gone, b])
    seen = select(OpenPage.seen_at).where(
        OpenPage.instance_id == "instance-a", OpenPage.user_id == b
    )
    async with sessions() as s:
        first_seen = await s.scalar(seen)
    async with sessions() as s, s.begin():
        await open_pages.heartbeat(s, "instance-a", [b, c])

    async with sessions() as s:
        seen_again = await s.scalar(seen)
        assert first_seen is not None and seen_again is not None
        assert seen_again > first_seen  # a user still there is seen anew
        rows = (await s.execute(select(OpenPage.instance_id, OpenPage.user_id))).all()
        # a left instance-a, c came, b stayed; instance-b's row is not instance-a's to touch
        assert sorted(rows) == sorted([("instance-a", b), ("instance-a", c), ("instance-b", a)])
        ttl = timedelta(seconds=30)
        assert await open_pages.present_users(s, [a, b, c, gone], ttl) == {a, b, c}
    async with sessions() as s, s.begin():
        await open_pages.heartbeat(s, "instance-a", [])
    async with sessions() as s:
        rows = (await s.execute(select(OpenPage.instance_id, OpenPage.user_id))).all()
        assert rows == [("instance-b", a)]


def test_email_text_in_both_languages_and_the_users_zone() -> None:
    assert pick_locale(None, "en") == "en" and pick_locale("ru", "en") == "ru"
    due = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    subject, body = reminder_email(
        locale="en",
        title="Offer",
        kind="meeting",
        due_at=due,
        client_name="Acme",
        goal="sign",
        timezone="Asia/Vladivostok",
        page_url="http://x/tasks",
    )
    assert subject == "Reminder: Offer"
    local = due.astimezone(ZoneInfo("Asia/Vladivostok"))
    assert f"Due: {local:%d.%m.%Y %H:%M}" in body and "Client: Acme" in body
    _, ru = reminder_email(
        locale="ru",
        title="Offer",
        kind="other",
        due_at=None,
        client_name=None,
        goal=None,
        timezone=None,
        page_url="http://x/tasks",
    )
    assert "Без срока" in ru and "Задача: Offer" in ru
