"""Shared bench plumbing: a throwaway embedded PostgreSQL at head, the service served on a free
port, and percentile printing."""

from __future__ import annotations

import asyncio
import re
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from web.container import Container


def embedded_database() -> tuple[str, Any]:
    from crm_core.embedded import start_embedded
    from crm_core.migrate import upgrade

    url, server = start_embedded(Path(tempfile.mkdtemp(prefix="crm-bench-")) / "pg", throwaway=True)
    upgrade(url)
    return url, server


@asynccontextmanager
async def served(container: Container, **options: Any) -> AsyncIterator[tuple[Container, int]]:
    """`create_app(container)` on uvicorn at a free loopback port, its lifespan run as in
    production; yields the container as the lifespan composed it (its hub, its parts) and the
    port. `options` go to uvicorn.Config."""
    import uvicorn

    from web.app import create_app

    app = create_app(container=container)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", **options))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # uvicorn offers no event to wait on
            if task.done():
                task.result()  # the startup failed: raise its error
                raise RuntimeError("uvicorn stopped during startup")
            await asyncio.sleep(0.02)
        yield app.state.container, server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


_TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def count_statements(engine: Any) -> list[int]:
    """A counter of the SQL statements the engine's connections run (BEGIN, COMMIT and the like
    not counted): SQLAlchemy's cursor executes, and what goes straight to the driver
    (crm_core.db.driver_connection), which asyncpg's query loggers see."""
    from sqlalchemy import event

    counter = [0]

    def sql(*_: Any) -> None:
        counter[0] += 1

    def driver(record: Any) -> None:
        if not record.query.lstrip().upper().startswith(_TRANSACTION):
            counter[0] += 1

    def connected(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(driver)

    event.listen(engine.sync_engine, "before_cursor_execute", sql)
    event.listen(engine.sync_engine, "connect", connected)
    return counter


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(label: str, samples_ms: list[float]) -> str:
    return (
        f"{label:<44} n={len(samples_ms):>6}  p50={pct(samples_ms, 0.50):7.3f} ms  "
        f"p99={pct(samples_ms, 0.99):7.3f} ms  mean={statistics.fmean(samples_ms):7.3f} ms"
    )


async def session_tokens(conn: Any, user_ids: list[int], hours: float) -> list[str]:
    """A signed-in session (bearer token) per user, in one insert, on an asyncpg connection."""
    from crm_core.users.sessions import new_token

    pairs = [new_token() for _ in user_ids]
    await conn.execute(
        "INSERT INTO auth_sessions (user_id, token_hash, expires_at)"
        " SELECT u, h, now() + make_interval(secs => $3)"
        " FROM unnest($1::int[], $2::bytea[]) AS t(u, h)",
        user_ids,
        [digest for _, digest in pairs],
        hours * 3600,
    )
    return [token for token, _ in pairs]


async def signed_in_users(
    url: str, operators: int, supervisors: int, *, first_extension: int, hours: float
) -> list[dict[str, Any]]:
    """Operators (extensions from `first_extension` on) and supervisors, each with a bearer
    token: one bulk insert sharing one password hash (argon2 is slow). Rows of id, role,
    extension, token."""
    import asyncpg

    from crm_core.users.security import hash_password

    rows: list[tuple[str, str, str | None]] = [
        ("operator", f"op{first_extension + i}", str(first_extension + i)) for i in range(operators)
    ]
    rows += [("supervisor", f"sup{i}", None) for i in range(supervisors)]
    conn = await asyncpg.connect(url)
    try:
        created = await conn.fetch(
            """
            INSERT INTO users
                (login, password_hash, role, full_name, extension, timezone, is_active)
            SELECT l, $2, r, l, e, 'Europe/Moscow', true
            FROM unnest($1::text[], $3::text[], $4::text[]) AS u(l, r, e)
            RETURNING id, role, extension
            """,
            [r[1] for r in rows],
            hash_password("bench"),
            [r[0] for r in rows],
            [r[2] for r in rows],
        )
        tokens = await session_tokens(conn, [r["id"] for r in created], hours=hours)
    finally:
        await conn.close()
    return [{**dict(r), "token": t} for r, t in zip(created, tokens, strict=True)]


def ami_reply(text: str) -> bytes:
    """What the benches' AMI stand-ins answer to an action (one block of text): Login accepted,
    CoreShowChannels with no channels, Ping with a Timestamp; anything else: nothing."""
    found = re.search(r"ActionID: (.*)\r", text)
    aid = found.group(1) if found else ""
    if "Action: Login" in text:
        return (
            f"Response: Success\r\nActionID: {aid}\r\n"
            "Message: Authentication accepted\r\n\r\n".encode()
        )
    if "Action: CoreShowChannels" in text:
        return (
            f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n"
            "Message: Channels will follow\r\n\r\n"
            f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\n"
            "EventList: Complete\r\nListItems: 0\r\n\r\n".encode()
        )
    if "Action: Ping" in text:
        return (
            f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n"
            f"Timestamp: {time.time():.6f}\r\n\r\n".encode()
        )
    return b""
