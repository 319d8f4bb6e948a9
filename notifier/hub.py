"""The event hub: numbers messages in `event_log`, spreads them with NOTIFY, fans out to sockets.

The path of one committed batch of domain events:

    publish(events) ── one transaction: advisory xact lock, INSERT … RETURNING, pg_notify, COMMIT
        └── every instance's PgBus ── dispatcher (in seq order) ── Subscriber queues ── sockets

Ordering is what makes "reconnect with last_seq" exact. The transaction-scoped advisory lock makes
commits happen in seq order across all instances; PostgreSQL delivers notifications in commit
order; so each instance sees sequence numbers only ever increasing, and a socket that has seen N
has seen everything of its channels below N. Replay and live then meet without gaps: a socket is
registered (holding live messages) before the replay query runs, and anything the replay already
sent is dropped from the held ones by its seq.

Sockets never share a queue: each Subscriber has a bounded queue, and overflowing it marks the
socket as too slow (its endpoint closes it). Supervisors' messages are not urgent: they wait up to
`supervisor_flush_seconds` and leave in one batch, while a screen-pop wakes its socket at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from notifier.channels import SUPERVISORS, Message, messages_for, user_of_channel
from notifier.pgbus import PgBus, plain_dsn

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "crm_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; leave room for the line breaks.
NOTIFY_BUDGET = 7800
# Serialises publishers of all instances so seq order == commit order == notification order.
PUBLISH_LOCK_KEY = 0x5C12_E5E0_0001
CATCH_UP = "*"

_ROW_SQL = "seq, channel, type, payload::text AS payload, created_at"
_INSERT_SQL = f"""
INSERT INTO event_log (channel, type, payload)
SELECT u.c, u.t, u.p::jsonb
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(c, t, p, n)
ORDER BY u.n
RETURNING {_ROW_SQL}
"""
_AFTER_SQL = f"SELECT {_ROW_SQL} FROM event_log WHERE seq > $1 ORDER BY seq LIMIT $2"
_BY_SEQ_SQL = f"SELECT {_ROW_SQL} FROM event_log WHERE seq = ANY($1::bigint[]) ORDER BY seq"
_REPLAY_SQL = f"""
SELECT {_ROW_SQL} FROM event_log
WHERE channel = ANY($1::text[]) AND seq > $2
ORDER BY seq LIMIT $3
"""
# Oldest rows first by primary key, so each round touches only what it deletes.
_CLEANUP_SQL = """
DELETE FROM event_log WHERE seq IN (
    SELECT seq FROM event_log ORDER BY seq LIMIT $2
) AND created_at < now() - make_interval(secs => $1)
"""


class SlowConsumer(Exception):
    """The socket fell `queue_size` messages behind and is being dropped."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A numbered message, with its wire form encoded once for every socket that gets it."""

    seq: int
    channel: str
    type: str
    frame: str


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def encode_frame(seq: int, channel: str, type_: str, payload_json: str, at: datetime) -> str:
    """`{"seq","channel","type","payload","at"}`; the payload is spliced in, never re-encoded."""
    return (
        f'{{"seq":{seq},"channel":{_dumps(channel)},"type":{_dumps(type_)},'
        f'"payload":{payload_json},"at":"{at.isoformat()}"}}'
    )


def control_frame(type_: str, **fields: Any) -> str:
    """Messages about the connection itself (ping, subscribed, replay.truncated): no seq."""
    return _dumps({"type": type_, **fields})


def _envelope(row: asyncpg.Record) -> Envelope:
    seq, channel, type_ = row["seq"], row["channel"], row["type"]
    return Envelope(
        seq, channel, type_, encode_frame(seq, channel, type_, row["payload"], row["created_at"])
    )


