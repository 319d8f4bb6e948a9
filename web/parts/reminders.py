"""Task reminders in the running service: one scheduler per instance.

Every instance runs one (claims are row-locked, so they share the work and each reminder goes
out once); presence comes from this instance's hub: who has a socket on their own channel.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.hub import EventHub
from notifier.reminders import ReminderScheduler
from web.settings import Settings


class Reminders:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], hub: EventHub
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._hub = hub
        self.scheduler: ReminderScheduler | None = None

    async def start(self) -> None:
        s = self._settings
        if not s.notifier.reminders_enabled:
            return
        self.scheduler = ReminderScheduler(
            self._sessions,
            s.notifier,
            watching=self._hub.watching_users,
            default_locale=s.core.default_locale,
            publish=self._hub.transactional,
        )
        await self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
