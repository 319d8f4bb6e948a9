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
# what the PBX's pause flag stands for when a person set it
PBX_PAUSED = frozenset({PAUSED, DND})
# the reason our own wrap-up pause carries at the PBX: its echo is ours, never a person's pause
WRAPUP_PBX_REASON = "wrap-up"

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

    Paused at the PBX covers our paused, DND and wrap-up; unpaused at the PBX ends all three (a
    wrap-up ended at the phone). A pause carrying our wrap-up reason is the echo of our own push,
    whatever the state by the time it arrives: it never becomes a person's pause. Any other
    PBX pause overrides a wrap-up.
    """
    cur = effective(current, now)
    reason = (reason or "").strip() or None
    if paused:
        if cur.state in PBX_PAUSED or reason == WRAPUP_PBX_REASON:
            return None
        return Presence(PAUSED, reason, now)
    if cur.state in AWAY:
        return Presence(AVAILABLE, None, now)
    return None


@dataclass(frozen=True, slots=True)
class PbxPause:
    """The PBX's pause flag for a queue member, and the reason it shows with it."""

    paused: bool
    reason: str | None = None


def pbx_flag(state: str, reason: str | None) -> PbxPause:
    """The flag that agrees with a state: queues ring exactly whom the router would (paused and
    DND under their reason, wrap-up under WRAPUP_PBX_REASON, available unpaused)."""
    if state == WRAPUP:
        return PbxPause(True, WRAPUP_PBX_REASON)
    if state in PBX_PAUSED:
        return PbxPause(True, reason or state)
    return PbxPause(False)


def pbx_pause(p: Presence | None, now: datetime) -> PbxPause:
    """The flag that agrees with a presence as it is at `now` (a wrap-up over: unpaused)."""
    cur = effective(p, now)
    return pbx_flag(cur.state, cur.reason)


def pbx_push(new: Presence, source: str, now: datetime) -> PbxPause | None:
    """What a presence change sends to the PBX: the agreeing flag, or None when the change came
    from the PBX (it shows it already; pushing it back would echo forever)."""
    if source == "pbx":
        return None
    return pbx_pause(new, now)


def wrapup_over(stored: Presence | None, now: datetime) -> PbxPause | None:
    """A wrap-up's time is up: the flag the PBX is sent. The stored presence decides (it may have
    changed since, in an instance that could not push it): the flag that agrees with it, sent
    even if already shown (a repeated QueuePause changes nothing). A newer wrap-up still running
    is left to its own end."""
    if effective(stored, now).state == WRAPUP:
        return None
    return pbx_pause(stored, now)


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
