"""One socket's view of the hub: its channels and its bounded queue, in seq order (a screen-pop
shown before it was numbered, `show`, goes in when shown).

Sockets never share a queue: each Subscriber has a bounded queue, and overflowing it marks the
socket as too slow (its endpoint closes it). Supervisors' messages are not urgent: a socket is
written at most once per `flush_seconds` (what comes meanwhile leaves in one batch), but the first
message after a quiet spell leaves at once (a board follows a call without a fixed delay); a
screen-pop wakes its socket at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from notifier.channels import SUPERVISORS
from notifier.hub.frames import Envelope


class SlowConsumer(Exception):
    """The socket fell `queue_size` messages behind and is being dropped."""


class Subscriber:
    """One socket's view of the hub: its channels and its bounded queue, in seq order."""

    def __init__(self, channels: frozenset[str], *, limit: int, flush_seconds: float) -> None:
        self.channels = channels
        self.high_water = 0  # highest seq queued; the hub delivers in seq order, so it dedupes
        self.closed_reason: str | None = None
        self._limit = limit
        self._flush_seconds = flush_seconds
        self._frames: deque[str] = deque()
        self._urgent = False
        self._deadline: float | None = None
        self._sent_at = float("-inf")  # loop time of the last batch handed to the writer
        self._wake = asyncio.Event()
        self._failed = asyncio.Event()
        self._held: list[Envelope] | None = []  # live messages arriving during the replay

    @property
    def pending(self) -> int:
        return len(self._frames)

    def offer(self, env: Envelope) -> None:
        if self.closed_reason is not None:
            return
        if self._held is not None:
            if len(self._held) >= self._limit:
                self.fail("too slow: queue full during replay")
            else:
                self._held.append(env)
            return
        self._push(env)

    def show(self, channel: str, frame: str) -> bool:
        """A message before it is numbered (`Fanout.show`): queued now if this socket is live
        (one still replaying gets the numbered copy in its turn); True if queued, and then its
        numbered copy is not sent here."""
        if self.closed_reason is not None or self._held is not None:
            return False
        if not self._enqueue(frame):
            return False
        self._wake_for(channel)
        return True

    def go_live(self, after: int) -> None:
        """Replay done up to `after`: release the held live messages that are newer."""
        self.high_water = max(self.high_water, after)
        held, self._held = self._held or [], None
        for env in held:
            self._push(env)

    def control(self, frame: str) -> None:
        """Connection messages (ping) jump no queue: they go after what is already queued."""
        if self.closed_reason is None and self._enqueue(frame):
            self._urgent = True
            self._wake.set()

    def fail(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._frames.clear()
            self._held = None
            self._wake.set()
            self._failed.set()

    async def wait_failed(self) -> str:
        """Until the hub drops this socket (its writer may be stuck on a full socket meanwhile)."""
        await self._failed.wait()
        return self.closed_reason or "dropped"

    async def next_frames(self) -> list[str]:
        """Everything due now, in seq order; raises SlowConsumer once the socket is dropped."""
        loop = asyncio.get_running_loop()
        while True:
            if self.closed_reason is not None:
                raise SlowConsumer(self.closed_reason)
            deadline = self._deadline
            if self._frames and (
                self._urgent or (deadline is not None and loop.time() >= deadline)
            ):
                frames = list(self._frames)
                self._frames.clear()
                self._urgent = False
                self._deadline = None
                self._sent_at = loop.time()
                return frames
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - loop.time()))

    def _enqueue(self, frame: str) -> bool:
        if len(self._frames) >= self._limit:
            self.fail(f"too slow: {self._limit} messages unread")
            return False
        self._frames.append(frame)
        return True

    def _push(self, env: Envelope) -> None:
        if env.seq <= self.high_water or not self._enqueue(env.frame):
            return
        self.high_water = env.seq
        self._wake_for(env.channel)

    def _wake_for(self, channel: str) -> None:
        if channel != SUPERVISORS:
            # a screen-pop: send now, together with any broadcast queued before it (seq order)
            self._urgent = True
            self._wake.set()
        elif self._deadline is None:
            # at once after a quiet spell, else when the last batch is `flush_seconds` old
            now = asyncio.get_running_loop().time()
            self._deadline = max(now, self._sent_at + self._flush_seconds)
            self._wake.set()  # the writer learns the deadline
