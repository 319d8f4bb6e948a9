"""Presence to the PBX from the instance that follows it: wrap-up's pause, start and end.

Runs in the elected instance only (web/parts/call_tracking.py builds it with the AMI listener),
so with several instances exactly one pushes and keeps the timers. It hears the presence changes
this instance commits (wrap-ups start in its call pipeline) and pushes each as the flag that
agrees (crm_core.presence.rules.pbx_push); one worker sends them in order, so a wrap-up's pause
and a quick early end never overtake each other. Each wrap-up gets a timer at its end: then the
stored presence decides what the PBX is sent (rules.wrapup_over), so a change made meanwhile in
an instance that could not push it is caught up at the latest there. A new leader picks up the
wrap-ups still running (`resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.models_common import utcnow
from crm_core.presence import rules
from crm_core.presence.events import PresenceChanged
from crm_core.presence.models import AgentPresence
from crm_core.presence.rules import PbxPause, Presence
from crm_core.users.models import User
from telephony.originate import ActionSender
from telephony.presence_events import send_pause

logger = logging.getLogger(__name__)


class PbxLink(ActionSender, Protocol):
    """The AMI connection the pushes go through (the service's AmiListener)."""

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Push:
    extension: str
    flag: PbxPause


@dataclass(frozen=True, slots=True)
class _WrapupOver:
    user_id: int


_Job = _Push | _WrapupOver


class PresencePusher:
    def __init__(
        self,
        ami: PbxLink,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._ami = ami
        self._sessions = sessions
        self._clock = clock
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._worker: asyncio.Task[None] | None = None
        self.stats = {"pushed": 0, "wrapups_over": 0, "failed": 0}

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="presence-pusher")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def resume(self) -> int:
        """Timers for the wrap-ups still running (started under the previous leader)."""
        now = self._clock()
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(AgentPresence).where(
                        AgentPresence.state == rules.WRAPUP, AgentPresence.until > now
                    )
                )
            ).all()
        for row in rows:
            assert row.until is not None
            self._end_at(row.user_id, row.until)
        return len(rows)

    async def idle(self) -> None:
        """Until every push queued so far is sent (tests)."""
        await self._jobs.join()

    # ------------------------------------------------------------------------------- inputs

    def push(self, user_id: int, extension: str, state: str, reason: str | None) -> None:
        """A person's change committed in this instance (the API): sent in order with the rest;
        a wrap-up it ends or supersedes needs no timer any more."""
        self._cancel(user_id)
        self._jobs.put_nowait(_Push(extension, rules.pbx_flag(state, reason)))

    def changed(self, events: Sequence[object]) -> None:
        """Presence changes just committed here (a publisher's events; others pass by)."""
        now = self._clock()
        for e in events:
            if not isinstance(e, PresenceChanged):
                continue
            until = datetime.fromisoformat(e.until) if e.until else None
            new = Presence(e.state, e.reason, datetime.fromisoformat(e.since), until)
            if e.state == rules.WRAPUP and until is not None:
                self._end_at(e.user_id, until)
            else:
                self._cancel(e.user_id)  # superseded: the new state's own push says it
            flag = rules.pbx_push(new, e.source, now)
            if flag is not None and e.extension:
                self._jobs.put_nowait(_Push(e.extension, flag))

    # -------------------------------------------------------------------------------- timers

    def _end_at(self, user_id: int, until: datetime) -> None:
        self._cancel(user_id)
        delay = max(0.0, (until - self._clock()).total_seconds())
        loop = asyncio.get_running_loop()
        self._timers[user_id] = loop.call_later(delay, self._due, user_id)

    def _cancel(self, user_id: int) -> None:
        timer = self._timers.pop(user_id, None)
        if timer is not None:
            timer.cancel()

    def _due(self, user_id: int) -> None:
        self._timers.pop(user_id, None)
        self._jobs.put_nowait(_WrapupOver(user_id))

    # -------------------------------------------------------------------------------- worker

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await self._do(job)
            except Exception as exc:  # the CRM's state stands; the next change or end catches up
                self.stats["failed"] += 1
                logger.warning("presence not pushed to the PBX: %r", exc, extra={"job": repr(job)})
            finally:
                self._jobs.task_done()

    async def _do(self, job: _Job) -> None:
        if not self._ami.connected:
            await self._ami.wait_connected()  # pushes wait for the PBX, in order
        if isinstance(job, _Push):
            await send_pause(self._ami, job.extension, job.flag)
            self.stats["pushed"] += 1
            return
        async with self._sessions() as session:
            user = await session.get(User, job.user_id)
            row = await session.get(AgentPresence, job.user_id)
        stored = None if row is None else Presence(row.state, row.reason, row.since, row.until)
        now = self._clock()
        flag = rules.wrapup_over(stored, now)
        if flag is None:  # early (clocks differ) or a newer wrap-up: wait for its end
            if row is not None and row.until is not None and row.until > now:
                self._end_at(job.user_id, row.until)
            return
        self.stats["wrapups_over"] += 1
        if user is not None and user.extension:
            await send_pause(self._ami, user.extension, flag)
            logger.info(
                "presence: wrap-up over at the PBX",
                extra={"extension": user.extension, "paused": flag.paused},
            )
