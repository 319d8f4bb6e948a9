"""Shared bench plumbing: a throwaway embedded PostgreSQL at head, and percentile printing."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any


def embedded_database() -> tuple[str, Any]:
    from crm_core.embedded import start_embedded
    from crm_core.migrate import upgrade

    url, server = start_embedded(Path(tempfile.mkdtemp(prefix="crm-bench-")) / "pg", throwaway=True)
    upgrade(url)
    return url, server


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
