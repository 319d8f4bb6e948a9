"""The NOTIFY body announcing newly numbered messages: the frames inline when they fit.

One line per message, `seq\\tframe`, or `seq` alone for a message to read back from event_log
(the appending statement, notifier.hub.event_log, sends a whole batch so when its frames do not
all fit PostgreSQL's NOTIFY limit); a batch too big even for its numbers says CATCH_UP: read
everything new.
"""

from __future__ import annotations

import json

from notifier.hub.frames import Envelope

NOTIFY_CHANNEL = "crm_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; leave room for the line breaks.
NOTIFY_BUDGET = 7800
CATCH_UP = "*"


def parse_body(body: str) -> list[Envelope] | None:
    """The envelopes of a notification, or None when some must be read from event_log."""
    out: list[Envelope] = []
    for line in body.split("\n"):
        if not line:
            continue
        head, sep, frame = line.partition("\t")
        if not sep:
            return None
        data = json.loads(frame)
        out.append(Envelope(int(head), data["channel"], data["type"], frame))
    return out


def seqs_of(body: str) -> list[int]:
    """The numbers a body names (for the messages that must be read back from the log)."""
    return [int(line.split("\t", 1)[0]) for line in body.split("\n") if line]
