"""Recording links: a signed token in the URL, since an <audio> element sends no header.

Bearer tokens themselves are server-side sessions (crm_core/users/sessions.py). A recording link
names the session it was issued under (`sid`), so signing out or losing the session ends the
link as well, whatever is left of its own short lifetime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
# Its audience keeps it from working anywhere else, and its claims tie it to one call.
RECORDING_AUDIENCE = "recording"


def issue_recording_token(
    user_id: int, session_id: int, communication_id: int, secret: str, ttl_s: int
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "sid": session_id,
        "call": communication_id,
        "aud": RECORDING_AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_recording_token(token: str, secret: str) -> tuple[int, int, int]:
    """(user id, session id, communication id) of a valid recording token; raises jwt.PyJWTError."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=RECORDING_AUDIENCE,
        options={"require": ["sub", "exp", "aud", "call", "sid"]},
    )
    try:
        return int(claims["sub"]), int(claims["sid"]), int(claims["call"])
    except (TypeError, ValueError):
        raise jwt.InvalidTokenError("bad claims") from None
