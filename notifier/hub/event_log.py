"""The `event_log` table: every published message numbered, kept for replay, cleaned up later.

Publishers of all instances append under one transaction-scoped advisory lock, so seq order ==
commit order == the order PostgreSQL delivers the NOTIFY that announces them. There is one way
to append, in two kinds of transaction: `append` runs its own (the hub's writer connection),
`append_in` joins a caller's open one (the rows, the lock and the NOTIFY then live and die with
the caller's work: a rolled-back message is never seen, a committed one is never lost).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import NO_FLUSH_SQL, driver_connection
from notifier.channels import Message
from notifier.hub.frames import Envelope, dumps
from notifier.hub.notify import CATCH_UP, NOTIFY_BUDGET

# Serialises publishers of all instances so seq order == commit order == notification order.
PUBLISH_LOCK_KEY = 0x5C12_E5E0_0001

# A row as sockets receive it (the format of notifier.hub.frames.encode_frame), made by the
# database: the appending statement announces frames whose numbers and times it only now
# gives, and every read of the log sends that same text.
_FRAME_SQL = (
    """'{"seq":' || seq || ',"channel":' || to_json(channel)::text"""
    """ || ',"type":' || to_json(type)::text || ',"payload":' || payload::text"""
    """ || ',"at":"' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
    """ || '+00:00"}'"""
)
_ROW_SQL = f"seq, channel, type, {_FRAME_SQL} AS frame"


# One statement, so one round trip, alone or in a caller's transaction: take the publish lock
# (held until the transaction ends, so nobody numbers a row before its holder has committed),
# number the rows, NOTIFY them. The body (notifier.hub.notify) carries the frames when all
# fit, else their numbers alone (listeners read them back), else CATCH_UP; PostgreSQL sends
# it at COMMIT (never after a rollback), in commit order.
def _append_sql(source: str, rows: str, order: str, announce: str, lock: str = "") -> str:
    """The append, its messages from `source` (CTEs, each starting with a comma), `rows` in
    it (`alias.c` channel, `.t` type, `.p` payload jsonb) in `order`; NOTIFY channel
    `announce`; `lock`: more of the lock's row, computed from the row that holds it (so
    only once it is held: a select list's order is PostgreSQL's habit, not a promise)."""
    return f"""
WITH lock AS (
    SELECT held{lock} FROM (SELECT pg_advisory_xact_lock({PUBLISH_LOCK_KEY}) AS held) AS taken
){source},
rows AS (
    INSERT INTO event_log (channel, type, payload)
    SELECT u.c, u.t, u.p::jsonb
    FROM lock, {rows}
    ORDER BY {order}
    RETURNING {_ROW_SQL}
),
size AS (
    SELECT sum(octet_length(frame) + length(seq::text) + 2) AS inline,
           sum(length(seq::text) + 1) AS numbers
    FROM rows
),
announced AS (
    SELECT pg_notify({announce}, CASE
        WHEN inline <= {NOTIFY_BUDGET}
            THEN (SELECT string_agg(seq || E'\\t' || frame, E'\\n' ORDER BY seq) FROM rows)
        WHEN numbers <= {NOTIFY_BUDGET}
            THEN (SELECT string_agg(seq::text, E'\\n' ORDER BY seq) FROM rows)
        ELSE '{CATCH_UP}' END)
    FROM size WHERE inline IS NOT NULL
)
SELECT seq, channel, type, frame FROM rows, announced ORDER BY seq
"""


# Far more messages than the service publishes in the at most 0.6 s (three WAL writer delays)
# of commits a crash can lose, plus the 32 numbers a sequence logs ahead: numbers are cheap.
CRASH_MARGIN = 10_000
_SEQ = "pg_get_serial_sequence('event_log', 'seq')"
_GIVEN = ("", "unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(c, t, p, n)", "u.n")
# `append_in` runs on whatever connection its caller's transaction has, which nothing renumbers
# after a database crash (the hub's own do, `skip_numbers_a_crash_may_have_lost`): under the
# lock, the numbering moves past where it stands and past $5, the last seq the caller's hub
# delivered, when $6 says its listener is away (the database may have crashed) or the log's
# numbering stands below $5 (it did, and the listener has not noticed yet).
_LAST = f"coalesce(pg_sequence_last_value({_SEQ}::regclass), 0)"


