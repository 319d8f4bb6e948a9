"""The domain event of a presence change (published after the commit, to supervisors)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    user_id: int
    extension: str | None
    state: str
    reason: str | None
    since: str  # ISO
    until: str | None  # a wrap-up's end (ISO)
    source: str  # api | pbx | call
