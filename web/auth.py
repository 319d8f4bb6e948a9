"""Bearer tokens: signed JWTs naming the user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"


def issue_token(user_id: int, role: str, secret: str, ttl_minutes: int) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "iat": now,
        "exp": now + timedelta(minutes=ttl_minutes),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str) -> int:
    """The user id in a valid token; raises jwt.PyJWTError otherwise."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    try:
        return int(claims["sub"])
    except (TypeError, ValueError):
        raise jwt.InvalidTokenError("bad subject") from None
