"""Leader election over a PostgreSQL advisory lock: one leader, and a takeover when it dies."""

from __future__ import annotations

import asyncio

import asyncpg

from crm_core.db import asyncpg_dsn
from notifier.leader import LeaderElection, lock_key

TAKEOVER = 10.0  # generous: the poll is 1 s


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []

    async def elected(self) -> None:
        self.log.append("elected")

    async def demoted(self) -> None:
        self.log.append("demoted")


def test_lock_key_is_stable_and_signed_64_bit() -> None:
    assert lock_key("ami-listener") == lock_key("ami-listener")
    assert lock_key("ami-listener") != lock_key("other")
    assert -(2**63) <= lock_key("ami-listener") < 2**63


async def test_one_leader_and_takeover_when_its_connection_dies(database_url: str) -> None:
    key = lock_key("test-election")
    a_hooks, b_hooks = Recorder(), Recorder()
    a = LeaderElection(database_url, key, a_hooks.elected, a_hooks.demoted, name="a")
    b = LeaderElection(database_url, key, b_hooks.elected, b_hooks.demoted, name="b")
    await a.start()
    async with asyncio.timeout(TAKEOVER):
        await a.wait_until(True)
    await b.start()
    await asyncio.sleep(2.5)  # b has polled a couple of times by now
    assert a.is_leader and not b.is_leader
    assert b_hooks.log == []

    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", a.backend_pid)
    finally:
        await admin.close()
    async with asyncio.timeout(TAKEOVER):
        await b.wait_until(True)
        await a.wait_until(False)
    assert a_hooks.log == ["elected", "demoted"]
    assert b_hooks.log == ["elected"]

    # the old leader comes back as a follower, and never two leaders at once
    await asyncio.sleep(2.5)
    assert b.is_leader and not a.is_leader

    await b.stop()  # stepping down hands over to a
    async with asyncio.timeout(TAKEOVER):
        await a.wait_until(True)
    assert b_hooks.log == ["elected", "demoted"]
    await a.stop()
    assert not a.is_leader


async def test_stop_without_ever_leading(database_url: str) -> None:
    hooks = Recorder()
    holder = await asyncpg.connect(asyncpg_dsn(database_url))
    key = lock_key("held-elsewhere")
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", key)
        e = LeaderElection(database_url, key, hooks.elected, hooks.demoted, poll_seconds=0.2)
        await e.start()
        await asyncio.sleep(0.8)
        assert not e.is_leader
        await e.stop()
    finally:
        await holder.close()
    assert hooks.log == []
