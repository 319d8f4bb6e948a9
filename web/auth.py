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


# A recording's URL carries its own token: an <audio> element sends no Authorization header.
# Its audience keeps it from working as a bearer token, and its claims tie it to one call.
RECORDING_AUDIENCE = "recording"


def issue_recording_token(user_id: int, communication_id: int, secret: str, ttl_s: int) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "call": communication_id,
        "aud": RECORDING_AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_recording_token(token: str, secret: str) -> tuple[int, int]:
    """(user id, communication id) of a valid recording token; raises jwt.PyJWTError."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=RECORDING_AUDIENCE,
        options={"require": ["sub", "exp", "aud", "call"]},
    )
    try:
        return int(claims["sub"]), int(claims["call"])
    except (TypeError, ValueError):
        raise jwt.InvalidTokenError("bad claims") from None
