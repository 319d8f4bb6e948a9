"""The `event_log` table: every published message numbered, kept for replay, cleaned up later.

Publishers of all instances append under one transaction-scoped advisory lock, so seq order ==
commit order == the order PostgreSQL delivers the NOTIFY that announces them. There is one way
to append, in two kinds of transaction: `append` runs its own (the hub's writer connection),
`append_in` joins a caller's open one (the rows, the lock and the NOTIFY then live and die with
the caller's work: a rolled-back message is never seen, a committed one is never lost).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.channels import Message
from notifier.hub.frames import Envelope, dumps, encode_frame
from notifier.hub.notify import notify_body

# Serialises publishers of all instances so seq order == commit order == notification order.
PUBLISH_LOCK_KEY = 0x5C12_E5E0_0001
# held until the transaction ends, so nobody numbers a row before the holder has committed
_LOCK_SQL = f"SELECT pg_advisory_xact_lock({PUBLISH_LOCK_KEY})"

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
    seq, channel, type_ = row["seq"], row["channel"], row["type"]
    return Envelope(
        seq, channel, type_, encode_frame(seq, channel, type_, row["payload"], row["created_at"])
    )


async def _number(conn: asyncpg.Connection, messages: list[Message]) -> list[Envelope]:
    """INSERT, in `conn`'s open transaction that holds the publish lock; returns the numbered
    messages, in seq order (to be announced before that transaction commits)."""
    rows = await conn.fetch(
        _INSERT_SQL,
        [m.channel for m in messages],
        [m.type for m in messages],
        [dumps(m.payload) for m in messages],
    )
    return sorted((envelope(r) for r in rows), key=lambda e: e.seq)


def _literal(text: str) -> str:
    """A string constant for a simple-protocol statement: an E'' string means the same whatever
    standard_conforming_strings says (the body is JSON: no NUL can be in it)."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _announce_sql(announce: str, envelopes: list[Envelope]) -> str:
    """The NOTIFY of numbered messages, one statement with no parameters, so it can share a
    round trip; PostgreSQL sends it at COMMIT (never after a rollback), in commit order."""
    return f"SELECT pg_notify({_literal(announce)}, {_literal(notify_body(envelopes))})"


async def append(
    conn: asyncpg.Connection, messages: list[Message], announce: str
) -> list[Envelope]:
    """Number `messages` and NOTIFY `announce` with them, in one transaction; returns them as
    committed, in seq order. Three round trips: the publish lock is held across them, so each
    one saved is one less wait for every other publisher."""
    # simple-protocol BEGIN + lock in one round trip; the key is our own constant
    await conn.execute(f"BEGIN; {_LOCK_SQL}")
    try:
        envelopes = await _number(conn, messages)
        await conn.execute(f"{_announce_sql(announce, envelopes)}; COMMIT")  # one round trip
        return envelopes
    except BaseException:
        if not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise


async def append_in(session: AsyncSession, messages: list[Message], announce: str) -> None:
    """`append` within the caller's transaction: committed (and announced) with its work.

    The publish lock is held from here to the caller's COMMIT, so call it last, just before.
    """
    await session.flush()  # the work's own writes first: the lock waits for nothing else
    conn = await session.connection()
    # through SQLAlchemy first: it opens the transaction on the driver if nothing has yet
    await conn.exec_driver_sql(_LOCK_SQL)
    driver = (await conn.get_raw_connection()).driver_connection
    if not isinstance(driver, asyncpg.Connection) or not driver.is_in_transaction():
        raise RuntimeError("event_log.append_in needs an open asyncpg transaction")
    await driver.execute(_announce_sql(announce, await _number(driver, messages)))


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
