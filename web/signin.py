"""Signing in: throttle, check the password off the event loop, open a server-side session.

The order matters. The attempt is counted (and a locked login or address refused) before any
argon2 work; the user's hash is looked up on a connection that is released before the ~0.3 s
verification, which runs in the password pool; an unknown or disabled login costs the same
verification against a decoy hash, so timing does not tell which logins exist.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, status

from crm_core.db import unit_of_work
from crm_core.users import throttle
from crm_core.users.models import User
from crm_core.users.service import password_hash_of
from crm_core.users.sessions import purge_expired, start_session
from web.container import Container

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Granted:
    token: str
    session_id: int
    user: User


def policy(c: Container) -> throttle.ThrottlePolicy:
    web = c.settings.web
    return throttle.ThrottlePolicy(
        per_login=web.login_max_attempts,
        per_address=web.login_max_attempts_per_address,
        window=timedelta(seconds=web.login_window_seconds),
        lockout=timedelta(seconds=web.login_lockout_seconds),
    )


def _too_many(wait: float) -> HTTPException:
    seconds = max(1, math.ceil(wait))
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many sign-in attempts: try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


async def sign_in(c: Container, login: str, password: str, address: str) -> Granted:
    """A new session for good credentials; 429 when throttled, 401 otherwise."""
    rules = policy(c)
    locks = c.signin_locks
    wait = locks.wait(throttle.login_key(login), throttle.address_key(address))
    if wait <= 0:
        # committed at once: concurrent attempts on any instance see this one
        async with unit_of_work(c.sessions) as session:
            locked = await throttle.count_attempt(session, rules, login, address)
        locks.learn(locked)
        wait = max(locked.values(), default=0.0)
    if wait > 0:
        logger.warning(
            "sign-in refused: throttled",
            extra={"login": login[:64], "address": address, "retry_after": math.ceil(wait)},
        )
        # a sleeping coroutine costs nothing; a script that gets its 429 at once comes right back
        await asyncio.sleep(c.settings.web.login_refusal_delay_seconds)
        raise _too_many(wait)
    async with c.sessions() as session:
        found = await password_hash_of(session, login)
    if found is None:
        await c.passwords.waste(password)
    elif await c.passwords.verify(found[1], password):
        async with unit_of_work(c.sessions) as session:
            user = await session.get(User, found[0])
            if user is not None and user.is_active:
                ttl = timedelta(minutes=c.settings.web.token_ttl_minutes)
                token, session_id = await start_session(session, user.id, ttl)
                await throttle.signed_in_ok(session, login, address)
                # housekeeping rides on successful sign-ins: no timer, and they are rare enough
                await purge_expired(session)
                await throttle.purge(session, rules)
                return Granted(token, session_id, user)
    logger.info("sign-in failed", extra={"login": login[:64], "address": address})
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="wrong login or password",
        headers={"WWW-Authenticate": "Bearer"},
    )
