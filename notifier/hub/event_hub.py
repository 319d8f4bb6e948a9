"""EventHub: publish domain events to people's sockets, on a backend chosen by the DSN.

The hub turns committed domain events into channel messages (notifier.channels), hands them to
its backend to be numbered and spread, and keeps this instance's sockets (Fanout). A socket is
registered (holding live messages) before its replay query runs, and anything the replay already
sent is dropped from the held ones by its seq, so replay and live meet without gaps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Publisher, StagedPublisher, TransactionalPublisher
from notifier.channels import Message, messages_for
from notifier.hub.event_log import Replay
from notifier.hub.fanout import Fanout
from notifier.hub.local import LocalBackend, publish_locally
from notifier.hub.notify import NOTIFY_CHANNEL
from notifier.hub.postgres import PostgresBackend
from notifier.hub.subscriber import Subscriber
from notifier.pgbus import PgBus


class Backend(Protocol):
    """Where messages are numbered and how they reach every instance's Fanout."""

    durable: bool

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def wait_ready(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, messages: list[Message]) -> None: ...

    async def replay(self, channels: Iterable[str], after: int, limit: int) -> Replay: ...

    async def cleanup(self) -> int: ...


class EventHub:
    """Publish domain events to people's sockets, across every instance of the service.

    `dsn=None` is the local mode (notifier/hub/local.py): no database, this process only.
    """

    def __init__(
        self,
        dsn: str | None,
        *,
        queue_size: int = 256,
        supervisor_flush_seconds: float = 0.05,
        retention_seconds: float = 15 * 60,
        cleanup_seconds: float = 60.0,
        max_replay: int = 1000,
        notify_channel: str = NOTIFY_CHANNEL,
    ) -> None:
        self.queue_size = queue_size
        self.max_replay = max_replay
        self._fanout = Fanout(
            last_seq=None if dsn else 0,
            queue_size=queue_size,
            flush_seconds=supervisor_flush_seconds,
        )
        self.bus: PgBus | None = None
        self._backend: Backend
        self._postgres: PostgresBackend | None = None
        if dsn:
            postgres = PostgresBackend(
                dsn,
                self._fanout,
                retention_seconds=retention_seconds,
                cleanup_seconds=cleanup_seconds,
                notify_channel=notify_channel,
            )
            self.bus = postgres.bus
            self._backend = self._postgres = postgres
        else:
            self._backend = LocalBackend(self._fanout)

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return self._backend.durable

    @property
    def last_seq(self) -> int:
        """The highest seq this instance has dispatched (0 before the first sync)."""
        return self._fanout.last_seq or 0

    @property
    def ready(self) -> bool:
        """Live delivery is running (the listener is connected and caught up)."""
        return self._backend.ready

    async def start(self) -> None:
        await self._backend.start()

    async def wait_ready(self) -> None:
        """Until live delivery runs (callers bound it with asyncio.timeout)."""
        await self._backend.wait_ready()

    async def stop(self) -> None:
        await self._backend.stop()
        self._fanout.close_all("server shutting down")

    # ---- publishing -----------------------------------------------------------------------

    async def publish(self, events: Sequence[object]) -> None:
        """The unit of work's publisher: called after commit with the collected domain events."""
        messages = messages_for(events)
        if messages:
            await self._backend.publish(messages)

    async def publish_shown_first(self, events: Sequence[object]) -> None:
        """The screen-pop's publisher: this instance's sockets get the messages at once,
        unnumbered, and then `publish` numbers them for every other socket, replay and the
        other instances (their numbered copies skip the sockets that got them here). A pop
        need not wait for event_log's round trip (issue 13). A page that reconnects or reloads
        before a numbered message newer than a pop gets the pop once more, numbered. Shown only
        when `PostgresBackend.may_show`: else they go numbered, as `publish`."""
        messages = messages_for(events)
        if not messages:
            return
        if self._postgres is None:  # numbered by this process at once: nothing to wait for
            await self._backend.publish(messages)
            return
        shown = self._fanout.show(messages) if self._postgres.may_show else None
        if shown is None or not any(shown):
            await self._postgres.publish(messages)
            return
        await asyncio.sleep(0)  # their sockets' writers first, then the append's round trip
        await self._postgres.publish(messages, shown)

    @property
    def transactional(self) -> Publisher:
        """The unit of work's publisher that writes its events to event_log in the work's own
        transaction (crm_core.db.TransactionalPublisher); the local mode keeps no log, so there
        it is `publish`, after the commit."""
        if self._postgres is None:
            return self.publish
        return TransactionalPublisher(self.publish_in, self.publish)

    @property
    def staged(self) -> Publisher:
        """The unit of work's publisher that stages its events in the work's own transaction
        and publishes them right after its commit (crm_core.db.StagedPublisher): a crash in
        between delays them (a hub publishes what was left staged at once when it syncs, and
        every 5 s after: `PostgresBackend._staged_loop`; what a failed release of its own left,
        with its next release or publish, or 0.5 s after) instead of losing them, and no lock
        is held through the work's COMMIT.
        The local mode keeps no log, so there it is `publish`, after the commit."""
        if self._postgres is None:
            return self.publish
        return StagedPublisher(self._stage_in, self._release, self.publish)

    async def _stage_in(self, session: AsyncSession, events: list[Any]) -> UUID | None:
        messages = messages_for(events)
        if not messages or self._postgres is None:
            return None
        return await self._postgres.stage_in(session, messages)

    async def _release(self, batch: UUID | None, events: list[Any]) -> None:
        if batch is not None and self._postgres is not None:
            await self._postgres.release(batch)

    async def publish_in(self, session: AsyncSession, events: Sequence[object]) -> None:
        """Write `events`' messages in `session`'s open transaction (PostgreSQL backend only);
        every instance delivers them when it commits, and never if it rolls back."""
        if self._postgres is None:
            raise RuntimeError("the local event hub keeps no event_log to write in a transaction")
        messages = messages_for(events)
        if messages:
            await self._postgres.publish_in(session, messages)

    def publish_local(self, events: Sequence[object]) -> None:
        """Fan out on this instance only, skipping event_log and NOTIFY.

        Not for the service: nothing is durable or replayable, other instances see nothing, and
        the numbers continue from this instance's last seq. It exists so the benchmark can show
        what the database step costs next to the bare fan-out.
        """
        publish_locally(self._fanout, messages_for(events))

    # ---- subscribing ----------------------------------------------------------------------

    def subscribe(self, channels: Iterable[str]) -> Subscriber:
        """Register a socket; it holds live messages until `go_live` (after any replay)."""
        return self._fanout.subscribe(channels)

    def unsubscribe(self, sub: Subscriber) -> None:
        self._fanout.unsubscribe(sub)

    def subscriber_count(self) -> int:
        return self._fanout.subscriber_count()

    def watching_users(self) -> set[int]:
        return self._fanout.watching_users()

    async def replay(self, channels: Iterable[str], after: int, limit: int | None = None) -> Replay:
        """What `channels` got after seq `after`, oldest first; at most `limit` (max_replay)."""
        return await self._backend.replay(channels, after, limit or self.max_replay)

    async def cleanup(self) -> int:
        """Delete event_log rows older than the retention; returns how many went."""
        return await self._backend.cleanup()