def _past(delivered: str) -> str:
    """The numbering moved `CRASH_MARGIN` past both where it stands and `delivered`."""
    return f"setval({_SEQ}, greatest({delivered}::bigint, {_LAST}) + {CRASH_MARGIN})"


_PAST_A_CRASH = f", CASE WHEN $6::boolean OR {_LAST} < $5::bigint THEN {_past('$5')} END"
_APPEND_SQL = _append_sql(*_GIVEN, "$4", _PAST_A_CRASH)
# `append`'s own transaction does not wait for its WAL flush: the publish lock is held through
# the COMMIT, so a flush there is a wait for every publisher of every instance (a screen-pop's
# among them), and a message is delivered at once anyway. A crash of the database may lose the
# last such commits (PostgreSQL: "synchronous_commit = off" loses at most three WAL writer
# delays, never consistency), and event_log's numbering with them:
# `skip_numbers_a_crash_may_have_lost` (a hub's start, and whenever its connections come back)
# and `_PAST_A_CRASH` (in `append_in`) make sure nobody drops a new message for a number it saw
# before the crash. `append_in`'s commit is left as its caller's transaction is: that work is
# more than messages.
_NO_FLUSH = ", " + NO_FLUSH_SQL
_APPEND_OWN_SQL = _append_sql(*_GIVEN, "$4", _NO_FLUSH)
# Staged messages (`stage_in`, in their work's transaction) moved here once it has committed:
# a batch by its id, or what a crash left staged for longer than $1 seconds. Deleted as they
# are numbered, so each is published once, whoever moves it. Without waiting for the flush
# either: a database crash that loses the move loses the deletion too, and the next look
# publishes them again (at least once, then, where a crash of the service alone is exactly once).
_STAGED_BATCH = (
    # tied to the lock, so no plan deletes (and locks rows) before holding it
    ", staged AS (DELETE FROM event_staged WHERE batch = $1 AND (SELECT true FROM lock)"
    " RETURNING n, channel AS c, type AS t, payload AS p)",
    "staged AS u",
    "u.n",
)
_RELEASE_SQL = _append_sql(*_STAGED_BATCH, "$2", _NO_FLUSH)
_STAGED_LEFT = (
    ", staged AS (DELETE FROM event_staged"
    " WHERE staged_at < now() - make_interval(secs => $1) AND (SELECT true FROM lock)"
    " RETURNING batch, n, staged_at, channel AS c, type AS t, payload AS p)",
    "staged AS u",
    "u.staged_at, u.batch, u.n",
)
_LEFTOVERS_SQL = _append_sql(*_STAGED_LEFT, "$2", _NO_FLUSH)
_STAGE_SQL = """
INSERT INTO event_staged (batch, n, channel, type, payload, staged_at)
SELECT $1, u.n, u.c, u.t, u.p::jsonb, clock_timestamp()
FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(c, t, p, n)
"""
_SKIP_SQL = f"SELECT {_past('$1')}"
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
CLEANUP_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Replay:
    envelopes: list[Envelope]
    more: bool  # more rows than the limit: ask again after the last one
    gap: bool  # rows after `after` were already cleaned up: the reader's state is stale

    @property
    def truncated(self) -> bool:
        return self.more or self.gap


def envelope(row: Mapping[Any, Any]) -> Envelope:
    """An event_log row as sent."""
    return Envelope(row["seq"], row["channel"], row["type"], row["frame"])


async def _append(
    conn: asyncpg.Connection, messages: list[Message], announce: str, sql: str, *more: object
) -> list[Envelope]:
    rows = await conn.fetch(
        sql,
        [m.channel for m in messages],
        [m.type for m in messages],
        [dumps(m.payload) for m in messages],
        announce,
        *more,
    )
    return [envelope(r) for r in rows]


def _by_itself(conn: asyncpg.Connection, name: str) -> None:
    """The numbering statements that commit by themselves hold the publish lock for their own
    statement only: inside someone's transaction they would hold it to that one's end."""
    if conn.is_in_transaction():
        raise RuntimeError(f"event_log.{name} commits by itself: in a transaction, append_in")


async def append(
    conn: asyncpg.Connection, messages: list[Message], announce: str
) -> list[Envelope]:
    """Number `messages` and NOTIFY `announce` with them, committed in one round trip (the
    statement is its own transaction: the publish lock is held for it alone); returns them as
    committed, in seq order."""
    _by_itself(conn, "append")
    return await _append(conn, messages, announce, _APPEND_OWN_SQL)


