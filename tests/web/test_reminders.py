"""Task reminders over real instances: delivered once with two schedulers racing on one
database, once across a restart, on the assignee's socket, and emailed (in their language) to
an assignee with no page open, through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import ClientConnection, connect

from crm_core.events.models import EventLogEntry
from crm_core.models_common import utcnow
from crm_core.tasks.models import OpenPage, ReminderEmail, Task
from notifier.channels import Message
from notifier.hub.postgres import PostgresBackend
from notifier.settings import NotifierSettings
from tests.conftest import UserFactory
from tests.event_contract import violations
from tests.mailbox import Mailbox
from tests.web.live import live_service, second_container
from web.container import Container
from web.settings import Settings


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    """Reminders polled every 0.1 s, emailed through `mailbox`."""
    settings.notifier = NotifierSettings(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=mailbox.port,
        SMTP_FROM="crm@example.com",
        OUTBOX_ENABLED=False,
        REMINDER_POLL_SECONDS=0.1,
        PRESENCE_HEARTBEAT_SECONDS=2.0,  # presence lasts 3 beats: slack for a busy machine
    )
    return settings


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def _add_tasks(
    sessions: async_sessionmaker[AsyncSession], assignee: int, n: int, *, in_seconds: float
) -> list[int]:
    due = utcnow() + timedelta(seconds=in_seconds)
    async with sessions() as s:
        tasks = [
            Task(
                title=f"Call the client #{i}",
                kind="callback",
                due_at=due,
                remind_at=due,
                assignee_id=assignee,
                done=False,
                tries=0,
            )
            for i in range(n)
        ]
        s.add_all(tasks)
        await s.commit()
        return [t.id for t in tasks]


async def _reminders_logged(sessions: async_sessionmaker[AsyncSession]) -> Counter[int]:
    async with sessions() as s:
        rows = await s.scalars(
            select(EventLogEntry.payload).where(EventLogEntry.type == "task.reminder")
        )
        return Counter(int(p["id"]) for p in rows.all())


async def _collect(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
    async for raw in ws:
        frame = json.loads(raw)
        if frame.get("type") == "task.reminder":
            into.append(frame)


async def test_two_instances_deliver_each_reminder_once_and_email_the_absent(
    settings: Settings,
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    mailbox: Mailbox,
) -> None:
    here, here_h = await make_user(role="operator", extension="101", email="here@example.com")
    away_en, _ = await make_user(role="manager", email="away.en@example.com", locale="en")
    away_ru, _ = await make_user(role="manager", email="away.ru@example.com", locale="ru")
    token = here_h["Authorization"].split()[1]
    async with (
        second_container(settings) as other,
        live_service(container) as one,
        live_service(other) as two,
    ):
        got: list[dict[str, Any]] = []
        async with connect(f"{two.ws_url}?token={token}") as ws:
            reader = asyncio.create_task(_collect(ws, got))

            async def here_is_present() -> bool:  # both instances may now decide on email
                async with sessions() as s:
                    return bool(
                        await s.scalar(select(func.count()).where(OpenPage.user_id == here.id))
                    )

            await _until(here_is_present)
            mine = await _add_tasks(sessions, here.id, 30, in_seconds=1.0)
            en = await _add_tasks(sessions, away_en.id, 1, in_seconds=1.0)
            ru = await _add_tasks(sessions, away_ru.id, 1, in_seconds=1.0)

            async def all_delivered() -> bool:
                return len(got) >= len(mine) and len(mailbox.messages) >= 2

            await _until(all_delivered)
            schedulers = [s.running.reminders.scheduler for s in (one, two)]
            # both look again now: nothing is left to claim
            assert [await sch.run_once() for sch in schedulers] == [0, 0]
            await asyncio.sleep(0.5)  # any duplicate would have been sent by now
            reader.cancel()

        # exactly once: in the event log, on the socket, and across both instances' claims
        logged = await _reminders_logged(sessions)
        assert logged == Counter({tid: 1 for tid in (*mine, *en, *ru)})
        assert sorted(f["payload"]["id"] for f in got) == sorted(mine)
        assert all(f["channel"] == f"user:{here.id}" for f in got)
        assert all(not violations("task.reminder", f["payload"]) for f in got)
        assert sum(sch.delivered for sch in schedulers) == len(mine) + 2

    # email: only to the absent users, once each, in their own language
    to = sorted((env.rcpt_tos[0], msg["Subject"]) for env, msg in mailbox.messages)
    assert to == [
        ("away.en@example.com", "Reminder: Call the client #0"),
        ("away.ru@example.com", "Напоминание: Call the client #0"),
    ]
    ru_body = next(m for e, m in mailbox.messages if e.rcpt_tos == ["away.ru@example.com"])
    assert "Перезвонить" in ru_body.get_content() and "/tasks" in ru_body.get_content()
    async with sessions() as s:
        states = (await s.scalars(select(ReminderEmail.state))).all()
    assert states == ["sent", "sent"]


async def test_a_restart_delivers_what_came_due_while_down_and_nothing_twice(
    settings: Settings,
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    mailbox: Mailbox,
) -> None:
    user, h = await make_user(role="operator", extension="101")
    token = h["Authorization"].split()[1]
    async with live_service(container) as first:
        before = await _add_tasks(sessions, user.id, 1, in_seconds=0.3)

        async def claimed() -> bool:
            return sum((await _reminders_logged(sessions)).values()) >= 1

        await _until(claimed)
        assert first.running.reminders.scheduler.delivered == 1
    # down: a reminder comes due with no instance running
    during = await _add_tasks(sessions, user.id, 1, in_seconds=0.2)
    await asyncio.sleep(0.4)
    async with sessions() as s:
        assert (await s.get(Task, during[0])).reminded_at is None  # type: ignore[union-attr]
    async with second_container(settings) as fresh, live_service(fresh) as second:
        got: list[dict[str, Any]] = []
        async with connect(f"{second.ws_url}?token={token}&last_seq=0") as ws:
            reader = asyncio.create_task(_collect(ws, got))

            async def both_seen() -> bool:
                return len(got) >= 2

            await _until(both_seen)
            await asyncio.sleep(0.5)
            reader.cancel()
        assert second.running.reminders.scheduler.delivered == 1
    # the socket replayed the first (from the log) and got the second live: each once
    assert sorted(f["payload"]["task_id"] for f in got) == sorted(before + during)
    assert await _reminders_logged(sessions) == Counter({before[0]: 1, during[0]: 1})
    assert mailbox.messages == []  # no address: no email


async def test_a_reminder_whose_message_is_refused_stays_due_and_goes_out_once(
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim and its message are one transaction (the hub's `transactional` publisher): a
    message the event log refuses rolls the claim back, and the next round sends it."""
    user, _ = await make_user(role="operator", extension="101")
    refused: list[list[str]] = []
    write = PostgresBackend.publish_in

    async def refusing_once(
        backend: PostgresBackend, session: AsyncSession, messages: list[Message]
    ) -> None:
        if not refused:
            refused.append([m.type for m in messages])
            raise RuntimeError("the event log refused it")
        await write(backend, session, messages)

    monkeypatch.setattr(PostgresBackend, "publish_in", refusing_once)
    async with live_service(container):
        task = await _add_tasks(sessions, user.id, 1, in_seconds=0.2)

        async def logged() -> bool:
            return sum((await _reminders_logged(sessions)).values()) >= 1

        await _until(logged)
        await asyncio.sleep(0.5)  # a second copy would have gone by now
    assert refused and set(refused[0]) == {"task.reminder"}
    assert await _reminders_logged(sessions) == Counter({task[0]: 1})
