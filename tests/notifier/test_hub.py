"""The event hub against the real PostgreSQL: numbering, NOTIFY, replay, priorities, bounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import StagedPublisher, asyncpg_dsn, collect_event, unit_of_work
from crm_core.events.messages import CallRingingMessage
from crm_core.events.types import CallEvent, TaskCreated
from notifier.channels import Message, messages_for
from notifier.hub import EventHub, SlowConsumer, Subscriber, event_log, postgres
from notifier.hub.frames import Envelope, encode_frame
from notifier.hub.notify import CATCH_UP, NOTIFY_BUDGET, NOTIFY_CHANNEL, parse_body, seqs_of

pytestmark = pytest.mark.usefixtures("db")

WAIT = 10.0


@pytest.fixture
async def hub(database_url: str) -> AsyncIterator[EventHub]:
    h = EventHub(database_url, supervisor_flush_seconds=0.2, queue_size=64)
    await h.start()
    async with asyncio.timeout(WAIT):
        await h.wait_ready()
    yield h
    await h.stop()


def ring(ext: str, n: int, **payload: Any) -> CallEvent:
    # a screen-pop as the catalogue describes it (the call's view), numbered by `n`
    view = {"linkedid": f"L{n}"}
    return CallEvent(CallRingingMessage.TYPE, f"L{n}", (ext,), {"call": view, "n": n, **payload})


async def commit(
    sessions: async_sessionmaker[AsyncSession], hub: EventHub, *events: object
) -> None:
    async with unit_of_work(sessions, hub.publish) as session:
        await session.execute(text("SELECT 1"))
        for event in events:
            collect_event(session, event)


def backend_of(hub: EventHub) -> postgres.PostgresBackend:
    assert hub._postgres is not None
    return hub._postgres


def live_from_start(hub: EventHub, channel: str) -> Subscriber:
    """A subscriber of `channel`, live from the first message (nothing to replay)."""
    sub = hub.subscribe({channel})
    sub.go_live(0)
    return sub


async def _listener_held_away(
    hub: EventHub, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> asyncio.Event:
    """Ends the hub's listening connection and holds its resync (the catch-up from event_log)
    until the returned event is set; returns once the hub knows its listener is away."""
    backend = hub._postgres
    assert backend is not None and hub.bus is not None
    back = asyncio.Event()
    resync = backend._resync

    async def held_resync() -> None:
        await back.wait()
        await resync()

    monkeypatch.setattr(backend, "_resync", held_resync)
    assert await as_admin(database_url, "SELECT pg_terminate_backend($1)", hub.bus.backend_pid)
    async with asyncio.timeout(WAIT):
        while hub.ready:
            await asyncio.sleep(0.02)
    return back


async def take(sub: Subscriber, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while len(got) < count:
            got.extend(json.loads(f) for f in await sub.next_frames())
    return got


async def nothing_more(sub: Subscriber, seconds: float = 0.4) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await sub.next_frames()


async def as_admin(database_url: str, sql: str, *args: Any) -> Any:
    """One statement on a connection of its own (what an operator, or a crash, does)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_unix_socket_url_connects(database_url: str) -> None:
    # the embedded server's URL names a socket directory: postgresql://…@/postgres?host=/tmp/…
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    assert asyncpg_dsn("postgresql+asyncpg://u@h/db") == "postgresql://u@h/db"


async def test_committed_events_reach_their_channels_in_seq_order(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession]
) -> None:
    op101 = live_from_start(hub, "ext:101")
    op102 = live_from_start(hub, "ext:102")
    await commit(sessions, hub, ring("101", 1))
    await commit(sessions, hub, ring("101", 2), TaskCreated(1, "callback", 5, None))
    got = await take(op101, 2)
    assert [m["payload"]["n"] for m in got] == [1, 2]
    assert got[0]["seq"] < got[1]["seq"]
    assert {m["channel"] for m in got} == {"ext:101"}
    assert set(got[0]) == {"seq", "channel", "type", "payload", "at"}
    await nothing_more(op102)


async def test_rolled_back_unit_of_work_publishes_nothing(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    sub = live_from_start(hub, "ext:101")
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions, hub.publish) as session:
            collect_event(session, ring("101", 1))
            raise RuntimeError("boom")
    await nothing_more(sub)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM event_log") == 0
    finally:
        await conn.close()


