"""Leader election with a PostgreSQL session advisory lock on a dedicated connection.

The lock belongs to the connection: when the leading instance dies, or only its connection does,
PostgreSQL releases it and the next follower's poll takes it. The old leader notices the loss of
its own connection (termination callback, or a failed check at the next poll) and is demoted.
Between the loss and the old leader's notice there can be up to one poll interval where both
believe they lead, so the guarded work must tolerate a short overlap (the AMI listener does: call
logging is idempotent by linkedid).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable

from crm_core.background import cancel_and_wait
from crm_core.pg_connection import DedicatedConnection

logger = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a name (hash() changes between processes)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LeaderElection:
    """Exactly one holder of `key` among all instances; hooks run on gaining and losing it."""

    def __init__(
        self,
        dsn: str,
        key: int,
        on_elected: Hook,
        on_demoted: Hook,
        *,
        poll_seconds: float = 1.0,
        name: str = "leader",
    ) -> None:
        self._db = DedicatedConnection(dsn, f"{name} election")
        self._key = key
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._poll = poll_seconds
        self._name = name
        self._leader = False
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def backend_pid(self) -> int | None:
        return self._db.backend_pid

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"election:{self._name}")

    async def stop(self) -> None:
        """Step down (releasing the lock by closing the connection) and stop competing."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._demote("stopping")
        await self._db.close()

    async def wait_until(self, leader: bool) -> None:
        """Until this elector becomes (or stops being) the leader; bound it with asyncio.timeout."""
        while self._leader != leader:
            self._changed.clear()
            await self._changed.wait()

    async def _demote(self, why: str) -> None:
        if not self._leader:
            return
        self._leader = False
        self._changed.set()
        logger.warning("%s: no longer the leader (%s)", self._name, why)
        try:
            await self._on_demoted()
        except Exception:
            logger.exception("%s: on_demoted failed", self._name)

    async def _elect(self) -> None:
        self._leader = True
        self._changed.set()
        logger.info("%s: elected leader (backend pid %s)", self._name, self.backend_pid)
        try:
            await self._on_elected()
        except Exception:
            # keep the lock: another instance would fail the same way; the hook logs and retries
            logger.exception("%s: on_elected failed", self._name)

    async def _run(self) -> None:
        while True:
            lost = self._db.lost
            try:
                conn = await self._db.connect()
                lost = self._db.lost  # the lock lives exactly as long as this connection
                if self._leader:
                    # the lock lives as long as this connection: prove it still does
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self._poll * 3)
                else:
                    got = await asyncio.wait_for(
                        conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key), self._poll * 3
                    )
                    if got:
                        await self._elect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "%s: election connection failed (%s: %s)", self._name, type(exc).__name__, exc
                )
                lost.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._poll)
            if lost.is_set():
                await self._demote("connection lost")
                await self._db.close()
                await asyncio.sleep(self._poll)
