"""The outbox worker: sends queued SMS and email after their transaction committed, with retries.

Any number of instances may run one: each claims due rows with FOR UPDATE SKIP LOCKED and a lease,
so a row is sent by one worker at a time, and a worker that dies mid-send leaves its rows to the
others once the lease runs out. Results are written back through crm_core's outbox service, which
moves the communication to sent/failed and tells the sender's page.

Wake-ups: NOTIFY on commit of a new row (every instance), the next retry's due time, and a slow
poll as the safety net for a lost notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import Publisher, unit_of_work
from crm_core.messaging import service
from crm_core.messaging.repository import NOTIFY_CHANNEL
from crm_core.messaging.schemas import Claimed
from notifier.pgbus import PgBus

logger = logging.getLogger(__name__)

ERROR_LIMIT = 1000


class SendError(Exception):
    """A provider refused or could not be reached. `transient`: worth trying again later."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Sent:
    provider_id: str | None  # Twilio's SID; None for email (our Message-ID is already stored)
    extra: dict[str, Any] = field(default_factory=dict)


class Sender(Protocol):
    """One channel's provider: SMS through Twilio, email through SMTP (tests: Prism, aiosmtpd)."""

    @property
    def kind(self) -> str: ...

    async def send(self, item: Claimed) -> Sent: ...


def backoff_seconds(
    attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential, with jitter so that a provider back from an outage is not hit all at once."""
    delay: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    return delay * (0.5 + rand() / 2)


class OutboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Iterable[Sender],
        *,
        publish: Publisher | None = None,
        dsn: str | None = None,
        batch_size: int = 10,
        lease_seconds: float = 120.0,
        poll_seconds: float = 5.0,
        backoff_base: float = 5.0,
        backoff_max: float = 600.0,
        stop_grace_seconds: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._senders: Mapping[str, Sender] = {s.kind: s for s in senders}
        self._publish = publish
        self._batch = batch_size
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._grace = stop_grace_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._bus = (
            PgBus(dsn, NOTIFY_CHANNEL, self._on_notify, on_listening=self._on_listening)
            if dsn
            else None
        )
        self.stats: dict[str, int] = {"sent": 0, "retried": 0, "failed": 0, "lost": 0}

    @property
    def kinds(self) -> list[str]:
        return sorted(self._senders)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is not None or not self._senders:
            return
        self._stopping = False
        if self._bus is not None:
            await self._bus.start()
        self._task = asyncio.create_task(self._run(), name="outbox-worker")
        logger.info("outbox worker sending %s", ", ".join(self.kinds))

    async def stop(self) -> None:
        """Let the messages in flight finish (bounded), so none is sent twice after a restart."""
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self._grace)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._bus is not None:
            await self._bus.stop()

    def wake(self) -> None:
        self._wake.set()

    def _on_notify(self, _payload: str) -> None:
        self._wake.set()

    async def _on_listening(self) -> None:
        # notifications sent while we were not listening are lost: look at the table now
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            delay = self._poll
            try:
                if await self.run_once() >= self._batch:
                    continue  # more may be waiting
                async with self._sessions() as session:
                    due = await service.seconds_until_due(session, self.kinds)
                if due is not None:
                    delay = min(delay, due)
            except Exception:
                logger.exception("outbox worker cycle failed; retrying in %.1f s", self._poll)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def run_once(self) -> int:
        """Claim one batch of due rows and send them concurrently; the number claimed."""
        async with unit_of_work(self._sessions) as session:
            items = await service.claim_due(
                session, self.kinds, limit=self._batch, lease_seconds=self._lease
            )
        if items:
            await asyncio.gather(*(self._process(item) for item in items))
        return len(items)

    async def _process(self, item: Claimed) -> None:
        if item.attempts > item.max_attempts:
            # the previous holder's lease ran out on its last attempt (it died or hung)
            await self._record(
                item,
                lambda s: service.record_failed(
                    s, item, error="gave up: the last attempt was interrupted"
                ),
                "failed",
            )
            return
        sender = self._senders[item.kind]
        try:
            sent = await sender.send(item)
        except SendError as exc:
            error, transient = str(exc), exc.transient
        except Exception as exc:  # a bug or an unexpected library error: bounded retries anyway
            logger.exception("sending outbox %s (%s) failed unexpectedly", item.id, item.kind)
            error, transient = f"{type(exc).__name__}: {exc}", True
        else:
            await self._record(
                item,
                lambda s: service.record_sent(
                    s, item, provider_id=sent.provider_id, extra=sent.extra
                ),
                "sent",
            )
            return
        error = error[:ERROR_LIMIT]
        if transient and item.attempts < item.max_attempts:
            delay = backoff_seconds(item.attempts, base=self._backoff_base, cap=self._backoff_max)
            logger.warning(
                "outbox %s (%s) attempt %d/%d failed, again in %.2f s: %s",
                item.id,
                item.kind,
                item.attempts,
                item.max_attempts,
                delay,
                error,
            )
            await self._record(
                item,
                lambda s: service.record_retry(s, item, error=error, delay_seconds=delay),
                "retried",
            )
            return
        logger.error(
            "outbox %s (%s) failed after %d attempt(s): %s",
            item.id,
            item.kind,
            item.attempts,
            error,
        )
        await self._record(item, lambda s: service.record_failed(s, item, error=error), "failed")

    async def _record(
        self,
        item: Claimed,
        write: Callable[[AsyncSession], Awaitable[bool]],
        outcome: str,
    ) -> None:
        try:
            async with unit_of_work(self._sessions, self._publish) as session:
                held = await write(session)
        except Exception:
            # the lease runs out and another attempt follows: at-least-once, never lost
            logger.exception("recording outbox %s as %s failed", item.id, outcome)
            return
        self.stats[outcome if held else "lost"] += 1
