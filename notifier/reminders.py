"""The task reminder scheduler: one loop per instance, each reminder delivered exactly once.

Each round: record which users have a page open here (presence heartbeat), then in ONE
transaction claim the due reminders (crm_core.tasks.reminders.claim_due), write their
`task.reminder` messages into the event log with the hub's own append in that transaction
(the hub's `transactional` publisher: `PostgresBackend.publish_in`, its lock, INSERT, NOTIFY at
commit) and the emails for absent users, and commit: a crash can neither lose a reminder's
message nor send it twice. (A hub with no database, the local mode, sends them after the
commit.)
Every instance's hub then delivers the messages to the assignees' sockets; a socket that
connects later replays them.
Emails are sent after the commit from their own rows, leased, so a crash never loses one.

The loop sleeps until the next armed reminder, at most `poll_seconds` (a task created or
rescheduled meanwhile is seen on the next look).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import Publisher, collect_event, unit_of_work
from crm_core.models_common import utcnow
from crm_core.tasks import open_pages
from crm_core.tasks.reminders import (
    ClaimedEmail,
    EmailPolicy,
    claim_due,
    claim_emails,
    email_finished,
    next_due,
)
from notifier.email import build_message
from notifier.settings import NotifierSettings

logger = logging.getLogger(__name__)

EMAIL_MAX_ATTEMPTS = 5
EMAIL_LEASE = timedelta(minutes=2)


class ReminderScheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: NotifierSettings,
        *,
        watching: Callable[[], Collection[int]],
        default_locale: str,
        publish: Publisher,
        instance_id: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._watching = watching
        self._publish = publish
        self.instance_id = instance_id or uuid.uuid4().hex
        self._poll = settings.reminder_poll_seconds
        self._beat_every = settings.presence_heartbeat_seconds
        self.policy = EmailPolicy(
            enabled=bool(settings.smtp_host),
            presence_ttl=timedelta(seconds=3 * settings.presence_heartbeat_seconds),
            default_locale=default_locale,
            page_url=settings.public_base_url.rstrip("/") + "/tasks",
            sender=settings.smtp_from,
        )
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_beat = 0.0
        self._beaten: frozenset[int] | None = None
        self.delivered = 0  # reminders this instance claimed (tests and status)
        self.emailed = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="task-reminders")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with self._sessions() as s, s.begin():
                await open_pages.leave(s, self.instance_id)
        except Exception as exc:  # the rows age out by themselves
            logger.warning("could not clear presence of %s (%s)", self.instance_id, exc)

    def wake(self) -> None:
        self._wake.set()

    async def beat(self) -> None:
        users = frozenset(self._watching())
        async with self._sessions() as s, s.begin():
            await open_pages.heartbeat(s, self.instance_id, users)
        self._last_beat = asyncio.get_running_loop().time()
        self._beaten = users

    async def run_once(self) -> int:
        """Claim and publish the due reminders this instance can lock; how many."""
        async with unit_of_work(self._sessions, self._publish) as s:
            events = await claim_due(s, self.policy)
            for event in events:  # with the hub's `transactional`: announced if the claims commit
                collect_event(s, event)
        if events:
            self.delivered += len(events)
            logger.info(
                "task reminders delivered: %s",
                ",".join(str(getattr(e, "task_id", "?")) for e in events),
                extra={"instance": self.instance_id, "count": len(events)},
            )
        return len(events)

    async def send_emails(self) -> int:
        if not self.policy.enabled:
            return 0
        async with self._sessions() as s, s.begin():
            claimed = await claim_emails(s, lease=EMAIL_LEASE)
        sent = 0
        for item in claimed:
            error, transient = await self._send(item)
            retry = (
                timedelta(seconds=min(300.0, 5.0 * 2 ** (item.attempts - 1)))
                if error and transient and item.attempts < EMAIL_MAX_ATTEMPTS
                else None
            )
            if error:
                logger.warning(
                    "reminder email %s to %s failed (attempt %d): %s",
                    item.id,
                    item.address,
                    item.attempts,
                    error,
                )
            else:
                sent += 1
            async with self._sessions() as s, s.begin():
                await email_finished(s, item, error=error, retry_in=retry)
        self.emailed += sent
        return sent

    async def _send(self, item: ClaimedEmail) -> tuple[str | None, bool]:
        st = self._settings
        payload: dict[str, Any] = {
            "to": item.address,
            "subject": item.subject,
            "body": item.body,
            "message_id": item.message_id,
        }
        try:
            await aiosmtplib.send(
                build_message(st, payload),
                hostname=st.smtp_host,
                port=st.smtp_port,
                username=st.smtp_username or None,
                password=st.smtp_password or None,
                timeout=30,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return f"SMTP {exc.code} {exc.message}", 400 <= exc.code < 500
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return f"SMTP {st.smtp_host}:{st.smtp_port}: {exc}", True
        return None, False

    async def _sleep_seconds(self) -> float:
        async with self._sessions() as s:
            due = await next_due(s)
        if due is None:
            return self._poll
        return max(0.0, min(self._poll, (due - utcnow()).total_seconds()))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delay = self._poll
            try:
                # this instance's own sockets are always current before a claim decides on email
                stale = loop.time() - self._last_beat >= self._beat_every
                if stale or frozenset(self._watching()) != self._beaten:
                    await self.beat()
                await self.run_once()
                await self.send_emails()
                delay = await self._sleep_seconds()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("task reminder round failed; trying again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                # a due reminder wakes us on time; never spin faster than 50 ms
                await asyncio.wait_for(self._wake.wait(), max(0.05, delay))
