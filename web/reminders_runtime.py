"""Wiring of task reminders into the running service: one scheduler per instance.

Every instance runs one (claims are row-locked, so they share the work and each reminder goes
out once); presence comes from this instance's hub: who has a socket on their own channel.
"""

from __future__ import annotations

from notifier.hub import EventHub
from notifier.reminders import ReminderScheduler
from web.container import Container


class Reminders:
    def __init__(self, c: Container) -> None:
        self._c = c
        self.scheduler: ReminderScheduler | None = None

    async def start(self, hub: EventHub) -> None:
        s = self._c.settings
        if not s.notifier.reminders_enabled:
            return
        self.scheduler = ReminderScheduler(
            self._c.sessions,
            s.notifier,
            watching=hub.watching_users,
            default_locale=s.core.default_locale,
        )
        await self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
