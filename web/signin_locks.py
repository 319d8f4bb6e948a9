"""Sign-in locks this instance already knows of: a flood is refused without asking the database."""

from __future__ import annotations

import time


class KnownLocks:
    """Locks this instance has already been told about, to refuse a flood without the database.

    A lock only ever runs out at its own time, so remembering it here until then is exact; the
    database stays the one place where attempts are counted and locks are decided.
    """

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def wait(self, *keys: str) -> float:
        now = time.monotonic()
        return max((self._until.get(k, now) - now for k in keys), default=0.0)

    def learn(self, locked: dict[str, float]) -> None:
        now = time.monotonic()
        if len(self._until) > self.MAX_KEYS:
            self._until = {k: t for k, t in self._until.items() if t > now}
        for key, seconds in locked.items():
            self._until[key] = now + seconds