async def append_in(
    session: AsyncSession,
    messages: list[Message],
    announce: str,
    *,
    delivered: int,
    crashed: bool,
) -> None:
    """`append` within the caller's transaction: committed (and announced) with its work.

    The publish lock is held from here to the caller's COMMIT, so call it last, just before.
    `delivered`: the last seq the caller's hub delivered (0: none); `crashed`: its listener is
    away, so the database may have crashed and taken the log's numbering back. `crashed`, or a
    numbering that stands below `delivered`, moves it on first (`_PAST_A_CRASH`), as the hub's
    own connections do when they reopen.
    """
    await session.flush()  # the work's own writes first: the lock waits for nothing else
    driver = await driver_connection(session)  # in the work's transaction, begun if need be
    if not driver.is_in_transaction():
        raise RuntimeError("event_log.append_in needs an open transaction")
    await _append(driver, messages, announce, _APPEND_SQL, delivered, crashed)


async def stage_in(session: AsyncSession, messages: list[Message]) -> UUID:
    """Write `messages` in the caller's open transaction, unnumbered and with no lock held:
    committed with its work, then `release`d. Returns the batch's id."""
    batch = uuid4()
    driver = await driver_connection(session)  # in the work's transaction, begun if need be
    if not driver.is_in_transaction():
        raise RuntimeError("event_log.stage_in needs an open transaction")
    await driver.execute(
        _STAGE_SQL,
        batch,
        [m.channel for m in messages],
        [m.type for m in messages],
        [dumps(m.payload) for m in messages],
    )
    return batch


async def release(conn: asyncpg.Connection, batch: UUID, announce: str) -> list[Envelope]:
    """Number and announce a committed staged batch, as `append` does; nothing if somebody
    released it already (`release_leftovers`)."""
    _by_itself(conn, "release")
    return [envelope(r) for r in await conn.fetch(_RELEASE_SQL, batch, announce)]


async def release_leftovers(
    conn: asyncpg.Connection, older_than_seconds: float, announce: str
) -> list[Envelope]:
    """Number and announce what has stayed staged for longer than `older_than_seconds`: its
    work committed, and the process that was to release it went down first."""
    _by_itself(conn, "release_leftovers")
    rows = await conn.fetch(_LEFTOVERS_SQL, float(older_than_seconds), announce)
    return [envelope(r) for r in rows]


async def skip_numbers_a_crash_may_have_lost(conn: asyncpg.Connection, delivered: int) -> None:
    """Move event_log's numbering `CRASH_MARGIN` past both where it stands and `delivered` (the
    last seq the caller's hub delivered, 0 if none): a crash that lost the log's last commits
    may have taken it back below numbers some page or instance saw. Under the publish lock, so
    nobody numbers a row meanwhile and no two hubs move it apart."""
    async with conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock({PUBLISH_LOCK_KEY})")
        await conn.execute(_SKIP_SQL, delivered)


async def after(conn: asyncpg.Connection, seq: int, limit: int) -> list[Envelope]:
    return [envelope(r) for r in await conn.fetch(_AFTER_SQL, seq, limit)]


async def by_seq(conn: asyncpg.Connection, seqs: list[int]) -> list[Envelope]:
    return [envelope(r) for r in await conn.fetch(_BY_SEQ_SQL, seqs)]


async def last_seq(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM event_log"))


async def replay(
    conn: asyncpg.Connection, channels: Iterable[str], after_seq: int, limit: int
) -> Replay:
    """What `channels` got after `after_seq`, oldest first, at most `limit`."""
    rows = await conn.fetch(_REPLAY_SQL, sorted(set(channels)), after_seq, limit + 1)
    oldest = await conn.fetchval("SELECT min(seq) FROM event_log")
    gap = oldest is not None and 0 < after_seq < oldest - 1
    return Replay([envelope(r) for r in rows[:limit]], more=len(rows) > limit, gap=gap)


async def cleanup(conn: asyncpg.Connection, retention_seconds: float) -> int:
    """Delete rows older than the retention, a batch at a time; returns how many went."""
    total = 0
    while True:
        status = await conn.execute(_CLEANUP_SQL, float(retention_seconds), CLEANUP_BATCH)
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < CLEANUP_BATCH:
            return total
