"""The hub without a database: numbers from this process's counter, delivery to it alone.

For the benchmark's "fan-out only" figure and for tools without PostgreSQL: nothing is durable
or replayable, and other instances see nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from notifier.channels import Message
from notifier.hub.event_log import Replay
from notifier.hub.fanout import Fanout
from notifier.hub.frames import Envelope, dumps, encode_frame


def publish_locally(fanout: Fanout, messages: list[Message]) -> None:
    """Number `messages` after the last seq this process delivered, and deliver them."""
    at = datetime.now(UTC)
    for m in messages:
        seq = (fanout.last_seq or 0) + 1
        frame = encode_frame(seq, m.channel, m.type, dumps(m.payload), at)
        fanout.deliver(Envelope(seq, m.channel, m.type, frame))


class LocalBackend:
    durable = False

    def __init__(self, fanout: Fanout) -> None:
        self._fanout = fanout

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def wait_ready(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, messages: list[Message]) -> None:
        publish_locally(self._fanout, messages)

    async def replay(self, channels: Iterable[str], after: int, limit: int) -> Replay:
        # nothing is kept: a reader behind this process's numbers has missed something
        return Replay([], more=False, gap=after < (self._fanout.last_seq or 0))

    async def cleanup(self) -> int:
        return 0