async def test_payload_too_big_for_notify_is_read_from_the_log(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sub = live_from_start(hub, "ext:101")
    big = "x" * 20_000
    await commit(sessions, hub, ring("101", 1, note=big), ring("101", 2))
    got = await take(sub, 2)
    assert [m["payload"]["n"] for m in got] == [1, 2]
    assert got[0]["payload"]["note"] == big


async def test_replay_then_live_without_gaps_or_duplicates(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for n in range(1, 4):
        await commit(sessions, hub, ring("101", n))
    first = (await hub.replay({"ext:101"}, 0)).envelopes
    assert [e.seq for e in first] == sorted(e.seq for e in first)
    seen = first[0].seq  # the page saw only the first one before its socket dropped

    sub = hub.subscribe({"ext:101"})  # registered first: holds live messages
    await commit(sessions, hub, ring("101", 4))  # committed between subscribe and replay
    await asyncio.sleep(0.2)  # its NOTIFY is now held
    replay = await hub.replay(sub.channels, seen)
    assert not replay.truncated
    replayed = [json.loads(e.frame)["payload"]["n"] for e in replay.envelopes]
    assert replayed == [2, 3, 4]
    sub.go_live(replay.envelopes[-1].seq)
    await commit(sessions, hub, ring("101", 5))
    live = await take(sub, 1)
    assert [m["payload"]["n"] for m in live] == [5]  # 4 came by replay only
    await nothing_more(sub)


async def test_supervisor_broadcasts_wait_but_pops_do_not(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession]
) -> None:
    board = live_from_start(hub, "supervisors")
    op = live_from_start(hub, "ext:101")
    await commit(sessions, hub, ring("101", 1))
    assert len(await take(op, 1)) == 1
    # the board gets it too (at once after a quiet spell; batched under a burst, which
    # test_hub_parts checks on a Subscriber without timing), then the next ones in order
    assert [m["payload"]["n"] for m in await take(board, 1)] == [1]
    await commit(sessions, hub, ring("101", 2))
    await commit(sessions, hub, ring("101", 3))
    assert [m["payload"]["n"] for m in await take(board, 2)] == [2, 3]


async def test_slow_subscriber_is_dropped_and_others_keep_receiving(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession]
) -> None:
    slow = live_from_start(hub, "ext:101")
    fast = live_from_start(hub, "ext:101")
    received = 0
    for n in range(hub.queue_size + 5):
        await commit(sessions, hub, ring("101", n))
        received += len(await take(fast, 1))
    assert received == hub.queue_size + 5
    assert slow.closed_reason is not None and "too slow" in slow.closed_reason
    assert slow.pending == 0  # its memory is released at once
    with pytest.raises(SlowConsumer):
        await slow.next_frames()


