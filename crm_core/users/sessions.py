"""Server-side sessions: a bearer token is a random string naming one row of auth_sessions.

Ending a session is deleting its row, so it holds on every instance at their next request (they
share the database). Open websockets live longer than a request: each end is also announced with
NOTIFY on SESSIONS_ENDED_CHANNEL, inside the same transaction, so the announcement goes out only
if the deletion commits, and every instance closes the sockets it holds.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models_common import utcnow
from crm_core.users.models import AuthSession, User

SESSIONS_ENDED_CHANNEL = "crm_sessions_ended"
TOKEN_BYTES = 32


def token_hash(token: str) -> bytes:
    # a plain hash suffices: the token is 256 random bits, nothing to guess or stretch
    return hashlib.sha256(token.encode()).digest()


def new_token() -> tuple[str, bytes]:
    """(the token handed to the client, the hash the database keeps)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    session_id: int
    expires_at: datetime


async def start_session(session: AsyncSession, user_id: int, ttl: timedelta) -> tuple[str, int]:
    """A new session for the user: (its bearer token, its id)."""
    token, digest = new_token()
    row = AuthSession(user_id=user_id, token_hash=digest, expires_at=utcnow() + ttl)
    session.add(row)
    await session.flush()
    return token, row.id


async def signed_in(session: AsyncSession, token: str) -> SignedIn | None:
    """The active user and live session behind a token; None for anything else."""
    found = (
        await session.execute(
            select(User, AuthSession.id, AuthSession.expires_at)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(AuthSession.token_hash == token_hash(token), AuthSession.expires_at > func.now())
        )
    ).first()
    if found is None or not found[0].is_active:
        return None
    return SignedIn(found[0], found[1], found[2])


async def session_alive(session: AsyncSession, session_id: int, user_id: int) -> bool:
    """Whether a session still stands, for tokens derived from it (recording links)."""
    found = await session.scalar(
        select(AuthSession.id)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.id == session_id,
            AuthSession.user_id == user_id,
            AuthSession.expires_at > func.now(),
            User.is_active,
        )
    )
    return found is not None


async def live_sessions(session: AsyncSession, session_ids: list[int]) -> set[int]:
    """Which of these sessions still stand (an instance re-checks its sockets after a gap)."""
    if not session_ids:
        return set()
    rows = await session.scalars(
        select(AuthSession.id)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id.in_(session_ids), AuthSession.expires_at > func.now(), User.is_active)
    )
    return set(rows)


async def _announce(session: AsyncSession, payload: str) -> None:
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": SESSIONS_ENDED_CHANNEL, "payload": payload},
    )


async def end_session(session: AsyncSession, session_id: int) -> None:
    """Sign-out: this token stops working everywhere once the transaction commits."""
    await session.execute(delete(AuthSession).where(AuthSession.id == session_id))
    await _announce(session, f"session:{session_id}")


async def end_user_sessions(session: AsyncSession, user_id: int) -> None:
    """Every token of the user (new password, account disabled)."""
    await session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    await _announce(session, f"user:{user_id}")


def parse_ended(payload: str) -> tuple[str, int] | None:
    """("session" | "user", id) of an announcement, None if it is not one."""
    kind, _, raw = payload.partition(":")
    if kind not in ("session", "user") or not raw.isdigit():
        return None
    return kind, int(raw)


async def purge_expired(session: AsyncSession) -> None:
    """Drop expired rows (they no longer authenticate anyway); run now and then on sign-in."""
    await session.execute(delete(AuthSession).where(AuthSession.expires_at <= func.now()))
