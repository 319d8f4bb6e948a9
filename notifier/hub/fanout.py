"""This instance's sockets by channel, and the one rule of delivery: each seq once, in order.

One exception, for screen-pops: `show` hands messages to this instance's live sockets before
event_log numbers them, and their numbered copies (`expect`) then skip the sockets that got them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from notifier.channels import Message, user_of_channel
from notifier.hub.frames import Envelope, dumps, encode_shown_frame
from notifier.hub.subscriber import Subscriber

# The sockets a shown message reached, one set per message (empty: nobody here got it early).
Shown = list[frozenset[Subscriber]]


class Fanout:
    """Hands each numbered message to the sockets of its channel, dropping what was seen."""

    def __init__(self, *, last_seq: int | None, queue_size: int, flush_seconds: float) -> None:
        # None until a backend knows where the log stands (the first sync after start)
        self.last_seq = last_seq
        self.queue_size = queue_size
        self._flush = flush_seconds
        self._by_channel: dict[str, set[Subscriber]] = {}
        # seq -> the sockets its message was shown to before it was numbered
        self._shown: dict[int, frozenset[Subscriber]] = {}

    def deliver(self, env: Envelope) -> None:
        if self.last_seq is not None and env.seq <= self.last_seq:
            return
        self.last_seq = env.seq
        subs = self._by_channel.get(env.channel)
        shown = None
        if self._shown:
            shown = self._shown.pop(env.seq, None)
            self._forget_shown()
        if subs:
            for sub in tuple(subs):
                if shown is None or sub not in shown:
                    sub.offer(env)

    def show(self, messages: Sequence[Message]) -> Shown:
        """`messages` to this instance's live sockets now, unnumbered (a screen-pop need not wait
        for event_log); which sockets got each, for `expect` once they are numbered.
        To nobody while a message shown before is not delivered yet: a socket it skipped (one
        still replaying) would get the newer message first."""
        self._forget_shown()
        if self._shown:
            return [frozenset() for _ in messages]
        at = datetime.now(UTC)
        shown: Shown = []
        for m in messages:
            subs = self._by_channel.get(m.channel)
            if not subs:
                shown.append(frozenset())
                continue
            frame = encode_shown_frame(m.channel, m.type, dumps(m.payload), at)
            shown.append(frozenset(sub for sub in tuple(subs) if sub.show(m.channel, frame)))
        return shown

    def expect(self, envelopes: Sequence[Envelope], shown: Shown) -> None:
        """The numbered copies of shown messages (same order), before any is delivered: each
        then skips the sockets that got it shown. A number already passed here (a resync
        read past it) is not kept."""
        self._forget_shown()
        last = self.last_seq or 0
        for env, subs in zip(envelopes, shown, strict=True):
            if subs and env.seq > last:
                self._shown[env.seq] = subs

    def _forget_shown(self) -> None:
        """Shown numbers this Fanout has passed: never delivered here now (a resync)."""
        last = self.last_seq or 0
        for seq in [seq for seq in self._shown if seq <= last]:
            del self._shown[seq]

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
