"""This instance's sockets by channel, and the one rule of delivery: each seq once, in order."""

from __future__ import annotations

from collections.abc import Iterable

from notifier.channels import user_of_channel
from notifier.hub.frames import Envelope
from notifier.hub.subscriber import Subscriber


class Fanout:
    """Hands each numbered message to the sockets of its channel, dropping what was seen."""

    def __init__(self, *, last_seq: int | None, queue_size: int, flush_seconds: float) -> None:
        # None until a backend knows where the log stands (the first sync after start)
        self.last_seq = last_seq
        self.queue_size = queue_size
        self._flush = flush_seconds
        self._by_channel: dict[str, set[Subscriber]] = {}

    def deliver(self, env: Envelope) -> None:
        if self.last_seq is not None and env.seq <= self.last_seq:
            return
        self.last_seq = env.seq
        subs = self._by_channel.get(env.channel)
        if subs:
            for sub in tuple(subs):
                sub.offer(env)

    def subscribe(self, channels: Iterable[str]) -> Subscriber:
        sub = Subscriber(frozenset(channels), limit=self.queue_size, flush_seconds=self._flush)
        for name in sub.channels:
            self._by_channel.setdefault(name, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        for name in sub.channels:
            subs = self._by_channel.get(name)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_channel[name]

    def subscriber_count(self) -> int:
        return len({s for subs in self._by_channel.values() for s in subs})

    def watching_users(self) -> set[int]:
        """Users with a socket on their own channel here: a page open (task reminders ask)."""
        ids = (user_of_channel(name) for name, subs in self._by_channel.items() if subs)
        return {uid for uid in ids if uid is not None}

    def close_all(self, reason: str) -> None:
        for subs in list(self._by_channel.values()):
            for sub in list(subs):
                sub.fail(reason)
