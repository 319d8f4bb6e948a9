"""Presence over a session: read it, change it (with history and the event), the reason list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import collect_event
from crm_core.errors import Invalid, NotFound
from crm_core.presence import rules
from crm_core.presence.events import PresenceChanged
from crm_core.presence.models import AgentPresence, PauseReason, PresenceSpan
from crm_core.presence.rules import Presence
from crm_core.reports.custom_plans import custom_plans
from crm_core.users.models import User


def _of(row: AgentPresence | None) -> Presence | None:
    return None if row is None else Presence(row.state, row.reason, row.since, row.until)


async def current(
    session: AsyncSession, user_ids: Sequence[int] | None = None
) -> dict[int, Presence]:
    """Stored presence per user (no entry: never set, available); wrap-ups not yet evaluated."""
    q = select(AgentPresence)
    if user_ids is not None:
        q = q.where(AgentPresence.user_id.in_(list(user_ids)))
    return {
        r.user_id: Presence(r.state, r.reason, r.since, r.until) for r in await session.scalars(q)
    }


async def _write(
    session: AsyncSession, user: User, new: Presence, source: str, now: datetime
) -> Presence:
    """Store `new` as the user's presence, cut the history at `now`, publish the change."""
    assert new.since is not None
    row = await session.get(AgentPresence, user.id, with_for_update=True)
    if row is None:
        row = AgentPresence(user_id=user.id)
        session.add(row)
    row.state, row.reason, row.source = new.state, new.reason, source
    row.since, row.until = new.since, new.until
    # history: what was planned after now (a wrap-up's tail, the available after it) is undone
    await session.execute(
        delete(PresenceSpan).where(PresenceSpan.user_id == user.id, PresenceSpan.since >= now)
    )
    await session.execute(
        update(PresenceSpan)
        .where(
            PresenceSpan.user_id == user.id,
            or_(PresenceSpan.until.is_(None), PresenceSpan.until > now),
        )
        .values(until=now)
    )
    if new.state == rules.WRAPUP and new.until is not None:
        session.add(
            PresenceSpan(user_id=user.id, state=new.state, since=new.since, until=new.until)
        )
        # after the wrap-up the agent is available, written now so nobody has to at its end
        session.add(PresenceSpan(user_id=user.id, state=rules.AVAILABLE, since=new.until))
    else:
        session.add(PresenceSpan(user_id=user.id, state=new.state, reason=new.reason, since=now))
    collect_event(
        session,
        PresenceChanged(
            user_id=user.id,
            extension=user.extension,
            state=new.state,
            reason=new.reason,
            since=new.since.isoformat(),
            until=new.until.isoformat() if new.until else None,
            source=source,
        ),
    )
    return new


async def set_state(
    session: AsyncSession,
    user: User,
    state: str,
    reason: str | None,
    now: datetime,
    source: str = "api",
) -> tuple[Presence, bool]:
    """A person's choice (available ends a wrap-up early). -> (presence now, changed?)."""
    if state not in rules.SETTABLE:
        raise Invalid(f"state must be one of {', '.join(rules.SETTABLE)}")
    if state == rules.PAUSED and reason:
        reason = await resolve_reason(session, reason)
    stored = _of(await session.get(AgentPresence, user.id))
    new = rules.change(stored, state, reason, now)
    if new is None:
        return rules.effective(stored, now), False
    return await _write(session, user, new, source, now), True


async def start_wrapup(
    session: AsyncSession,
    extensions: Iterable[str],
    ended: datetime,
    seconds: float,
    now: datetime,
    *,
    on: Mapping[str, User],
) -> list[int]:
    """Wrap-up for the agents who talked on a call that ended at `ended`; -> their user ids.
    `on`: the users by extension (`users_by_extension`) of a superset of `extensions` (a batch's
    calls read them at once)."""
    exts = {e for e in extensions if e}
    if not exts or seconds <= 0:
        return []
    started = []
    for user in (on[e] for e in sorted(exts) if e in on):
        stored = _of(await session.get(AgentPresence, user.id))
        new = rules.wrapup_after_call(stored, ended, seconds, now)
        if new is not None:
            await _write(session, user, new, "call", now)
            started.append(user.id)
    return started


async def from_pbx(
    session: AsyncSession, extension: str, paused: bool, reason: str | None, now: datetime
) -> list[int]:
    """The PBX (un)paused a queue member: the users on that extension follow. -> changed ids."""
    users = (await session.scalars(select(User).where(User.extension == extension))).all()
    changed = []
    for user in users:
        stored = _of(await session.get(AgentPresence, user.id))
        new = rules.from_pbx(stored, paused, reason, now)
        if new is not None:
            await _write(session, user, new, "pbx", now)
            changed.append(user.id)
    return changed


async def time_per_state(
    session: AsyncSession, start: datetime, end: datetime, user_ids: Sequence[int] | None = None
) -> dict[int, dict[str, float]]:
    """Seconds in each state per user within [start, end), from the history: each span clipped
    to the period (`rules.seconds_per_state`), summed in SQL (a month of 300 agents' spans is
    ~100,000 rows: not to be read into Python)."""
    await custom_plans(session)  # a month's spans: planned for this period
    h = PresenceSpan
    a, b = literal(start, DateTime(timezone=True)), literal(end, DateTime(timezone=True))
    lo = func.greatest(h.since, a)
    hi = func.least(func.coalesce(h.until, b), b)
    q = (
        select(h.user_id, h.state, func.extract("epoch", func.sum(hi - lo)).cast(Float))
        .where(h.since < end, or_(h.until.is_(None), h.until > start), hi > lo)
        .group_by(h.user_id, h.state)
    )
    if user_ids is not None:
        q = q.where(h.user_id.in_(list(user_ids)))
    out: dict[int, dict[str, float]] = {}
    for uid, state, seconds in await session.execute(q):
        out.setdefault(uid, {})[state] = float(seconds)
    return out


# --- pause reasons -----------------------------------------------------------------------------


async def reasons(session: AsyncSession, *, active_only: bool = True) -> list[PauseReason]:
    q = select(PauseReason).order_by(PauseReason.position, PauseReason.id)
    if active_only:
        q = q.where(PauseReason.is_active.is_(True))
    return list((await session.scalars(q)).all())


async def resolve_reason(session: AsyncSession, given: str) -> str:
    """A reason as typed (its code or its name, any case) -> the list's code; 422 otherwise."""
    key = given.strip().lower()
    for r in await reasons(session):
        if key in (r.code.lower(), r.name.lower()):
            return r.code
    codes = ", ".join(r.code for r in await reasons(session))
    raise Invalid(f"unknown pause reason {given!r} (one of: {codes})")


async def save_reason(
    session: AsyncSession, reason_id: int | None, data: dict[str, Any]
) -> PauseReason:
    row: PauseReason | None
    if reason_id is None:
        if await session.scalar(select(PauseReason.id).where(PauseReason.code == data["code"])):
            raise Invalid(f"pause reason {data['code']!r} exists")
        top = await session.scalar(select(func.coalesce(func.max(PauseReason.position), -1)))
        row = PauseReason(position=int(top or 0) + 1, is_active=True)
        session.add(row)
    else:
        row = await session.get(PauseReason, reason_id)
        if row is None:
            raise NotFound(f"pause reason {reason_id} not found")
    for key, value in data.items():
        if value is not None:
            setattr(row, key, value)
    await session.flush()
    return row
