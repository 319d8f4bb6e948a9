"""Closing websockets whose sign-in ended, on every instance.

A websocket is authenticated once, then lives for hours; a signed-out, re-passworded or disabled
user's socket must not keep receiving. Ending sessions NOTIFYs SESSIONS_ENDED_CHANNEL inside the
ending transaction (crm_core/users/sessions.py); each instance LISTENs (PgBus, as the event hub
does) and ends the sockets it holds for that session or user. A socket also ends when its
session expires. Notifications sent while the listener was down are lost, so on every
(re)connection the instance asks the database which of its sockets' sessions still stand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.users.sessions import SESSIONS_ENDED_CHANNEL, live_sessions, parse_ended
from notifier.pgbus import PgBus

logger = logging.getLogger(__name__)

# How long an end is remembered for sockets still authenticating when it was announced.
RECENT_SECONDS = 120.0


@dataclass(eq=False)
class _Watched:
    session_id: int
    user_id: int
    on_end: Callable[[], None]
    expiry: asyncio.TimerHandle | None = field(default=None)


class SessionWatch:
    def __init__(self, dsn: str, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._by_session: dict[int, set[_Watched]] = {}
        self._by_user: dict[int, set[_Watched]] = {}
        # ends announced lately, by ("session" | "user", id): the loop time they arrived
        self._recent: dict[tuple[str, int], float] = {}
        self.bus = PgBus(dsn, SESSIONS_ENDED_CHANNEL, self._on_message, on_listening=self._recheck)

    async def start(self) -> None:
        await self.bus.start()

    async def stop(self) -> None:
        await self.bus.stop()

    def watching(self) -> int:
        return sum(len(w) for w in self._by_session.values())

    def watch(
        self,
        session_id: int,
        user_id: int,
        expires_at: datetime,
        checked_at: float,
        on_end: Callable[[], None],
    ) -> Callable[[], None]:
        """Call `on_end` once the session ends; returns the function that stops watching.

        `checked_at` is the loop time just before the session was found valid: an end announced
        since then (the socket was still authenticating) ends it at once.
        """
        loop = asyncio.get_running_loop()
        w = _Watched(session_id, user_id, on_end)
        if any(
            self._recent.get(key, float("-inf")) >= checked_at
            for key in (("session", session_id), ("user", user_id))
        ):
            on_end()
            return lambda: None
        self._by_session.setdefault(session_id, set()).add(w)
        self._by_user.setdefault(user_id, set()).add(w)
        left = (expires_at - datetime.now(UTC)).total_seconds()
        w.expiry = loop.call_later(max(0.0, left), self._end, [w], "expired")
        return lambda: self._forget(w)

    def _forget(self, w: _Watched) -> None:
        if w.expiry is not None:
            w.expiry.cancel()
        for index, key in ((self._by_session, w.session_id), (self._by_user, w.user_id)):
            group = index.get(key)
            if group is not None:
                group.discard(w)
                if not group:
                    del index[key]

    def _end(self, watched: list[_Watched], why: str) -> None:
        for w in watched:
            self._forget(w)
            logger.info(
                "closing websocket: sign-in ended",
                extra={"user_id": w.user_id, "session_id": w.session_id, "why": why},
            )
            try:
                w.on_end()
            except Exception:  # one socket's trouble must not keep the others open
                logger.exception("ending a websocket failed")

    def _on_message(self, payload: str) -> None:
        ended = parse_ended(payload)
        if ended is None:
            return
        now = asyncio.get_running_loop().time()
        self._recent = {k: t for k, t in self._recent.items() if now - t < RECENT_SECONDS}
        self._recent[ended] = now
        kind, ident = ended
        index = self._by_session if kind == "session" else self._by_user
        self._end(list(index.get(ident, ())), f"{kind} ended")

    async def _recheck(self) -> None:
        ids = list(self._by_session)
        if not ids:
            return
        async with self._sessions() as session:
            alive = await live_sessions(session, ids)
        gone = [w for sid in ids if sid not in alive for w in self._by_session.get(sid, ())]
        if gone:
            self._end(gone, "ended while the listener was away")
