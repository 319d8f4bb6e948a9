"""The router behind FastAGI: batches concurrent calls onto one asyncpg connection.

Why this shape:
- Every inbound call waits on this (the caller hears ringing only after it answers), and calls come
  in bursts. Calls arriving while a batch is in the database queue up and go together in the next
  batch: one round trip per batch (callers, busy agents and round-robin picks in one statement,
  repository.BATCH_SQL), however many calls it holds.
- One dedicated connection, no pool: on 2 cores a pool was no faster than one connection, and a
  pool resets each connection on release (one more round trip); two connections taking turns
  were slower still under a burst (bench/agi_bench.py). Several instances each have their own
  router; fairness between them is the database's `routing_pick` (advisory lock).
- Schedules change rarely and are read on every call: cached for `schedule_ttl` seconds, dropped
  at once when the database NOTIFYs a change (triggers of migration 0002), and on reconnect.
- After the AMI link is lost, calls may have ended unseen: their agents stay "talking" in
  agent_states until the follower's reconcile commits (crm_core/calls/pbx_sync.py). A batch that
  reads "not in sync" waits for that commit (its NOTIFY), at most `sync_wait` seconds, then
  decides on fresh rows; once per episode, after which it decides on what is known. The flag
  rides in the batch's statement: nothing more on the usual path.
- The database being down must not hold a call: connect and queries are bounded, and after a
  failure calls get an empty target at once for `retry_after` seconds (the dialplan then sends
  them to the queue) instead of each one waiting for its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_core.calls import pbx_sync
from crm_core.models_common import utcnow
from crm_core.pg_connection import DedicatedConnection
from crm_core.phones import lookup_key
from crm_core.routing import repository as sql
from crm_core.routing.rules import (
    BUSY_STATES,
    ROUTABLE_ROLES,
    Agent,
    Reason,
    RouteDecision,
    apply_picks,
    on_duty,
    plan_batch,
)

logger = logging.getLogger(__name__)

UNAVAILABLE = RouteDecision(reason=Reason.unavailable)
# BATCH_SQL's $6 with waiting off: no episode is newer
_NEVER_WAIT = 2**63 - 1


@dataclass(slots=True)
class RouterStats:
    batches: int = 0
    routed: int = 0
    largest_batch: int = 0
    failures: int = 0
    sync_waits: int = 0  # batches that waited for agent_states to follow the PBX
    sync_gave_up: int = 0  # of them, those decided on what was known when `sync_wait` ran out


class Decision(asyncio.Future[RouteDecision]):
    """A routing decision to come; `then`, if set, is called with it the moment it is made.

    Whoever awaits the future resumes on the loop's next turn, as with any future; `then` runs
    at once, in the batch's own step. Under a burst the loop's next turn is a millisecond or
    more away (every ready socket is served first), and for a FastAGI request (telephony/agi.py
    sets `then`) that would be a millisecond more of a caller waiting for the first ring.
    """

    __slots__ = ("then",)

    def __init__(self, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self.then: Callable[[asyncio.Future[RouteDecision]], None] | None = None


@dataclass(slots=True)
class _Pending:
    e164: str | None
    did: str
    future: Decision


class Router:
    """`await router.route(caller, did, env)` -> RouteDecision; never raises for a call."""

    def __init__(
        self,
        dsn: str,
        *,
        region: str = "RU",
        schedule_ttl: float = 5.0,
        connect_timeout: float = 1.0,
        query_timeout: float = 1.0,
        retry_after: float = 1.0,
        max_batch: int = 1000,
        sync_wait: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # Generic plans, always: the batch statement's shape never changes, and the default (a
        # fresh custom plan whenever PostgreSQL guesses it may pay) re-planned most batches:
        # 0.55 ms instead of 0.27 ms for a batch of one call, in routing_pick's statements too.
        self._db = DedicatedConnection(
            dsn,
            "routing",
            connect_timeout=connect_timeout,
            server_settings={"plan_cache_mode": "force_generic_plan"},
            on_open=self._opened,
        )
        self._region = region
        self._schedule_ttl = schedule_ttl
        self._connect_timeout = connect_timeout
        self._query_timeout = query_timeout
        self._retry_after = retry_after
        self._max_batch = max_batch
        self._sync_wait = sync_wait
        # the out-of-sync episode (pbx_sync.epoch) this router waited for in vain: it does not
        # wait for it again (a PBX out of reach for minutes would delay every call)
        self._gave_up = 0 if sync_wait > 0 else _NEVER_WAIT
        self._sync_news = asyncio.Event()  # a NOTIFY on pbx_sync.CHANNEL since it was cleared
        self._clock = clock
        self._agents: list[Agent] | None = None
        self._agents_loaded = 0.0
        self._duty: tuple[list[Agent], float, list[Agent]] | None = None
        self._pending: list[_Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._down = False
        self._closed = False
        self.stats = RouterStats()

    @classmethod
    def from_engine(cls, engine: AsyncEngine, **options: Any) -> Router:
        """A router on the same database as `engine`, with its own connection."""
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(url, **options)

    def route(self, caller: str, did: str, env: Mapping[str, str]) -> Awaitable[RouteDecision]:
        """The decision for one call, as a future: the batch loop resolves it.

        A plain function returning a future rather than a coroutine: under a burst every call
        passes here, and a coroutine would cost each one a task in the FastAGI server.
        """
        loop = self._loop  # the connection's loop; asking asyncio for it costs a getpid() call
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        future = Decision(loop=loop)
        if self._closed or time.monotonic() < self._down_until:
            future.set_result(UNAVAILABLE)
            return future
        self._pending.append(_Pending(lookup_key(caller, self._region), did, future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain(), name="routing-batches")
        return future

    @staticmethod
    def _then(future: Decision) -> None:
        assert future.then is not None
        try:
            future.then(future)
        except Exception:  # theirs, but it must not stop the batch: the other calls wait on it
            logger.exception("routing: a decision's listener failed")

    def invalidate(self) -> None:
        """Forget the cached schedules: the next call reads them again."""
        self._agents = None

    async def warm_up(self) -> bool:
        """Connect and load the schedules now rather than on the first call."""
        try:
            async with asyncio.timeout(self._connect_timeout + self._query_timeout):
                await self._load_agents(await self._connection())
        except Exception as exc:
            self._failed(exc)
            return False
        return True

    async def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._resolve_all(UNAVAILABLE)
        await self._db.close(self._query_timeout)

    # --- the batch loop ------------------------------------------------------------------------

    async def _drain(self) -> None:
        # Started by the first call; calls arriving meanwhile queue up and go in the next batch.
        while self._pending:
            if time.monotonic() < self._down_until:
                self._resolve_all(UNAVAILABLE)
                return
            batch = [p for p in self._pending[: self._max_batch] if not p.future.done()]
            del self._pending[: self._max_batch]
            if not batch:
                continue
            try:
                decisions = await self._decide([p.e164 for p in batch])
            except Exception as exc:
                self._failed(exc)
                decisions = [UNAVAILABLE] * len(batch)
            else:
                self._recovered()
            self.stats.batches += 1
            self.stats.routed += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            debug = logger.isEnabledFor(logging.DEBUG)
            for p, decision in zip(batch, decisions, strict=True):
                if not p.future.done():  # the caller may have hung up meanwhile
                    p.future.set_result(decision)
                    if p.future.then is not None:
                        self._then(p.future)
                if debug:
                    logger.debug(
                        "routed %s -> %r (%s) for DID %s",
                        p.e164,
                        decision.target,
                        decision.reason,
                        p.did,
                    )

    async def _decide(self, e164s: list[str | None]) -> list[RouteDecision]:
        """The batch's decisions. While agent_states may not follow the PBX (pbx_sync), wait for
        them to, up to `sync_wait`, and read again: an agent of a call that ended unseen would
        still look busy. Each read is bounded by the connect and query timeouts."""
        started: float | None = None  # when this batch began to wait
        gave_up = False
        while True:
            self._sync_news.clear()  # before the read: news committed after it ends the wait
            async with asyncio.timeout(self._connect_timeout + self._query_timeout):
                duty, read = await self._read(e164s)
            if read.unsynced is None:
                if started is not None and not gave_up:
                    waited = time.monotonic() - started
                    logger.info(
                        "routing: waited %.3f s for agent_states to follow the PBX",
                        waited,
                        extra={"waited_s": round(waited, 3), "calls": len(e164s)},
                    )
                return self._decisions(e164s, duty, read)
            if gave_up:  # a newer episode began meanwhile: given up as well (no picks taken)
                self._gave_up = read.unsynced
                continue
            if started is None:
                started = time.monotonic()
                self.stats.sync_waits += 1
            left = started + self._sync_wait - time.monotonic()
            if left <= 0:
                gave_up = True
                self._gave_up = read.unsynced
                self.stats.sync_gave_up += 1
                logger.warning(
                    "routing: agent_states still not in sync with the PBX after %.1f s: "
                    "deciding on what is known",
                    self._sync_wait,
                    extra={"pbx_sync_epoch": read.unsynced, "calls": len(e164s)},
                )
                continue  # the next read takes its picks: this episode is given up
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._sync_news.wait()

    async def _read(self, e164s: list[str | None]) -> tuple[list[Agent], sql.BatchRead]:
        """One round trip: callers, busy agents, the sync flag and (in sync) the picks."""
        conn = await self._connection()
        duty = await self._on_duty(conn)
        rows = await conn.fetch(
            sql.BATCH_SQL,
            [e or "" for e in e164s],
            [a.user_id for a in duty],
            [a.extension for a in duty],
            sorted(BUSY_STATES),
            self._clock(),
            self._gave_up,
        )
        return duty, sql.batch_result(rows)

    def _decisions(
        self, e164s: list[str | None], duty: list[Agent], read: sql.BatchRead
    ) -> list[RouteDecision]:
        plan = plan_batch(
            [read.callers.get(e) if e else None for e in e164s], duty, read.busy, read.away
        )
        if len(read.picks) != len(plan.round_robin):  # BATCH_SQL disagrees with the rules: a bug
            logger.error("routing: %d picks for %d calls", len(read.picks), len(plan.round_robin))
        apply_picks(plan, read.picks, {a.user_id: a.extension for a in duty})
        return plan.decisions

    # --- connection and cache --------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        return await self._db.connect()

    async def _opened(self, conn: asyncpg.Connection) -> None:
        await conn.add_listener(sql.SCHEDULES_CHANNEL, self._on_schedules_changed)
        await conn.add_listener(pbx_sync.CHANNEL, self._on_sync_news)
        self._agents = None  # changes made while we were disconnected were not notified

    def _on_schedules_changed(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        logger.debug("schedules changed (%s): cache dropped", payload)
        self._agents = None

    def _on_sync_news(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._sync_news.set()  # a waiting batch reads again

    async def _on_duty(self, conn: asyncpg.Connection) -> list[Agent]:
        """Who is on duty now; evaluated at most once a second (shifts change on the minute)."""
        agents = await self._load_agents(conn)
        now = time.monotonic()
        if self._duty is None or self._duty[0] is not agents or now - self._duty[1] >= 1.0:
            self._duty = (agents, now, on_duty(agents, self._clock()))
        return self._duty[2]

    async def _load_agents(self, conn: asyncpg.Connection) -> list[Agent]:
        now = time.monotonic()
        if self._agents is not None and now - self._agents_loaded < self._schedule_ttl:
            return self._agents
        users = await conn.fetch(sql.ROUTABLE_USERS_SQL, list(ROUTABLE_ROLES))
        ids = [u["id"] for u in users]
        intervals = await conn.fetch(sql.INTERVALS_SQL, ids)
        exceptions = await conn.fetch(sql.EXCEPTIONS_SQL, ids)
        self._agents = sql.agents_from_rows(users, intervals, exceptions)
        self._agents_loaded = now
        return self._agents

    # --- failures ----------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self._down_until = time.monotonic() + self._retry_after
        if not self._down:
            logger.error(
                "routing database unavailable (%s: %s): empty targets for %.1f s, then retry",
                type(exc).__name__,
                exc,
                self._retry_after,
            )
        self._down = True
        # a query cut by the timeout leaves the protocol mid-way: never reuse it
        self._db.terminate()

    def _recovered(self) -> None:
        if self._down:
            logger.warning("routing database reachable again")
        self._down = False

    def _resolve_all(self, decision: RouteDecision) -> None:
        pending, self._pending = self._pending, []
        for p in pending:
            if not p.future.done():
                p.future.set_result(decision)