class Subscriber:
    """One socket's view of the hub: its channels and its bounded, prioritised queue."""

    def __init__(self, channels: frozenset[str], *, limit: int, flush_seconds: float) -> None:
        self.channels = channels
        self.high_water = 0  # highest seq queued; the hub delivers in seq order, so it dedupes
        self.closed_reason: str | None = None
        self._limit = limit
        self._flush_seconds = flush_seconds
        self._frames: deque[str] = deque()
        self._urgent = False
        self._deadline: float | None = None
        self._wake = asyncio.Event()
        self._failed = asyncio.Event()
        self._held: list[Envelope] | None = []  # live messages arriving during the replay

    @property
    def pending(self) -> int:
        return len(self._frames)

    def offer(self, env: Envelope) -> None:
        if self.closed_reason is not None:
            return
        if self._held is not None:
            if len(self._held) >= self._limit:
                self.fail("too slow: queue full during replay")
            else:
                self._held.append(env)
            return
        self._push(env)

    def go_live(self, after: int) -> None:
        """Replay done up to `after`: release the held live messages that are newer."""
        self.high_water = max(self.high_water, after)
        held, self._held = self._held or [], None
        for env in held:
            self._push(env)

    def control(self, frame: str) -> None:
        """Connection messages (ping) jump no queue: they go after what is already queued."""
        if self.closed_reason is None and self._enqueue(frame):
            self._urgent = True
            self._wake.set()

    def fail(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._frames.clear()
            self._held = None
            self._wake.set()
            self._failed.set()

    async def wait_failed(self) -> str:
        """Until the hub drops this socket (its writer may be stuck on a full socket meanwhile)."""
        await self._failed.wait()
        return self.closed_reason or "dropped"

    async def next_frames(self) -> list[str]:
        """Everything due now, in seq order; raises SlowConsumer once the socket is dropped."""
        loop = asyncio.get_running_loop()
        while True:
            if self.closed_reason is not None:
                raise SlowConsumer(self.closed_reason)
            deadline = self._deadline
            if self._frames and (
                self._urgent or (deadline is not None and loop.time() >= deadline)
            ):
                frames = list(self._frames)
                self._frames.clear()
                self._urgent = False
                self._deadline = None
                return frames
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - loop.time()))

    def _enqueue(self, frame: str) -> bool:
        if len(self._frames) >= self._limit:
            self.fail(f"too slow: {self._limit} messages unread")
            return False
        self._frames.append(frame)
        return True

    def _push(self, env: Envelope) -> None:
        if env.seq <= self.high_water or not self._enqueue(env.frame):
            return
        self.high_water = env.seq
        if env.channel != SUPERVISORS:
            # a screen-pop: send now, together with any broadcast queued before it (seq order)
            self._urgent = True
            self._wake.set()
        elif self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self._flush_seconds
            self._wake.set()  # the writer learns the deadline


@dataclass(frozen=True, slots=True)
class Replay:
    envelopes: list[Envelope]
    more: bool  # more rows than the limit: ask again after the last one
    gap: bool  # rows after `after` were already cleaned up: the reader's state is stale

    @property
    def truncated(self) -> bool:
        return self.more or self.gap


class _Db:
    """One dedicated connection, reconnected when lost; one user at a time."""

    def __init__(self, dsn: str, name: str) -> None:
        self._dsn = dsn
        self._name = name
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn)
                logger.debug("hub %s connection opened", self._name)
            try:
                yield self._conn
            except BaseException:
                if self._conn.is_closed():
                    logger.warning("hub %s connection lost", self._name)
                    self._conn = None
                raise

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), 2.0)
                except Exception:
                    conn.terminate()


_RESYNC = object()


