"""PostgreSQL LISTEN/NOTIFY on one dedicated connection that comes back when it is lost.

Every service instance listens, so an event committed by any instance reaches the sockets of all.
Notifications sent while the connection is down are lost by PostgreSQL; `on_listening` runs after
every (re)connection so the owner can catch up from its own durable log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from crm_core.background import cancel_and_wait
from crm_core.pg_connection import DedicatedConnection

logger = logging.getLogger(__name__)


class PgBus:
    """LISTEN on `channel`; `on_message(payload)` is called for every notification, in order."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_message: Callable[[str], None],
        *,
        on_listening: Callable[[], Awaitable[None]] | None = None,
        on_lost: Callable[[], None] | None = None,
        retry_seconds: float = 1.0,
        check_seconds: float = 10.0,
    ) -> None:
        self._db = DedicatedConnection(dsn, f"listener on {channel}", on_open=self._listen)
        self._channel = channel
        self._on_message = on_message
        self._on_listening = on_listening
        self._on_lost = on_lost
        self._retry = retry_seconds
        self._check = check_seconds
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection (tests terminate it)."""
        return self._db.backend_pid

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"pgbus:{self._channel}")

    async def wait_connected(self) -> None:
        """Until LISTEN is in place; bound it with asyncio.timeout."""
        await self._connected.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._db.close()

    async def _listen(self, conn: asyncpg.Connection) -> None:
        await conn.add_listener(self._channel, self._notify)

    def _notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._on_message(payload)
        except Exception:  # one bad message must not kill the listener
            logger.exception("handling a notification on %s failed", self._channel)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                conn = await self._db.connect()
                lost = self._db.lost
                self._connected.set()
                logger.info(
                    "listening on %s (backend pid %s)", self._channel, conn.get_server_pid()
                )
                failures = 0
                if self._on_listening is not None:
                    await self._on_listening()
                while not lost.is_set():
                    # a connection can die silently (no FIN): ask it something now and then
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self._check)
                    if not lost.is_set():
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), self._check)
                logger.warning("listener connection on %s lost; reconnecting", self._channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                # log the first failure loudly, then quietly while the database stays away
                log = logger.warning if failures == 1 else logger.debug
                log(
                    "listener on %s failed (%s: %s); retrying",
                    self._channel,
                    type(exc).__name__,
                    exc,
                )
            finally:
                if self._connected.is_set():
                    self._connected.clear()
                    if self._on_lost is not None:
                        self._on_lost()
                await self._db.close()
            await asyncio.sleep(self._retry)