async def test_listener_reconnects_and_catches_up(
    hub: EventHub,
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sub = live_from_start(hub, "ext:101")
    await commit(sessions, hub, ring("101", 1))
    await take(sub, 1)
    assert hub.bus is not None
    pid = hub.bus.backend_pid
    back = await _listener_held_away(hub, database_url, monkeypatch)
    # published by another instance while the listener is down: its NOTIFY is lost, the log
    # is not (this hub's own would reach its sockets straight after its commit)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await event_log.append(conn, messages_for([ring("101", 2), ring("101", 3)]), NOTIFY_CHANNEL)
    finally:
        await conn.close()
    back.set()
    got = await take(sub, 2)
    assert [m["payload"]["n"] for m in got] == [2, 3]
    assert hub.bus.backend_pid != pid


async def test_cleanup_keeps_recent_rows(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await commit(sessions, hub, ring("101", 1), ring("101", 2))
    assert await hub.cleanup() == 0  # 15 minutes of retention
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("UPDATE event_log SET created_at = now() - interval '1 hour'")
        await commit(sessions, hub, ring("101", 3))
        assert await hub.cleanup() == 4  # two events, each for ext:101 and supervisors
        assert await conn.fetchval("SELECT count(*) FROM event_log") == 2
    finally:
        await conn.close()
    # a page that saw only seq 1 missed rows that are gone: told so, to reload its state
    assert (await hub.replay({"ext:101"}, 1)).gap


async def test_local_mode_fans_out_without_a_database() -> None:
    hub = EventHub(None)
    await hub.start()
    sub = live_from_start(hub, "ext:101")
    await hub.publish([ring("101", 1), ring("102", 2), ring("101", 3)])
    got = await take(sub, 2)
    assert [m["seq"] for m in got] == [1, 5]  # 2..4: ext:102 and supervisors messages
    await hub.stop()


@pytest.fixture
async def two_hubs(database_url: str) -> AsyncIterator[tuple[EventHub, EventHub]]:
    """Two instances of the service's hub on one database."""
    hubs = (EventHub(database_url, queue_size=64), EventHub(database_url, queue_size=64))
    for h in hubs:
        await h.start()
    async with asyncio.timeout(WAIT):
        for h in hubs:
            await h.wait_ready()
    yield hubs
    for h in hubs:
        await h.stop()


def listening(hubs: tuple[EventHub, EventHub]) -> list[Subscriber]:
    subs = [h.subscribe({"ext:101"}) for h in hubs]
    for sub in subs:
        sub.go_live(0)
    return subs


async def logged_ns(database_url: str) -> list[int]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT payload->>'n' AS n FROM event_log WHERE channel = 'ext:101' ORDER BY seq"
        )
    finally:
        await conn.close()
    return [int(r["n"]) for r in rows]


async def waiting_for_the_publish_lock(database_url: str, count: int) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with asyncio.timeout(WAIT):
            while (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                < count
            ):
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def test_appended_in_a_callers_transaction_reaches_every_instance_once_or_never(
    two_hubs: tuple[EventHub, EventHub],
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    subs = listening(two_hubs)
    one, two = two_hubs
    # appended (numbered, its NOTIFY queued), then the work fails: rolled back with it
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions, one.publish) as session:
            await session.execute(text("SELECT 1"))
            await one.publish_in(session, [ring("101", 1)])
            raise RuntimeError("boom")
    # the append is the transaction's first statement, then its work commits
    async with sessions() as session, session.begin():
        await two.publish_in(session, [ring("101", 2)])
        await session.execute(text("SELECT 1"))
    # a unit of work with the hub's transactional publisher writes its events before COMMIT
    async with unit_of_work(sessions, one.transactional) as session:
        work = await session.scalar(text("SELECT pg_current_xact_id()::xid::text"))
        collect_event(session, ring("101", 3))
    for sub in subs:
        got = await take(sub, 2)
        assert [m["payload"]["n"] for m in got] == [2, 3]
        assert got[0]["seq"] < got[1]["seq"]
    for sub in subs:
        await nothing_more(sub)
    assert await logged_ns(database_url) == [2, 3]
    async with sessions() as session:  # the row's xmin: the transaction that inserted it
        writer = await session.scalar(
            text("SELECT xmin::text FROM event_log WHERE payload->>'n' = '3'")
        )
    assert writer == work  # written by the work's own transaction, not published after it


async def appended_and_heard(
    database_url: str, messages: list[Message]
) -> tuple[list[Envelope], str]:
    """`event_log.append` on a connection of its own, and the NOTIFY body a listener heard."""
    listener = await asyncpg.connect(asyncpg_dsn(database_url))
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener("test_body", lambda *args: heard.put_nowait(args[3]))
        envelopes = await event_log.append(conn, messages, "test_body")
        async with asyncio.timeout(WAIT):
            return envelopes, await heard.get()
    finally:
        await conn.close()
        await listener.close()


def message(n: int, note: str = "x", channel: str = "ext:101") -> Message:
    return Message(channel, CallRingingMessage.TYPE, {"n": n, "note": note})


async def test_the_database_makes_the_frame_the_local_hub_makes(database_url: str) -> None:
    # the appending statement makes each frame (it gives the numbers and times); every read of
    # the log sends that text, and the hub without a database makes the same one in Python
    tricky = "O'Brien \\ \\' '' \\n\nИван «Пётр» $$ E'x' \t \x01 \u2028 end"
    (env,), body = await appended_and_heard(database_url, [message(1, tricky, 'ext:"1"')])
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow(
            "SELECT payload::text AS payload, created_at FROM event_log WHERE seq = $1", env.seq
        )
        made = encode_frame(
            env.seq, 'ext:"1"', CallRingingMessage.TYPE, row["payload"], row["created_at"]
        )
        assert env.frame == made
        assert json.loads(env.frame)["payload"]["note"] == tricky
        assert parse_body(body) == [env]
        # a time on the second still has its microseconds, as isoformat is told to give them
        await conn.execute(
            "UPDATE event_log SET created_at = date_trunc('second', created_at) WHERE seq = $1",
            env.seq,
        )
        (again,) = await event_log.after(conn, env.seq - 1, 1)
        second = await conn.fetchval("SELECT created_at FROM event_log WHERE seq = $1", env.seq)
        assert again.frame == encode_frame(
            env.seq, 'ext:"1"', CallRingingMessage.TYPE, row["payload"], second
        )
        assert json.loads(again.frame)["at"].endswith(".000000+00:00")
    finally:
        await conn.close()


async def test_a_batch_travels_inline_when_it_fits_else_by_its_numbers_else_catch_up(
    database_url: str,
) -> None:
    envelopes, body = await appended_and_heard(database_url, [message(1), message(2)])
    assert parse_body(body) == envelopes and [e.seq for e in envelopes] == sorted(
        e.seq for e in envelopes
    )
    # one frame too big for NOTIFY: the whole batch by its numbers, read back from the log
    envelopes, body = await appended_and_heard(
        database_url, [message(3), message(4, "y" * NOTIFY_BUDGET)]
    )
    assert parse_body(body) is None
    assert seqs_of(body) == [e.seq for e in envelopes]
    assert len(body.encode()) <= NOTIFY_BUDGET
    # too many even for their numbers: every listener catches up from the log
    envelopes, body = await appended_and_heard(
        database_url, [message(n, "z" * 20) for n in range(5, 2005)]
    )
    assert body == CATCH_UP and len(envelopes) == 2000


async def test_append_refuses_a_connection_in_a_transaction(database_url: str) -> None:
    # it commits by itself: inside someone's transaction it would not, and hold the lock
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            with pytest.raises(RuntimeError):
                await event_log.append(conn, [message(1)], "test_body")
    finally:
        await conn.close()


async def test_another_instance_hears_quotes_backslashes_and_cyrillic_exactly(
    two_hubs: tuple[EventHub, EventHub], sessions: async_sessionmaker[AsyncSession]
) -> None:
    # the NOTIFY body travels as a string constant in the statement that commits (one round
    # trip fewer): what the other instance hears must be what was published, byte for byte
    subs = listening(two_hubs)
    one, _ = two_hubs
    note = "O'Brien \\ \\' '' \\n\nИван «Пётр» $$ E'x' \t end"
    await commit(sessions, one, ring("101", 1, note=note))
    for sub in subs:
        (got,) = await take(sub, 1)
        assert got["payload"]["note"] == note


async def test_a_transaction_holding_the_log_orders_the_next_appender_after_its_commit(
    two_hubs: tuple[EventHub, EventHub],
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    first_appended = asyncio.Event()
    release_first = asyncio.Event()
    subs = listening(two_hubs)
    one, two = two_hubs

    async def first() -> None:
        async with sessions() as session, session.begin():
            await one.publish_in(session, [ring("101", 1)])
            first_appended.set()
            await release_first.wait()  # committing late, still holding the publish lock

    async def second() -> None:
        await first_appended.wait()
        async with sessions() as session, session.begin():
            await two.publish_in(session, [ring("101", 2)])

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_appended.wait()
    # the hub's own writer waits its turn too
    tasks.append(asyncio.create_task(two.publish([ring("101", 3)])))
    await waiting_for_the_publish_lock(database_url, 2)
    release_first.set()
    await asyncio.gather(*tasks)
    # numbered in commit order: the writer (and the second appender) only after the first's
    # commit, so every instance sees each seq once and in increasing order, nothing skipped
    ns = await logged_ns(database_url)
    assert ns[0] == 1 and sorted(ns) == [1, 2, 3]
    for sub in subs:
        got = await take(sub, 3)
        assert [m["payload"]["n"] for m in got] == ns
        assert [m["seq"] for m in got] == sorted({m["seq"] for m in got})
    for sub in subs:
        await nothing_more(sub)


async def test_the_local_hub_publishes_after_the_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hub = EventHub(None)
    await hub.start()
    sub = hub.subscribe({"ext:101"})
    sub.go_live(0)
    assert hub.transactional == hub.publish  # no log to write in a transaction
    with pytest.raises(RuntimeError):
        async with sessions() as session:
            await hub.publish_in(session, [ring("101", 1)])
    async with unit_of_work(sessions, hub.transactional) as session:
        collect_event(session, ring("101", 2))
    got = await take(sub, 1)
    assert [m["payload"]["n"] for m in got] == [2]
    await nothing_more(sub)  # the refused publish_in sent nothing either
    await hub.stop()


async def _crash_takes_the_log_back(database_url: str, to: int) -> None:
    """What a database crash may do to a log appended without waiting for its WAL flush: its
    last commits lost (rows after `to`), and the sequence back where they began."""
    await as_admin(database_url, "DELETE FROM event_log WHERE seq > $1", to)
    await as_admin(
        database_url, "SELECT setval(pg_get_serial_sequence('event_log', 'seq'), $1)", to
    )


async def _delivered_then_taken_back(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> tuple[Subscriber, list[int]]:
    """Two messages delivered here, then a crash takes the log back to the first."""
    sub = live_from_start(hub, "ext:101")
    await commit(sessions, hub, ring("101", 1))
    await commit(sessions, hub, ring("101", 2))
    seen = [m["seq"] for m in await take(sub, 2)]
    await _crash_takes_the_log_back(database_url, seen[0])
    return sub, seen


async def _written_in_a_transaction(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], n: int
) -> None:
    """Message `n` in a caller's transaction, on a pooled connection (none of the hub's)."""
    async with sessions() as session, session.begin():
        await hub.publish_in(session, [ring("101", n)])


async def test_the_hub_appends_without_waiting_for_the_flush_and_a_caller_keeps_its_own(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # the hub's own append: the publish lock is not held through a WAL flush
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():  # the statement's own transaction, opened to look in
            await event_log._append(conn, [message(1)], "test_body", event_log._APPEND_OWN_SQL)
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        # and that is the statement the hub's `append` sends
        await event_log.append(conn, [message(2)], "test_body")
        sent = await as_admin(
            database_url, "SELECT query FROM pg_stat_activity WHERE pid = $1", conn.get_server_pid()
        )
        assert "set_config('synchronous_commit', 'off', true)" in sent
    finally:
        await conn.close()
    # appended in a caller's transaction: its work commits as it would without the message
    async with sessions() as session, session.begin():
        await hub.publish_in(session, [ring("101", 1)])
        assert await session.scalar(text("SHOW synchronous_commit")) == "on"


@pytest.mark.parametrize(
    "ended",
    [
        # every connection of the hub's: its listener (resyncs), writer and reader
        "query ILIKE '%event_log%' OR query ILIKE 'LISTEN%'",
        # its writer alone: what reopens it must renumber by itself
        "query ILIKE '%pg_advisory_xact_lock%'",
    ],
    ids=["all", "writer"],
)
async def test_after_a_crash_took_the_log_back_new_messages_are_numbered_past_the_old(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], database_url: str, ended: str
) -> None:
    sub = live_from_start(hub, "ext:101")
    await commit(sessions, hub, ring("101", 1))
    await commit(sessions, hub, ring("101", 2))
    await commit(sessions, hub, ring("101", 3))
    seen = [m["seq"] for m in await take(sub, 3)]
    await _crash_takes_the_log_back(database_url, seen[0])
    killed = await as_admin(
        database_url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE datname = current_database() AND pid <> pg_backend_pid() AND ({ended})",
    )
    assert killed >= 1
    await commit(sessions, hub, ring("101", 4))
    await commit(sessions, hub, ring("101", 5))
    # numbered after what was delivered, so not dropped as seen (it was, at seen[1] and [2])
    got = await take(sub, 2)
    assert [m["payload"]["n"] for m in got] == [4, 5]
    assert got[0]["seq"] > seen[-1]


async def test_once_its_listener_is_back_a_hub_has_numbered_past_what_it_delivered(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # the rows a crash lost were delivered here; the next message is appended in a caller's
    # transaction on a pooled connection, which nothing renumbers: the hub's resync must have
    sub, seen = await _delivered_then_taken_back(hub, sessions, database_url)
    assert hub.bus is not None
    pid = hub.bus.backend_pid
    assert await as_admin(database_url, "SELECT pg_terminate_backend($1)", pid)
    async with asyncio.timeout(WAIT):
        while hub.bus.backend_pid in (pid, None) or not hub.ready:
            await asyncio.sleep(0.02)
    await _written_in_a_transaction(hub, sessions, 3)
    (got,) = await take(sub, 1)
    assert got["payload"]["n"] == 3 and got["seq"] > seen[-1]


async def test_while_its_listener_is_away_a_hub_numbers_past_what_another_delivered(
    two_hubs: tuple[EventHub, EventHub],
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the database crashed and this hub's listener is away (its resync held): it cannot know
    # what other instances delivered, so a message written in a caller's transaction moves the
    # numbering past the log's end with the margin, and the other instance's page keeps it
    away, other = two_hubs
    back = await _listener_held_away(away, database_url, monkeypatch)
    sub, seen = await _delivered_then_taken_back(other, sessions, database_url)
    await _written_in_a_transaction(away, sessions, 3)
    (got,) = await take(sub, 1)
    back.set()
    assert got["payload"]["n"] == 3 and got["seq"] > seen[-1]


async def test_before_its_listener_notices_a_crash_a_hub_numbers_a_transaction_past_it(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # a failover sends no FIN: the listener may still look connected while a pooled connection
    # already reaches a database whose log went back below what this hub delivered
    sub, seen = await _delivered_then_taken_back(hub, sessions, database_url)
    assert hub.ready
    await _written_in_a_transaction(hub, sessions, 3)
    (got,) = await take(sub, 1)
    assert got["payload"]["n"] == 3 and got["seq"] > seen[-1]
    # and in the usual case the numbering is left where it stands
    await _written_in_a_transaction(hub, sessions, 4)
    (after,) = await take(sub, 1)
    assert got["seq"] < after["seq"] < got["seq"] + event_log.CRASH_MARGIN


async def test_a_hub_started_after_a_crash_numbers_past_what_pages_may_have_seen(
    database_url: str,
) -> None:
    first = EventHub(database_url, queue_size=64)
    await first.start()
    async with asyncio.timeout(WAIT):
        await first.wait_ready()
    try:
        sub = live_from_start(first, "ext:101")
        await first.publish([ring("101", n) for n in range(1, 41)])
        seen = [m["seq"] for m in await take(sub, 40)]
    finally:
        await first.stop()
    # the database and the service both went down: the log lost its last 39 messages, and
    # the restarted service knows nothing of them; a page still open holds their numbers
    await _crash_takes_the_log_back(database_url, seen[0])
    again = EventHub(database_url, queue_size=64)
    await again.start()
    async with asyncio.timeout(WAIT):
        await again.wait_ready()
    try:
        sub = live_from_start(again, "ext:101")
        await again.publish([ring("101", 41)])
        (got,) = await take(sub, 1)
        assert got["seq"] > seen[-1]
    finally:
        await again.stop()


async def staged_left(database_url: str) -> list[str]:
    """The channels of the messages staged and not yet published."""
    sql = "SELECT coalesce(array_agg(channel ORDER BY batch, n), '{}') FROM event_staged"
    return list(await as_admin(database_url, sql))


async def test_staged_in_the_work_they_announce_and_published_after_its_commit_once(
    two_hubs: tuple[EventHub, EventHub],
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    subs = listening(two_hubs)
    one, _ = two_hubs
    staged = one.staged
    assert isinstance(staged, StagedPublisher)
    at_release: list[tuple[list[str], list[int]]] = []

    async def release_seen(batch: Any, events: list[Any]) -> None:
        # what another connection sees once the work has committed and before its release
        at_release.append((await staged_left(database_url), await logged_ns(database_url)))
        await staged.release(batch, events)

    seen = StagedPublisher(staged.stage, release_seen, staged.publish)
    with pytest.raises(RuntimeError):  # rolled back: nothing staged, nothing published
        async with unit_of_work(sessions, seen) as session:
            await session.execute(text("SELECT 1"))
            collect_event(session, ring("101", 1))
            raise RuntimeError("boom")
    assert at_release == []
    async with unit_of_work(sessions, seen) as session:
        await session.execute(text("SELECT 1"))
        collect_event(session, ring("101", 2))
        collect_event(session, ring("101", 3))
    # committed with the work, staged and not yet in event_log, until its release
    assert at_release == [(["ext:101", "supervisors"] * 2, [])]
    for sub in subs:  # every instance, in order, once
        got = await take(sub, 2)
        assert [m["payload"]["n"] for m in got] == [2, 3]
        await nothing_more(sub)
    assert await logged_ns(database_url) == [2, 3]
    assert await staged_left(database_url) == []


async def test_news_a_crash_left_staged_after_its_commit_is_published_by_the_next_hub(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = EventHub(database_url, queue_size=64)
    assert first._postgres is not None

    async def down_before_its_sweep() -> None:
        # its first round takes everything staged: had it come after the commit below (a
        # matter of scheduling), the process would not have gone down before publishing
        await asyncio.Event().wait()

    monkeypatch.setattr(first._postgres, "_staged_loop", down_before_its_sweep)
    await first.start()
    async with asyncio.timeout(WAIT):
        await first.wait_ready()
    staged = first.staged
    assert isinstance(staged, StagedPublisher)

    async def went_down(batch: object, events: list[Any]) -> None:
        raise RuntimeError("the process went down between the commit and the release")

    try:
        crashing = StagedPublisher(staged.stage, went_down, staged.publish)
        async with unit_of_work(sessions, crashing) as session:
            await session.execute(text("SELECT 1"))
            collect_event(session, ring("101", 7))
    finally:
        await first.stop()
    # committed, not published: only staged
    assert "ext:101" in await staged_left(database_url)
    assert await logged_ns(database_url) == []
    # the next hub to sync (this instance restarted, or another) publishes it at once
    again = EventHub(database_url, queue_size=64)
    sub = live_from_start(again, "ext:101")  # whatever it delivers from its start
    await again.start()
    try:
        (got,) = await take(sub, 1)
        assert got["payload"]["n"] == 7
        await nothing_more(sub)
    finally:
        await again.stop()
    assert await logged_ns(database_url) == [7]
    assert await staged_left(database_url) == []


@pytest.mark.parametrize("then", ["next_release", "next_publish", "retry"])
async def test_what_a_failed_release_left_goes_out_first_with_the_next_release_or_soon_after(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    then: str,
) -> None:
    # the staged loop's regular round is an hour away: only the way under test publishes it
    monkeypatch.setattr(postgres, "STAGED_GRACE_SECONDS", 3600.0)
    if then != "retry":
        monkeypatch.setattr(postgres, "RETRY_SECONDS", 3600.0)
    hub = EventHub(database_url, queue_size=64)
    sub = live_from_start(hub, "ext:101")
    await hub.start()
    real = event_log.release
    failures = [RuntimeError("the writer's connection broke")]

    async def fails_once(conn: asyncpg.Connection, batch: Any, announce: str) -> list[Envelope]:
        if failures:
            raise failures.pop()
        return await real(conn, batch, announce)

    monkeypatch.setattr(event_log, "release", fails_once)
    want = [1] if then == "retry" else [1, 2]
    try:
        async with asyncio.timeout(WAIT):
            await hub.wait_ready()
        async with unit_of_work(sessions, hub.staged) as session:  # its release fails
            await session.execute(text("SELECT 1"))
            collect_event(session, ring("101", 1))
        assert failures == []
        if then == "next_release":
            async with unit_of_work(sessions, hub.staged) as session:
                await session.execute(text("SELECT 1"))
                collect_event(session, ring("101", 2))
        elif then == "next_publish":  # (as the pop lane publishes, after its own commit)
            await hub.publish([ring("101", 2)])
        got = await take(sub, len(want))  # the failed batch's news first
        assert [m["payload"]["n"] for m in got] == want
        await nothing_more(sub)
    finally:
        await hub.stop()
    assert await logged_ns(database_url) == want
    assert await staged_left(database_url) == []


async def test_a_batch_released_by_somebody_else_is_not_published_again_nor_announced(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    listener = await asyncpg.connect(asyncpg_dsn(database_url))
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener("test_body", lambda *args: heard.put_nowait(args[3]))
        async with sessions() as session, session.begin():
            batch = await event_log.stage_in(session, [message(1), message(2)])
        await conn.execute("UPDATE event_staged SET staged_at = staged_at - interval '1 minute'")
        swept = await event_log.release_leftovers(conn, 5.0, "test_body")
        assert [json.loads(e.frame)["payload"]["n"] for e in swept] == [1, 2]
        async with asyncio.timeout(WAIT):
            assert parse_body(await heard.get()) == swept
        # the process that staged it releases it late: nothing left, nothing numbered or said
        assert await event_log.release(conn, batch, "test_body") == []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.4):
                await heard.get()
    finally:
        await conn.close()
        await listener.close()
    assert await logged_ns(database_url) == [1, 2]


@pytest.fixture
async def other(database_url: str) -> AsyncIterator[EventHub]:
    """The hub of another instance of the service, on the same database."""
    h = EventHub(database_url, queue_size=64)
    await h.start()
    async with asyncio.timeout(WAIT):
        await h.wait_ready()
    yield h
    await h.stop()


async def pops(sub: Subscriber, count: int) -> list[tuple[int, bool]]:
    """The next `count` messages' n, each with whether it came numbered."""
    return [(m["payload"]["n"], "seq" in m) for m in await take(sub, count)]


def _hold_appends(
    monkeypatch: pytest.MonkeyPatch,
    *,
    until_run: asyncio.Event | None = None,
    until_answer: asyncio.Event | None = None,
) -> asyncio.Event:
    """The hubs' own appends wait for `until_run` before their statement and for `until_answer`
    after it (as if its answer came late); the event returned is set once one has committed."""
    append = event_log.append
    committed = asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> list[Envelope]:
        if until_run is not None:
            await until_run.wait()
        envelopes = await append(*args, **kwargs)
        committed.set()
        if until_answer is not None:
            await until_answer.wait()
        return envelopes

    monkeypatch.setattr(event_log, "append", held)
    return committed


async def _pop_unanswered(
    hub: EventHub, monkeypatch: pytest.MonkeyPatch, *, wait: float = WAIT
) -> tuple[Subscriber, asyncio.Event, asyncio.Task[None]]:
    """A socket of ext:101 here, and pop 1 published by `hub`, its append committed but not
    answered until the event returned is set (what the listener hears meanwhile waits at most
    `wait`); others' appends answer at once."""
    monkeypatch.setattr(postgres, "SHOWN_WAIT_SECONDS", wait)
    here = live_from_start(hub, "ext:101")
    answer = asyncio.Event()
    append = event_log.append
    committed = _hold_appends(monkeypatch, until_answer=answer)
    published = asyncio.create_task(hub.publish_shown_first([ring("101", 1)]))
    async with asyncio.timeout(WAIT):
        await committed.wait()
    monkeypatch.setattr(event_log, "append", append)
    return here, answer, published


async def test_a_pop_reaches_the_sockets_here_before_event_log_numbers_it_and_each_once(
    hub: EventHub,
    other: EventHub,
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = live_from_start(hub, "ext:101")
    replaying = hub.subscribe({"ext:101"})  # a page whose replay has not ended
    there = live_from_start(other, "ext:101")
    numbering = asyncio.Event()
    _hold_appends(monkeypatch, until_run=numbering)
    published = asyncio.create_task(hub.publish_shown_first([ring("101", 1)]))
    (shown,) = await take(here, 1)  # while its append is held: not numbered yet
    assert "seq" not in shown and shown["payload"]["n"] == 1
    assert await as_admin(database_url, "SELECT count(*) FROM event_log") == 0
    numbering.set()
    await published
    await commit(sessions, hub, ring("101", 2))
    # its numbered copy skipped the socket it was shown to, nobody else's
    assert await pops(here, 1) == [(2, True)]
    replaying.go_live(0)
    assert [m["payload"]["n"] for m in await take(replaying, 2)] == [1, 2]
    numbered = await take(there, 2)
    assert [m["payload"]["n"] for m in numbered] == [1, 2]
    await nothing_more(here)
    logged = await as_admin(
        database_url, "SELECT count(*) FROM event_log WHERE seq = $1", numbered[0]["seq"]
    )
    assert logged == 1


async def test_a_pops_copy_heard_before_its_append_answers_still_skips_its_sockets(
    hub: EventHub,
    other: EventHub,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the append's answer comes late: its NOTIFY, and another instance's message after it,
    # are heard first; they wait for the numbers the shown messages were given
    here, answer, published = await _pop_unanswered(hub, monkeypatch)
    await commit(sessions, other, ring("101", 2))
    backend = backend_of(hub)
    async with asyncio.timeout(WAIT):  # both NOTIFYs heard: one taken by the dispatcher
        while not (backend._busy and backend._inbox.qsize() >= 1):
            await asyncio.sleep(0.01)
    (shown,) = await take(here, 1)
    assert "seq" not in shown and shown["payload"]["n"] == 1
    await nothing_more(here, 0.1)  # the other's message waits for the shown one's number
    answer.set()
    await published
    assert await pops(here, 1) == [(2, True)]
    await nothing_more(here)


async def test_a_catch_up_reading_a_pop_before_its_append_answers_skips_its_sockets(
    hub: EventHub,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a catch-up under way (here asked by a NOTIFY too big to carry even numbers) reads the pop
    # from event_log while its append is committed but unanswered: it waits for its number
    backend = backend_of(hub)
    after = event_log.after
    reading, read = asyncio.Event(), asyncio.Event()

    async def read_later(*args: Any, **kwargs: Any) -> list[Envelope]:
        await reading.wait()
        envelopes = await after(*args, **kwargs)
        read.set()
        return envelopes

    monkeypatch.setattr(event_log, "after", read_later)
    backend._on_notify(CATCH_UP)  # queued: the dispatcher takes it (holds its read) meanwhile
    here, answer, published = await _pop_unanswered(hub, monkeypatch, wait=6 * WAIT)
    reading.set()
    (shown,) = await take(here, 1)
    assert "seq" not in shown and shown["payload"]["n"] == 1
    async with asyncio.timeout(WAIT):
        await read.wait()
    await nothing_more(here)  # the catch-up read the pop, and waits for its number
    async with asyncio.timeout(WAIT):  # not holding the reader: a socket's replay goes on
        replay = await hub.replay({"ext:101"}, 0)
    assert [json.loads(e.frame)["payload"]["n"] for e in replay.envelopes] == [1]
    answer.set()
    await published
    await commit(sessions, hub, ring("101", 2))
    assert await pops(here, 1) == [(2, True)]
    await nothing_more(here)


async def test_a_pop_whose_append_fails_stays_shown_and_delivery_goes_on(
    hub: EventHub,
    other: EventHub,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    append = event_log.append

    async def lost(*args: Any, **kwargs: Any) -> list[Envelope]:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(event_log, "append", lost)
    here = live_from_start(hub, "ext:101")
    with pytest.raises(ConnectionResetError):
        await hub.publish_shown_first([ring("101", 1)])
    monkeypatch.setattr(event_log, "append", append)
    await commit(sessions, other, ring("101", 2))
    assert await pops(here, 2) == [(1, False), (2, True)]
    # the failed append may have committed: the next pop goes numbered, the one after is shown
    await hub.publish_shown_first([ring("101", 3)])
    await hub.publish_shown_first([ring("101", 4)])
    assert await pops(here, 2) == [(3, True), (4, False)]
    await nothing_more(here)


async def _staged_and_release_failed(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pop 1 committed with its message staged, and the release after the commit failed."""
    release = event_log.release

    async def failing(*args: Any, **kwargs: Any) -> list[Envelope]:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(event_log, "release", failing)
    async with unit_of_work(sessions, hub.staged) as session:  # (a failed release is logged)
        collect_event(session, ring("101", 1))
    monkeypatch.setattr(event_log, "release", release)


async def test_what_a_failed_release_left_goes_out_before_a_pop_which_is_then_not_shown(
    hub: EventHub,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = live_from_start(hub, "ext:101")
    backend = backend_of(hub)
    await _staged_and_release_failed(hub, sessions, monkeypatch)
    assert not backend.may_show
    await hub.publish_shown_first([ring("101", 2)])
    assert await pops(here, 2) == [(1, True), (2, True)]
    assert backend.may_show


async def test_a_pop_is_not_shown_while_a_message_numbered_here_is_not_delivered_here(
    hub: EventHub, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another instance's message is heard late, so this hub's next message waits for it (a
    # gap), and the pop after that must not overtake it on the socket
    here = live_from_start(hub, "ext:101")
    backend, bus = hub._postgres, hub.bus
    assert backend is not None and bus is not None
    heard: list[str] = []
    monkeypatch.setattr(bus, "_on_message", heard.append)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await event_log.append(conn, messages_for([ring("101", 1)]), NOTIFY_CHANNEL)
    finally:
        await conn.close()
    await hub.publish([ring("101", 2)])  # numbered after 1: not delivered here before it
    assert not backend.may_show
    await hub.publish_shown_first([ring("101", 3)])
    await nothing_more(here, 0.2)  # not shown: it would come before 1 and 2
    async with asyncio.timeout(WAIT):
        while len(heard) < 3:
            await asyncio.sleep(0.01)
    for body in heard:
        backend._on_notify(body)
    assert await pops(here, 3) == [(1, True), (2, True), (3, True)]
    assert backend.may_show


async def test_an_append_that_does_not_answer_holds_delivery_only_so_long(
    hub: EventHub,
    other: EventHub,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here, answer, published = await _pop_unanswered(hub, monkeypatch, wait=0.2)
    await commit(sessions, other, ring("101", 2))
    # the other's message is not held for ever: what was heard goes on, the pop's copy with it
    # (it is not known yet which sockets it skips: it comes again)
    assert await pops(here, 3) == [(1, False), (1, True), (2, True)]
    answer.set()
    await published
    await commit(sessions, other, ring("101", 3))
    assert (await pops(here, 1))[-1] == (3, True)


async def test_a_pop_is_not_shown_while_the_listener_is_away(
    database_url: str,
    hub: EventHub,
    monkeypatch: pytest.MonkeyPatch,
    other: EventHub,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # what it missed meanwhile comes with the catch-up: a pop shown now would come before it
    back = await _listener_held_away(hub, database_url, monkeypatch)
    here = live_from_start(hub, "ext:101")
    await commit(sessions, other, ring("101", 1))
    await hub.publish_shown_first([ring("101", 2)])
    await nothing_more(here, 0.2)
    back.set()
    assert await pops(here, 2) == [(1, True), (2, True)]


async def test_after_an_append_without_an_answer_the_next_pop_goes_numbered(
    hub: EventHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it may have committed: its copy may come later than a pop shown now
    here = live_from_start(hub, "ext:101")
    backend = backend_of(hub)
    append = event_log.append

    async def committed_unanswered(*args: Any, **kwargs: Any) -> list[Envelope]:
        await append(*args, **kwargs)
        raise ConnectionResetError("the answer was lost")

    monkeypatch.setattr(event_log, "append", committed_unanswered)
    with pytest.raises(ConnectionResetError):
        await hub.publish([ring("101", 1)])
    monkeypatch.setattr(event_log, "append", append)
    assert not backend.may_show
    await hub.publish_shown_first([ring("101", 2)])
    assert await pops(here, 2) == [(1, True), (2, True)]
    assert backend.may_show


async def test_a_pop_is_not_shown_while_a_failed_releases_leftovers_are_retried(
    hub: EventHub, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the retry (the staged loop's, RETRY_SECONDS after the failure) has taken them, and not
    # numbered them yet: a pop shown now would come before them (the gate stays closed by the
    # retry under way, and by the failed statement that has had no answered one after it)
    here = live_from_start(hub, "ext:101")
    backend = backend_of(hub)
    leftovers = event_log.release_leftovers
    go = asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> list[Envelope]:
        await go.wait()
        return await leftovers(*args, **kwargs)

    await _staged_and_release_failed(hub, sessions, monkeypatch)
    monkeypatch.setattr(event_log, "release_leftovers", held)
    async with asyncio.timeout(WAIT):
        while not backend._releasing_leftovers:
            await asyncio.sleep(0.01)
    assert not backend._left_behind and not backend.may_show
    published = asyncio.create_task(hub.publish_shown_first([ring("101", 2)]))
    await nothing_more(here, 0.2)
    go.set()
    await published
    assert await pops(here, 2) == [(1, True), (2, True)]