class EventHub:
    """Publish domain events to people's sockets, across every instance of the service.

    `dsn=None` is the local mode: no database, sequence numbers from a counter, delivery to this
    process only — for the benchmark's "fan-out only" figure and for tools without PostgreSQL.
    """

    def __init__(
        self,
        dsn: str | None,
        *,
        queue_size: int = 256,
        supervisor_flush_seconds: float = 0.25,
        retention_seconds: float = 15 * 60,
        cleanup_seconds: float = 60.0,
        max_replay: int = 1000,
        notify_channel: str = NOTIFY_CHANNEL,
    ) -> None:
        self._dsn = plain_dsn(dsn) if dsn else None
        self.queue_size = queue_size
        self._flush = supervisor_flush_seconds
        self._retention = retention_seconds
        self._cleanup_every = cleanup_seconds
        self.max_replay = max_replay
        self._notify_channel = notify_channel
        self._by_channel: dict[str, set[Subscriber]] = {}
        self._last_seq: int | None = None if self._dsn else 0
        self._synced = self._dsn is None
        self._ready = asyncio.Event()
        if self._synced:
            self._ready.set()
        self._busy = False
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._pending: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: _Db | None = None
        self._reader: _Db | None = None
        self.bus: PgBus | None = None
        if self._dsn:
            self._writer = _Db(self._dsn, "writer")
            self._reader = _Db(self._dsn, "reader")
            self.bus = PgBus(
                self._dsn,
                notify_channel,
                self._on_notify,
                on_listening=self._on_listening,
                on_lost=self._on_lost,
            )

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return self._dsn is not None

    @property
    def last_seq(self) -> int:
        """The highest seq this instance has dispatched (0 before the first sync)."""
        return self._last_seq or 0

    @property
    def ready(self) -> bool:
        """Live delivery is running (the listener is connected and caught up)."""
        return self._synced

    async def start(self) -> None:
        if self.bus is not None and not self._tasks:
            self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="hub-dispatch"))
            self._tasks.append(asyncio.create_task(self._cleanup_loop(), name="hub-cleanup"))
            await self.bus.start()
            assert self._writer is not None
            try:  # open the publishing connection now rather than on the first screen-pop
                async with self._writer.use():
                    pass
            except (OSError, asyncpg.PostgresError) as exc:
                logger.warning("event hub cannot reach the database yet (%s)", exc)

    async def wait_ready(self) -> None:
        """Until live delivery runs (callers bound it with asyncio.timeout)."""
        await self._ready.wait()

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for db in (self._writer, self._reader):
            if db is not None:
                await db.close()
        for subs in list(self._by_channel.values()):
            for sub in list(subs):
                sub.fail("server shutting down")

    # ---- publishing -----------------------------------------------------------------------

    async def publish(self, events: Sequence[object]) -> None:
        """The unit of work's publisher: called after commit with the collected domain events."""
        messages = messages_for(events)
        if not messages:
            return
        if self._writer is None:
            self._publish_local(messages)
            return
        channels = [m.channel for m in messages]
        types = [m.type for m in messages]
        payloads = [_dumps(m.payload) for m in messages]
        async with self._writer.use() as conn:
            # simple-protocol BEGIN + lock in one round trip; the key is our own constant
            await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({PUBLISH_LOCK_KEY})")
            try:
                rows = await conn.fetch(_INSERT_SQL, channels, types, payloads)
                envelopes = sorted((_envelope(r) for r in rows), key=lambda e: e.seq)
                await conn.execute(
                    "SELECT pg_notify($1, $2)", self._notify_channel, _notify_body(envelopes)
                )
                await conn.execute("COMMIT")
            except BaseException:
                if not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.execute("ROLLBACK")
                raise

    def publish_local(self, events: Sequence[object]) -> None:
        """Fan out on this instance only, skipping event_log and NOTIFY.

        Not for the service: nothing is durable or replayable, other instances see nothing, and
        the numbers continue from this instance's last seq. It exists so the benchmark can show
        what the database step costs next to the bare fan-out.
        """
        self._publish_local(messages_for(events))

    def _publish_local(self, messages: list[Message]) -> None:
        at = datetime.now(UTC)
        for m in messages:
            seq = self.last_seq + 1
            self._deliver(
                Envelope(
                    seq,
                    m.channel,
                    m.type,
                    encode_frame(seq, m.channel, m.type, _dumps(m.payload), at),
                )
            )

    # ---- subscribing ----------------------------------------------------------------------

    def subscribe(self, channels: Iterable[str]) -> Subscriber:
        """Register a socket; it holds live messages until `go_live` (after any replay)."""
        sub = Subscriber(frozenset(channels), limit=self.queue_size, flush_seconds=self._flush)
        for name in sub.channels:
            self._by_channel.setdefault(name, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        for name in sub.channels:
            subs = self._by_channel.get(name)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_channel[name]

    def watching_users(self) -> set[int]:
        """Users with a socket on their own channel here: a page open (task reminders ask)."""
        ids = (user_of_channel(name) for name, subs in self._by_channel.items() if subs)
        return {uid for uid in ids if uid is not None}

    def subscriber_count(self) -> int:
        return len({s for subs in self._by_channel.values() for s in subs})

    async def replay(self, channels: Iterable[str], after: int, limit: int | None = None) -> Replay:
        """What `channels` got after seq `after`, oldest first; at most `limit` (max_replay)."""
        limit = limit or self.max_replay
        if self._reader is None:
            return Replay([], more=False, gap=after < self.last_seq)
        async with self._reader.use() as conn:
            rows = await conn.fetch(_REPLAY_SQL, sorted(set(channels)), after, limit + 1)
            oldest = await conn.fetchval("SELECT min(seq) FROM event_log")
        gap = oldest is not None and 0 < after < oldest - 1
        return Replay([_envelope(r) for r in rows[:limit]], more=len(rows) > limit, gap=gap)

    # ---- receiving (every instance) -------------------------------------------------------

    def _on_lost(self) -> None:
        self._synced = False
        self._ready.clear()

    async def _on_listening(self) -> None:
        self._inbox.put_nowait(_RESYNC)

    def _on_notify(self, body: str) -> None:
        # fast path: nothing queued ahead and everything inline -> deliver without a task switch
        if self._synced and not self._busy and self._inbox.empty():
            envelopes = _parse_body(body)
            if envelopes is not None:
                for env in envelopes:
                    self._deliver(env)
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
        envelopes = _parse_body(body)
        if envelopes is not None:
            for env in envelopes:
                self._deliver(env)
            return
        assert self._reader is not None
        async with self._reader.use() as conn:
            if body == CATCH_UP:
                await self._catch_up(conn)
                return
            # some messages were too big for NOTIFY: read them back from the log
            seqs = [int(line.split("\t", 1)[0]) for line in body.split("\n") if line]
            rows = await conn.fetch(_BY_SEQ_SQL, seqs)
        for row in rows:
            self._deliver(_envelope(row))

    async def _catch_up(self, conn: asyncpg.Connection) -> int:
        """Deliver every row after the last one delivered (commit order == seq order)."""
        missed = 0
        while True:
            rows = await conn.fetch(_AFTER_SQL, self.last_seq, 1000)
            for row in rows:
                self._deliver(_envelope(row))
            missed += len(rows)
            if len(rows) < 1000:
                return missed

    async def _resync(self) -> None:
        assert self._reader is not None
        async with self._reader.use() as conn:
            if self._last_seq is None:
                # first start: sockets connecting from now on replay by themselves
                max_seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM event_log")
                self._last_seq = int(max_seq)
            else:
                missed = await self._catch_up(conn)
                if missed:
                    logger.info("caught up %d events missed while the listener was away", missed)
        self._synced = True
        self._ready.set()
        pending, self._pending = self._pending, []
        for body in pending:
            await self._handle(body)

    def _deliver(self, env: Envelope) -> None:
        if self._last_seq is not None and env.seq <= self._last_seq:
            return
        self._last_seq = env.seq
        subs = self._by_channel.get(env.channel)
        if subs:
            for sub in tuple(subs):
                sub.offer(env)

    # ---- retention ------------------------------------------------------------------------

    async def cleanup(self) -> int:
        """Delete event_log rows older than the retention; returns how many went."""
        if self._writer is None:
            return 0
        total = 0
        async with self._writer.use() as conn:
            while True:
                status = await conn.execute(_CLEANUP_SQL, float(self._retention), 5000)
                deleted = int(status.split()[-1])
                total += deleted
                if deleted < 5000:
                    break
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


def _notify_body(envelopes: list[Envelope]) -> str:
    """One line per message: `seq\\tframe` when it fits the NOTIFY budget, else `seq` alone.

    A batch too big even for its sequence numbers says CATCH_UP: read everything new.
    """
    lines: list[str] = []
    size = 0
    for env in envelopes:
        line = f"{env.seq}\t{env.frame}"
        cost = len(line.encode()) + 1
        if size + cost > NOTIFY_BUDGET:
            line = str(env.seq)
            cost = len(line) + 1
        lines.append(line)
        size += cost
    return "\n".join(lines) if size <= NOTIFY_BUDGET else CATCH_UP


notify_body = _notify_body  # public: notifier.reminders publishes within its own transaction


def _parse_body(body: str) -> list[Envelope] | None:
    """The envelopes of a notification, or None when some must be read from event_log."""
    out: list[Envelope] = []
    for line in body.split("\n"):
        if not line:
            continue
        head, sep, frame = line.partition("\t")
        if not sep:
            return None
        data = json.loads(frame)
        out.append(Envelope(int(head), data["channel"], data["type"], frame))
    return out
