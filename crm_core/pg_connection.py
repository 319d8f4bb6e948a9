"""One asyncpg connection of the service's own, opened on demand and reopened when it is lost.

Some work cannot share a pooled connection: LISTEN (notifications arrive on the connection that
listens), a session advisory lock (it lives as long as its connection), and the routing hot path
(a pool's reset on release is one round trip too many). The leader election, the LISTEN bus,
the event hub's writer and reader, and the FastAGI router each keep one of these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from crm_core.db import asyncpg_dsn

logger = logging.getLogger(__name__)

OnOpen = Callable[[asyncpg.Connection], Awaitable[None]]


class DedicatedConnection:
    """`await connect()` gives the open connection or opens a new one; `close()` drops it.

    `lost` is an event of the current connection, set when PostgreSQL or the network ends it:
    a fresh event per connection, so a late callback from a dropped one cannot mark the next.
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        connect_timeout: float | None = None,
        server_settings: dict[str, str] | None = None,
        on_open: OnOpen | None = None,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.name = name
        self._options: dict[str, Any] = {}
        if connect_timeout is not None:
            self._options["timeout"] = connect_timeout
        if server_settings:
            self._options["server_settings"] = server_settings
        self._on_open = on_open
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def lost(self) -> asyncio.Event:
        return self._lost

    @property
    def backend_pid(self) -> int | None:
        """The server process of the open connection (tests terminate it)."""
        conn = self._conn
        return conn.get_server_pid() if conn is not None and not conn.is_closed() else None

    async def connect(self) -> asyncpg.Connection:
        """The open connection; a new one (set up by `on_open`) when there is none."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        lost = asyncio.Event()
        conn = await asyncpg.connect(self.dsn, **self._options)
        conn.add_termination_listener(lambda _c: lost.set())
        if self._on_open is not None:
            try:
                await self._on_open(conn)
            except BaseException:
                conn.terminate()
                raise
        self._conn, self._lost = conn, lost
        logger.debug("%s: connected (backend pid %s)", self.name, conn.get_server_pid())
        return conn

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection for one user at a time; forgotten when it dies in their hands."""
        async with self._lock:
            conn = await self.connect()
            try:
                yield conn
            except BaseException:
                if conn.is_closed():
                    logger.warning("%s: connection lost", self.name)
                    self._conn = None
                raise

    def terminate(self) -> None:
        """Cut the connection now (one left mid-protocol by a timeout must never be reused)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self, grace: float = 2.0) -> None:
        """Close politely within `grace` seconds, else cut it (a dead server does not answer)."""
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), grace)
        except Exception:
            conn.terminate()
        if not conn.is_closed():
            conn.terminate()
