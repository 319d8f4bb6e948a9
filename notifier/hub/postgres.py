"""The hub across instances: event_log numbers every message, NOTIFY spreads it, LISTEN hears it.

    publish(messages) ── one statement, its own transaction: advisory xact lock, INSERT … RETURNING,
                         pg_notify; committed as it ends (one round trip)
    publish_in(session, messages) ── the same in the caller's transaction, announced at its COMMIT
        └── every instance's PgBus ── dispatcher (in seq order) ── Fanout ── Subscriber queues
    (the publishing instance's own Fanout gets what `publish` committed at once, in seq order;
     a screen-pop's sockets here got it before, unnumbered: `EventHub.publish_shown_first`)

Ordering is what makes "reconnect with last_seq" exact: commits happen in seq order across all
instances (event_log's lock) and PostgreSQL delivers notifications in commit order, so each
instance sees sequence numbers only ever increasing. While the listener is away, notifications
are lost: on every (re)connection the dispatcher catches up from event_log first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.background import cancel_and_wait
from crm_core.pg_connection import DedicatedConnection
from notifier.channels import Message
from notifier.hub import event_log
from notifier.hub.event_log import Replay
from notifier.hub.fanout import Fanout, Shown
from notifier.hub.frames import Envelope
from notifier.hub.notify import CATCH_UP, NOTIFY_CHANNEL, parse_body, seqs_of
from notifier.pgbus import PgBus

logger = logging.getLogger(__name__)

_RESYNC = object()
CATCH_UP_BATCH = 1000
# A staged batch is released milliseconds after its work commits: one staged for longer was
# left by a release that failed (or a process that went down first), and any hub publishes it.
STAGED_GRACE_SECONDS = 5.0
# After a release failed here, everything staged is looked at again this soon (or with this
# instance's next release, if that comes first).
RETRY_SECONDS = 0.5
# How long what the listener hears waits for the answer of an append of shown messages.
SHOWN_WAIT_SECONDS = 2.0


def _leftovers_failed(exc: Exception) -> None:
    logger.warning("publishing staged leftovers failed (%s: %s)", type(exc).__name__, exc)


class PostgresBackend:
    durable = True

    def __init__(
        self,
        dsn: str,
        fanout: Fanout,
        *,
        retention_seconds: float,
        cleanup_seconds: float,
        notify_channel: str = NOTIFY_CHANNEL,
    ) -> None:
        self._fanout = fanout
        self._retention = retention_seconds
        self._cleanup_every = cleanup_seconds
        self._notify_channel = notify_channel
        self._synced = False
        self._fresh_sync = False  # synced since the staged leftovers were last looked at
        self._left_behind = False  # a release failed here: its batch may be staged still
        self._look = asyncio.Event()  # wakes the staged loop before its next round
        self._ready = asyncio.Event()
        self._busy = False
        # clear while an append of messages shown before they were numbered is sent and not
        # answered (one at a time: the writer's lock): what the listener hears waits, it may be
        # their copies (`_deliver_heard`)
        self._shown_numbered = asyncio.Event()
        self._shown_numbered.set()
        self._waited_out = False  # the unanswered one's wait ran out: what is heard goes on
        self._numbered_to = 0  # the highest seq this instance's writer numbered (`may_show`)
        self._unanswered = False  # the writer's last statement got no answer
        self._releasing_leftovers = 0
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._pending: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._writer = DedicatedConnection(dsn, "hub writer", on_open=self._keep_numbering)
        self._reader = DedicatedConnection(dsn, "hub reader")
        self.bus = PgBus(
            dsn,
            notify_channel,
            self._on_notify,
            on_listening=self._on_listening,
            on_lost=self._on_lost,
        )

    @property
    def ready(self) -> bool:
        """Live delivery is running (the listener is connected and caught up)."""
        return self._synced

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="hub-dispatch"))
        self._tasks.append(asyncio.create_task(self._cleanup_loop(), name="hub-cleanup"))
        self._tasks.append(asyncio.create_task(self._staged_loop(), name="hub-staged"))
        await self.bus.start()
        try:  # open the publishing connection now rather than on the first screen-pop
            async with self._writer.use():
                pass
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("event hub cannot reach the database yet (%s)", exc)

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self) -> None:
        await self.bus.stop()
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)
        await self._writer.close()
        await self._reader.close()

    # ---- publishing -----------------------------------------------------------------------

    @property
    def may_show(self) -> bool:
        """Messages may be shown before they are numbered (`EventHub.publish_shown_first`) when
        the listener is in sync and everything this instance's writer numbered has been
        delivered here (a socket that missed an earlier message, replaying or not shown it,
        would get the newer one first; a statement without an answer may have numbered some:
        until the next one answers), and no leftovers are to go out first or going
        (`publish`)."""
        return (
            self._synced
            and self._shown_numbered.is_set()
            and not self._left_behind
            and not self._releasing_leftovers
            and not self._unanswered
            and (self._fanout.last_seq or 0) >= self._numbered_to
        )

    async def publish(self, messages: list[Message], shown: Shown | None = None) -> None:
        """Number `messages` and announce them; `shown`: the sockets here that each was shown
        to before (`Fanout.show`, some to one at least), which its numbered copy skips."""
        if self._left_behind:  # what a failed release left goes out before newer news
            try:
                await self._leftovers_first()
            except Exception as exc:  # its retry still comes; this news is not held for it
                _leftovers_failed(exc)
        await self._numbered(
            lambda conn: event_log.append(conn, messages, self._notify_channel), shown
        )

    async def _numbered(
        self,
        number: Callable[[asyncpg.Connection], Awaitable[list[Envelope]]],
        shown: Shown | None = None,
    ) -> list[Envelope]:
        """`number` run on the writer (a statement that numbers messages and commits by itself);
        what it committed goes to this instance's sockets at once (but to those it was shown to)."""
        try:
            async with self._writer.use() as conn:
                if shown is None:
                    envelopes = await number(conn)
                else:
                    envelopes = await self._number_shown(number, conn, shown)
        except BaseException:
            self._unanswered = True  # it may have committed: its numbers are not known here
            raise
        self._unanswered = False  # what it may have numbered lies below these
        if envelopes:
            self._numbered_to = max(self._numbered_to, envelopes[-1].seq)
        self._deliver_committed(envelopes)
        return envelopes

    async def _number_shown(
        self,
        number: Callable[[asyncpg.Connection], Awaitable[list[Envelope]]],
        conn: asyncpg.Connection,
        shown: Shown,
    ) -> list[Envelope]:
        """`number` for messages shown before: their NOTIFY, or a catch-up's read, may come
        before the statement's own answer, so what the listener hears waits until Fanout knows
        which numbers skip whom (`_deliver_heard`)."""
        self._shown_numbered.clear()
        self._waited_out = False
        try:
            envelopes = await number(conn)
            self._fanout.expect(envelopes, shown)
            return envelopes
        finally:
            self._shown_numbered.set()

    def _deliver_committed(self, envelopes: list[Envelope]) -> None:
        """This instance's sockets get what it just committed without waiting for its own
        NOTIFY to come back (a hop through the listening backend; other instances still hear
        it), but only the messages that directly follow the last seq delivered here: then
        every earlier seq has been delivered or never will be (numbers are taken and committed
        under the publish lock), so nothing is skipped and nothing comes twice (the NOTIFY of
        a seq delivered here is dropped by Fanout). Otherwise the NOTIFY delivers them in
        order, as for any other instance's messages."""
        if not self._synced:  # the listener is away: its catch-up delivers, in order
            return
        for env in envelopes:
            last = self._fanout.last_seq
            if last is None or env.seq != last + 1:
                return
            self._fanout.deliver(env)

    async def _keep_numbering(self, conn: asyncpg.Connection) -> None:
        """A connection back after a loss (the writer reopened, the listener resynced): the
        database may have crashed and lost the log's last commits, so the numbering moves on
        past anything this instance, or any other, may have delivered
        (`event_log.skip_numbers_a_crash_may_have_lost`). The first at the start: `_resync`."""
        delivered = self._fanout.last_seq
        if delivered is not None:
            await event_log.skip_numbers_a_crash_may_have_lost(conn, delivered)

    async def stage_in(self, session: AsyncSession, messages: list[Message]) -> UUID:
        """Stage `messages` in `session`'s transaction, for `release` after its commit."""
        return await event_log.stage_in(session, messages)

    async def release(self, batch: UUID) -> None:
        """Number and announce a staged batch whose work has committed. After a release here
        failed, everything staged goes, oldest first, this batch with it: what the failed one
        left goes out now and before this batch's news (and before the next `publish`'s), not
        at the next round of the staged loop after it."""
        if self._left_behind:
            await self._leftovers_first()  # this batch with them
            return
        try:
            await self._numbered(lambda conn: event_log.release(conn, batch, self._notify_channel))
        except Exception:
            self._left_behind_again()
            raise

    async def _leftovers_first(self) -> None:
        """After a release here failed: everything staged, oldest first."""
        self._left_behind = False  # (set again by a failure meanwhile, and kept)
        try:
            await self.release_leftovers(0.0, own=True)
        except Exception:
            self._left_behind_again()
            raise

    def _left_behind_again(self) -> None:
        self._left_behind = True
        asyncio.get_running_loop().call_later(RETRY_SECONDS, self._look.set)

    async def release_leftovers(self, older_than_seconds: float, *, own: bool = False) -> int:
        """Publish what stayed staged over `older_than_seconds` (its work committed); returns
        how many. `own`: what a failed release here left is among them (nothing is shown ahead
        of it meanwhile: `may_show`)."""
        self._releasing_leftovers += own
        try:
            envelopes = await self._numbered(
                lambda conn: event_log.release_leftovers(
                    conn, older_than_seconds, self._notify_channel
                )
            )
        finally:
            self._releasing_leftovers -= own
        if envelopes:
            logger.warning(
                "published %d messages left staged (their work committed, their release had"
                " not come: a crash, or a release that failed)",
                len(envelopes),
            )
        return len(envelopes)

    async def publish_in(self, session: AsyncSession, messages: list[Message]) -> None:
        """Number and announce `messages` in `session`'s transaction, at its commit.

        A pooled connection is not one of the hub's, which renumber when they reopen: so while
        the listener is away (the database may have crashed and taken event_log's numbering
        back), or where the numbering stands below what this instance delivered (it did, and
        the listener has not noticed yet: a failover sends no FIN), the same statement first
        moves the numbering past both. A message numbered where the log stood would be dropped
        as seen."""
        await event_log.append_in(
            session,
            messages,
            self._notify_channel,
            delivered=self._fanout.last_seq or 0,
            crashed=not self._synced,
        )

    async def replay(self, channels: Iterable[str], after: int, limit: int) -> Replay:
        async with self._reader.use() as conn:
            return await event_log.replay(conn, channels, after, limit)

    # ---- receiving --------------------------------------------------------------------------

    def _on_lost(self) -> None:
        self._synced = False
        self._ready.clear()

    async def _on_listening(self) -> None:
        self._inbox.put_nowait(_RESYNC)

    async def _deliver_heard(self, envelopes: list[Envelope]) -> None:
        """What the listener heard or read back, to Fanout in order; while the append of shown
        messages is unanswered, after it (it may be among these), for at most
        `SHOWN_WAIT_SECONDS` (a hung writer must not stop delivery: a page may then get a pop
        twice)."""
        if not self._shown_numbered.is_set() and not self._waited_out:
            try:
                async with asyncio.timeout(SHOWN_WAIT_SECONDS):
                    await self._shown_numbered.wait()
            except TimeoutError:
                logger.warning(
                    "the append of shown messages has not answered in %.0f s: delivering"
                    " without it (their numbered copies may reach the sockets shown them)",
                    SHOWN_WAIT_SECONDS,
                )
                self._waited_out = True  # for this append (the next one resets it)
        for env in envelopes:
            self._fanout.deliver(env)

    def _on_notify(self, body: str) -> None:
        # fast path: nothing queued ahead and everything inline -> deliver without a task switch
        if (
            self._synced
            and not self._busy
            and self._shown_numbered.is_set()
            and self._inbox.empty()
        ):
            envelopes = parse_body(body)
            if envelopes is not None:
                for env in envelopes:
                    self._fanout.deliver(env)
                return
        self._inbox.put_nowait(body)

    async def _dispatch_loop(self) -> None:
        while True:
            item = await self._inbox.get()
            self._busy = True
            try:
                if item is _RESYNC:
                    await self._resync()
                elif not self._synced:
                    self._pending.append(str(item))
                else:
                    await self._handle(str(item))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dispatching events failed; catching up from event_log")
                self._on_lost()
                self._inbox.put_nowait(_RESYNC)
                await asyncio.sleep(1.0)
            finally:
                self._busy = False

    async def _handle(self, body: str) -> None:
        envelopes = parse_body(body)
        if envelopes is None:
            if body == CATCH_UP:
                await self._catch_up()
                return
            # some messages were too big for NOTIFY: read them back from the log
            async with self._reader.use() as conn:
                envelopes = await event_log.by_seq(conn, seqs_of(body))
        await self._deliver_heard(envelopes)

    async def _catch_up(self) -> int:
        """Deliver every row after the last one delivered (commit order == seq order); the
        reader is let go before each batch is delivered (which may wait: `_deliver_heard`), so
        sockets' replays never wait for that."""
        missed = 0
        while True:
            async with self._reader.use() as conn:
                envelopes = await event_log.after(conn, self._fanout.last_seq or 0, CATCH_UP_BATCH)
            await self._deliver_heard(envelopes)
            missed += len(envelopes)
            if len(envelopes) < CATCH_UP_BATCH:
                return missed

    async def _resync(self) -> None:
        if self._fanout.last_seq is None:
            # first start: sockets connecting from now on replay by themselves
            async with self._reader.use() as conn:
                await event_log.skip_numbers_a_crash_may_have_lost(conn, 0)
                self._fanout.last_seq = await event_log.last_seq(conn)
        else:
            # a database crash may have lost the log's last commits, which this instance
            # delivered: new messages must not reuse their numbers
            async with self._reader.use() as conn:
                await self._keep_numbering(conn)
            missed = await self._catch_up()
            if missed:
                logger.info("caught up %d events missed while the listener was away", missed)
        self._synced = True
        self._fresh_sync = True
        self._ready.set()
        pending, self._pending = self._pending, []
        for body in pending:
            await self._handle(body)

    # ---- retention ------------------------------------------------------------------------

    async def cleanup(self) -> int:
        """Delete event_log rows older than the retention; returns how many went."""
        async with self._writer.use() as conn:
            total = await event_log.cleanup(conn, self._retention)
        if total:
            logger.info("event_log cleanup removed %d rows", total)
        return total

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(self._cleanup_every)
            try:
                await self.cleanup()
            except Exception as exc:
                logger.warning("event_log cleanup failed (%s: %s)", type(exc).__name__, exc)

    async def _staged_loop(self) -> None:
        """What stayed staged: everything at each sync (a start, the database back), since a
        crash left it there, and `RETRY_SECONDS` after a release here failed; then, every few
        seconds, what a release that failed in another running process left. Taking a batch
        its owner is about to release keeps its order: the owner's release waits for the rows
        until this one commits, then finds them gone."""
        while True:
            await self._ready.wait()
            self._look.clear()  # (a wake-up asked for from here on is kept)
            own = self._left_behind
            everything = self._fresh_sync or own
            self._fresh_sync = self._left_behind = False
            try:
                await self.release_leftovers(0.0 if everything else STAGED_GRACE_SECONDS, own=own)
            except Exception as exc:
                self._left_behind = self._left_behind or everything
                _leftovers_failed(exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STAGED_GRACE_SECONDS):
                    await self._look.wait()
