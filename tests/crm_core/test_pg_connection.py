"""A dedicated connection against the real PostgreSQL: reopened when lost, set up on each open."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from crm_core.db import asyncpg_dsn, to_async_url
from crm_core.pg_connection import DedicatedConnection

WAIT = 10.0


def test_one_url_helper_for_both_drivers() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+asyncpg://u@h/db"):
        assert asyncpg_dsn(url) == "postgresql://u@h/db"
        assert to_async_url(url) == "postgresql+asyncpg://u@h/db"
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        asyncpg_dsn("sqlite:///crm.db")


async def _terminate(database_url: str, pid: int) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_lost_connection_is_told_and_replaced(database_url: str) -> None:
    opened: list[int] = []

    async def on_open(conn: asyncpg.Connection) -> None:
        opened.append(conn.get_server_pid())

    db = DedicatedConnection(database_url, "test", on_open=on_open)
    try:
        first = await db.connect()
        assert await db.connect() is first  # kept while it lives
        lost = db.lost
        assert not lost.is_set() and db.backend_pid == opened[0]
        await _terminate(database_url, opened[0])
        async with asyncio.timeout(WAIT):
            await lost.wait()
        second = await db.connect()
        assert second is not first and opened == [opened[0], second.get_server_pid()]
        assert not db.lost.is_set()  # the new connection's own event
    finally:
        await db.close()
    assert db.backend_pid is None and not db.is_open


async def test_a_connection_that_dies_in_use_is_forgotten(database_url: str) -> None:
    db = DedicatedConnection(database_url, "test")
    try:
        with pytest.raises(asyncpg.PostgresError):
            async with db.use() as conn:
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        async with db.use() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await db.close()


async def test_a_failed_setup_leaves_no_connection_behind(database_url: str) -> None:
    pids: list[int] = []

    async def refuse(conn: asyncpg.Connection) -> None:
        pids.append(conn.get_server_pid())
        raise RuntimeError("setup failed")

    db = DedicatedConnection(database_url, "test", on_open=refuse)
    with pytest.raises(RuntimeError, match="setup failed"):
        await db.connect()
    assert not db.is_open
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with asyncio.timeout(WAIT):
            while await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pids[0]
            ):
                await asyncio.sleep(0.05)
    finally:
        await admin.close()
