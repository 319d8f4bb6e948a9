"""Pure helpers for AMI fields: no sockets, no state, cheap enough to run per event.

(Bytes become messages in telephony/ami_wire.py; these read the fields of a message.)

Everything here is deliberately forgiving: the tracker is fed by a long-running listener and a
single odd message must never take it down, so parsers return "nothing" rather than raise where
the caller can carry on without the value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

logger = logging.getLogger(__name__)

# Asterisk writes this for caller ID parts that were never set.
UNKNOWN = "<unknown>"


def event_time(event: Mapping[str, str], arrival: float) -> float:
    """The moment the event happened: its ``Timestamp`` header, else when it arrived.

    ``timestampevents = yes`` gives microsecond PBX time, free of network and queueing delay;
    without it (or with a broken value) the arrival time is the best we have.
    """
    stamp = event.get("Timestamp")
    if stamp:
        try:
            return float(stamp)
        except ValueError:
            logger.warning("bad Timestamp %r, using arrival time", stamp)
    return arrival


def compile_agent_pattern(pattern: str) -> re.Pattern[str]:
    """Compile the configured agent-channel regex once; it must have a group named ``ext``."""
    compiled = re.compile(pattern)
    if "ext" not in compiled.groupindex:
        raise ValueError(f"agent channel pattern {pattern!r} has no (?P<ext>...) group")
    return compiled


def agent_extension(channel: str, pattern: re.Pattern[str]) -> str | None:
    """The agent extension a channel name belongs to (``PJSIP/101-0000001`` -> ``101``), if any."""
    match = pattern.match(channel)
    return match.group("ext") if match else None


def channel_base(channel: str) -> str:
    """The device a channel stands for: a Local channel without its ``;1``/``;2`` half.

    Both halves of ``Local/101@agent-phones-00000001`` are the same phone: a hangup on either one
    is that phone hanging up. Other technologies have no halves and are returned unchanged.
    """
    if len(channel) > 2 and channel[-2] == ";" and channel[-1] in "12":
        return channel[:-2]
    return channel


def uniqueid_key(uniqueid: str) -> tuple[int, int]:
    """Sort key for Uniqueids/Linkedids: ``epoch.sequence`` compared as two numbers.

    As strings ``…416.102`` sorts before ``…415.98``; as numbers it is correctly later.
    An unparsable id sorts first rather than raising.
    """
    seconds, _, sequence = uniqueid.partition(".")
    try:
        return int(seconds), int(sequence or 0)
    except ValueError:
        return (0, 0)


def uniqueid_before(first: str, second: str) -> bool:
    """True when Uniqueid ``first`` was created before ``second``."""
    return uniqueid_key(first) < uniqueid_key(second)


def known(value: str | None) -> str | None:
    """A caller ID part, or None when Asterisk says it is empty or ``<unknown>``."""
    if not value or value == UNKNOWN:
        return None
    return value


def ring_time_seconds(ring_time_ms: str) -> float:
    """``AgentRingNoAnswer`` reports ``RingTime`` in milliseconds (AgentConnect uses seconds)."""
    return int(ring_time_ms) / 1000.0


def duration_seconds(duration: str) -> float:
    """``CoreShowChannel`` ``Duration`` (``HH:MM:SS``) in seconds; 0 if unreadable."""
    total = 0
    for part in duration.split(":"):
        if not part.isdigit():
            return 0.0
        total = total * 60 + int(part)
    return float(total)
