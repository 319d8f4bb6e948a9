"""Sign-in attempts counted per login and per client address, in the shared database.

Every attempt is counted before its password is checked, so a burst of concurrent guesses is cut
off at the limit instead of all reaching argon2 first; a successful sign-in gives its attempt
back. Past `limit` attempts within `window`, the key is locked for `lockout`. The rows live in
PostgreSQL so the limits hold across every instance behind the load balancer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# One statement per key: count the attempt, start a new window when the old one is over, lock
# when the count passes the limit; a locked key is left alone until its lock runs out.
_COUNT_SQL = text("""
INSERT INTO login_throttle AS t (key, attempts, window_start, locked_until)
VALUES (:key, 1, now(), NULL)
ON CONFLICT (key) DO UPDATE SET
    attempts = CASE
        WHEN t.locked_until > now() THEN t.attempts
        WHEN t.window_start < now() - make_interval(secs => :window) THEN 1
        ELSE t.attempts + 1 END,
    window_start = CASE
        WHEN t.locked_until > now() THEN t.window_start
        WHEN t.window_start < now() - make_interval(secs => :window) THEN now()
        ELSE t.window_start END,
    locked_until = CASE
        WHEN t.locked_until > now() THEN t.locked_until
        WHEN t.window_start >= now() - make_interval(secs => :window) AND t.attempts + 1 > :limit
            THEN now() + make_interval(secs => :lockout)
        ELSE NULL END
RETURNING extract(epoch FROM (locked_until - now()))
""")
_REFUND_SQL = text(
    "UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key = :key"
)
_CLEAR_SQL = text("DELETE FROM login_throttle WHERE key = :key")
_PURGE_SQL = text("""
DELETE FROM login_throttle
WHERE window_start < now() - make_interval(secs => :window)
  AND (locked_until IS NULL OR locked_until < now())
""")


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    per_login: int
    per_address: int
    window: timedelta
    lockout: timedelta


def login_key(login: str) -> str:
    return "login:" + login.strip().lower()[:100]


def address_key(address: str) -> str:
    return "addr:" + address[:100]


async def count_attempt(
    session: AsyncSession, policy: ThrottlePolicy, login: str, address: str
) -> dict[str, float]:
    """Count one attempt; the locked keys with their seconds to go (empty: check the password).

    The keys are taken in a fixed order so two concurrent attempts never deadlock.
    """
    limits = {login_key(login): policy.per_login, address_key(address): policy.per_address}
    locked: dict[str, float] = {}
    for key in sorted(limits):
        wait = await session.scalar(
            _COUNT_SQL,
            {
                "key": key,
                "limit": limits[key],
                "window": policy.window.total_seconds(),
                "lockout": policy.lockout.total_seconds(),
            },
        )
        if wait is not None and wait > 0:
            locked[key] = float(wait)
    return locked


async def signed_in_ok(session: AsyncSession, login: str, address: str) -> None:
    """A good password: the login's failures are forgiven, the address gets this attempt back."""
    await session.execute(_CLEAR_SQL, {"key": login_key(login)})
    await session.execute(_REFUND_SQL, {"key": address_key(address)})


async def purge(session: AsyncSession, policy: ThrottlePolicy) -> None:
    """Drop rows whose window and lock are both over."""
    await session.execute(_PURGE_SQL, {"window": policy.window.total_seconds()})
