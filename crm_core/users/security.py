"""Password hashing (argon2), off the event loop.

One argon2 verification costs ~300 ms of CPU by design. Run on the event loop it stalls every
other request, websocket and FastAGI answer for that long, so the service hashes and verifies in
a small thread pool (argon2-cffi releases the GIL while it works). The pool is kept smaller than
the machine (cores - 1) so a burst of sign-ins always leaves a core to the event loop; the extra
sign-ins wait in the pool's queue, not on the loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_T = TypeVar("_T")
# The hash of a random password nobody knows, made with the hasher's parameters: verifying
# against it costs what verifying against a real user's hash does.
DECOY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$jh8hkl/q4d4aO47xYwk2Ig"
    "$LY98AU7ReGD26Qf1rQeZbp/dUMiu44YMZA4quDu+960"
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Hashing threads yield the CPU to the event loop when both want it: on Linux a thread is its
# own scheduling entity, so lowering its niceness leaves the loop thread (and FastAGI answers)
# ahead of argon2, which only delays the sign-ins waiting for it.
WORKER_NICENESS = 10


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


def default_workers() -> int:
    """One thread fewer than the machine has cores, at least one (2 cores: 1 thread)."""
    return max(1, (os.cpu_count() or 1) - 1)


class PasswordWorkers:
    """Hash and verify passwords in a thread pool; `workers=0` runs inline (CLI, scripts)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        self._pool = (
            ThreadPoolExecutor(
                self.workers, thread_name_prefix="argon2", initializer=_lower_priority
            )
            if self.workers
            else None
        )
        self._decoy: str | None = None

    async def _run(self, fn: Callable[..., _T], *args: str) -> _T:
        if self._pool is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(verify_password, password_hash, password)

    async def waste(self, password: str) -> None:
        """Spend what a verification costs, for a login that does not exist or is disabled.

        Without it an unknown login answers in a few milliseconds and a known one in hundreds,
        which tells an attacker which logins are worth guessing.
        """
        if self._decoy is None:
            if not _hasher.check_needs_rehash(DECOY_HASH):
                self._decoy = DECOY_HASH
            else:  # the hasher's parameters changed: a decoy made now costs what real ones do
                self._decoy = await self.hash(password)
                return
        await self.verify(self._decoy, password)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


INLINE = PasswordWorkers(0)
