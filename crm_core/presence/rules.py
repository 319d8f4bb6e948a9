"""Agent presence: pure rules, no I/O.

An agent is available, paused (with a reason), do-not-disturb, or in wrap-up after a call
(until a moment; past it they are available again with nobody writing). The router never deals
a call to a paused, DND or wrap-up agent. The PBX has its own pause flag per queue member
(QueueMemberPause); the two are kept in agreement both ways (telephony/presence_events.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

AVAILABLE = "available"
PAUSED = "paused"
DND = "dnd"
WRAPUP = "wrapup"
STATES = (AVAILABLE, PAUSED, DND, WRAPUP)
# what a person may choose; wrap-up is started by a call and only ended by a person
SETTABLE = (AVAILABLE, PAUSED, DND)
# never dealt a call; the SQL twin is repository.BATCH_SQL's `away`
AWAY = frozenset({PAUSED, DND, WRAPUP})
# what the PBX's pause flag stands for
PBX_PAUSED = frozenset({PAUSED, DND})

# (code, names by locale): seeded by migration 0009 in DEFAULT_LOCALE; admins edit the list
DEFAULT_PAUSE_REASONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("lunch", {"ru": "Обед", "en": "Lunch"}),
    ("break", {"ru": "Перерыв", "en": "Break"}),
    ("training", {"ru": "Обучение", "en": "Training"}),
    ("paperwork", {"ru": "Работа с документами", "en": "Paperwork"}),
    ("meeting", {"ru": "Совещание", "en": "Meeting"}),
)


@dataclass(frozen=True, slots=True)
class Presence:
    state: str
    reason: str | None
    since: datetime | None  # None: never set (available since forever)
    until: datetime | None = None  # wrap-up's end


NEVER_SET = Presence(AVAILABLE, None, None)


def effective(p: Presence | None, now: datetime) -> Presence:
    """The state as it is at `now`: a wrap-up whose time is up is available since its end."""
    if p is None:
        return NEVER_SET
    if p.state == WRAPUP and p.until is not None and p.until <= now:
        return Presence(AVAILABLE, None, p.until)
    return p


def is_away(p: Presence | None, now: datetime) -> bool:
    return effective(p, now).state in AWAY


def change(
    current: Presence | None, state: str, reason: str | None, now: datetime
) -> Presence | None:
    """The new presence for a requested state, or None when nothing changes."""
    if state not in STATES:
        raise ValueError(f"unknown presence state {state!r}")
    cur = effective(current, now)
    reason = reason if state == PAUSED else None
    if cur.state == state and cur.reason == reason and state != WRAPUP:
        return None
    return Presence(state, reason, now)


def wrapup_after_call(
    current: Presence | None, ended: datetime, seconds: float, now: datetime
) -> Presence | None:
    """Wrap-up after an answered call: only from available (a pause or DND chosen during the
    call stands), for `seconds` counted from the call's end; none when it would already be over."""
    if seconds <= 0 or effective(current, now).state != AVAILABLE:
        return None
    until = ended + timedelta(seconds=seconds)
    if until <= now:
        return None
    return Presence(WRAPUP, None, ended, until)


def from_pbx(
    current: Presence | None, paused: bool, reason: str | None, now: datetime
) -> Presence | None:
    """The PBX says the member is (un)paused: the presence that agrees, or None if it already does.

    Paused at the PBX covers our paused and DND; unpaused at the PBX ends both. A wrap-up is ours
    alone (the PBX's own wrapuptime is separate) and a PBX pause overrides it.
    """
    cur = effective(current, now)
    if paused and cur.state not in PBX_PAUSED:
        return Presence(PAUSED, (reason or "").strip() or None, now)
    if not paused and cur.state in PBX_PAUSED:
        return Presence(AVAILABLE, None, now)
    return None


def seconds_per_state(
    spans: Iterable[tuple[str, datetime, datetime | None]], start: datetime, end: datetime
) -> dict[str, float]:
    """Time in each state within [start, end): spans (state, since, until or None = still on),
    clipped to the period."""
    out: dict[str, float] = {}
    for state, since, until in spans:
        lo = max(since, start)
        hi = min(until or end, end)
        if hi > lo:
            out[state] = out.get(state, 0.0) + (hi - lo).total_seconds()
    return out
