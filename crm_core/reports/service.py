"""Reports and the supervisors' live board: aggregates in SQL, one query per figure family."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import ActiveCall, AgentState
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStage
from crm_core.schedules.rules import is_on_duty
from crm_core.schedules.service import load_schedules
from crm_core.users.models import User


def _count(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0).cast(Integer)


async def communication_figures(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[int | None, dict[str, Any]]:
    """Per user (None: nobody, e.g. missed calls): calls in/out, answered, missed, talk, emails."""
    c = Communication
    rows = await session.execute(
        select(
            c.user_id,
            _count(and_(c.kind == "call", c.direction == "in")).label("calls_in"),
            _count(and_(c.kind == "call", c.direction == "out")).label("calls_out"),
            _count(and_(c.kind == "call", c.status == "answered")).label("answered"),
            _count(and_(c.kind == "call", c.extra["missed"].astext == "true")).label("missed"),
            func.coalesce(func.sum(case((c.kind == "call", c.talk_seconds), else_=0)), 0).label(
                "talk_seconds"
            ),
            _count(and_(c.kind == "email", c.direction == "out")).label("emails_out"),
            _count(and_(c.kind == "email", c.direction == "in")).label("emails_in"),
            _count(c.kind == "sms").label("sms"),
        )
        .where(c.occurred_at >= start, c.occurred_at < end)
        .group_by(c.user_id)
    )
    return {r.user_id: {k: v for k, v in r._mapping.items() if k != "user_id"} for r in rows}


async def deal_figures(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[int | None, dict[str, Any]]:
    """Per responsible manager: deals created, won and lost in the period, with sums."""
    d, s = Deal, DealStage
    created = await session.execute(
        select(d.responsible_id, func.count(), func.coalesce(func.sum(d.amount), 0))
        .where(d.created_at >= start, d.created_at < end)
        .group_by(d.responsible_id)
    )
    closed = await session.execute(
        select(
            d.responsible_id,
            _count(s.is_won).label("won"),
            func.coalesce(func.sum(case((s.is_won, d.amount), else_=0)), 0).label("won_sum"),
            _count(~s.is_won).label("lost"),
            func.coalesce(func.sum(case((~s.is_won, d.amount), else_=0)), 0).label("lost_sum"),
        )
        .join(s, s.id == d.stage_id)
        .where(s.is_closed, d.closed_at >= start, d.closed_at < end)
        .group_by(d.responsible_id)
    )
    out: dict[int | None, dict[str, Any]] = {}
    zero = {
        "created": 0,
        "created_sum": Decimal(0),
        "won": 0,
        "won_sum": Decimal(0),
        "lost": 0,
        "lost_sum": Decimal(0),
    }
    for user_id, n, total in created:
        out.setdefault(user_id, dict(zero)).update(created=n, created_sum=total)
    for r in closed:
        out.setdefault(r.responsible_id, dict(zero)).update(
            won=r.won, won_sum=r.won_sum, lost=r.lost, lost_sum=r.lost_sum
        )
    return out


async def lead_sources(
    session: AsyncSession, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Deal.lead_source, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(Deal.created_at >= start, Deal.created_at < end)
        .group_by(Deal.lead_source)
        .order_by(func.count().desc())
    )
    return [
        {"lead_source": src or "unknown", "deals": n, "amount": str(total)}
        for src, n, total in rows
    ]


def _money(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


async def report(session: AsyncSession, start: datetime, end: datetime) -> dict[str, Any]:
    """Per manager and for the team: calls in/out, emails, deals created/won/lost with sums,
    lead sources."""
    comms = await communication_figures(session, start, end)
    deals = await deal_figures(session, start, end)
    users = {u.id: u for u in await session.scalars(select(User).order_by(User.id))}
    empty_c = {
        "calls_in": 0,
        "calls_out": 0,
        "answered": 0,
        "missed": 0,
        "talk_seconds": 0.0,
        "emails_out": 0,
        "emails_in": 0,
        "sms": 0,
    }
    empty_d = {
        "created": 0,
        "created_sum": Decimal(0),
        "won": 0,
        "won_sum": Decimal(0),
        "lost": 0,
        "lost_sum": Decimal(0),
    }
    per_manager = []
    team: dict[str, Any] = {**empty_c, **empty_d}
    for uid in sorted(set(comms) | set(deals), key=lambda x: (x is None, x or 0)):
        row = {**empty_c, **comms.get(uid, {}), **empty_d, **deals.get(uid, {})}
        for key, value in row.items():
            team[key] = team[key] + value
        user = users.get(uid) if uid is not None else None
        per_manager.append(
            {
                "user_id": uid,
                "name": user.full_name if user else "(unassigned)",
                "extension": user.extension if user else None,
                **_money(row),
            }
        )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "per_manager": per_manager,
        "team": _money(team),
        "lead_sources": await lead_sources(session, start, end),
    }


RECENT_CALLS = 20


def _recent_call(c: Communication) -> dict[str, Any]:
    """A finished call on the board, with its recording if Asterisk made one."""
    extra = c.extra or {}
    rec = extra.get("recording")
    return {
        "id": c.id,
        "direction": c.direction,
        "status": c.status,
        "phone": c.phone,
        "client_id": c.client_id,
        "at": c.occurred_at.isoformat(),
        "agent_extension": c.agent_extension,
        "talk_seconds": c.talk_seconds,
        # an unanswered call's file holds no audio (MixMonitor writes only while bridged)
        "recording": {"empty": bool(rec.get("empty"))} if isinstance(rec, dict) else None,
    }


def waiting_callers(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The board's queue: callers from outside still waiting for someone to pick up.

    Longest waiting first. A caller in an Asterisk queue has its name and a position there, by
    the time it joined (Asterisk tells a caller's position only as it joins; those ahead leaving
    move it up without an event).
    """
    waiting = [
        dict(c)
        for c in calls
        if c.get("direction") == "inbound" and c.get("state") in ("waiting", "ringing")
    ]
    waiting.sort(key=lambda c: c.get("started_at") or "")
    queued = sorted((c for c in waiting if c.get("queue")), key=lambda c: c["queued_at"] or "")
    ahead: dict[str, int] = {}
    for c in queued:
        c["position"] = ahead[c["queue"]] = ahead.get(c["queue"], 0) + 1
    return waiting


async def live_board(session: AsyncSession, now: datetime, day_start: datetime) -> dict[str, Any]:
    """Calls in progress, each agent's state (ringing/talking/free/off duty), the queue, today's
    missed and most recent calls, and per-manager figures."""
    calls = [
        a.view for a in await session.scalars(select(ActiveCall).order_by(ActiveCall.started_at))
    ]
    states = {a.extension: a for a in await session.scalars(select(AgentState))}
    schedules = {s.user_id: s for s in await load_schedules(session)}
    users = [u for u in await session.scalars(select(User).order_by(User.id)) if u.extension]
    agents = []
    for u in users:
        st = states.get(u.extension or "")
        busy = st.state if st and st.state in ("ringing", "talking") else None
        sched = schedules.get(u.id)
        on_duty = bool(sched and is_on_duty(sched, now))
        agents.append(
            {
                "user_id": u.id,
                "name": u.full_name,
                "extension": u.extension,
                "role": u.role,
                "state": busy or ("free" if on_duty else "off duty"),
                "on_duty": on_duty,
                "since": st.since.isoformat() if st else None,
                "linkedid": st.linkedid if busy and st else None,
            }
        )
    missed = (
        await session.scalars(
            select(Communication)
            .where(
                Communication.kind == "call",
                Communication.occurred_at >= day_start,
                Communication.extra["missed"].astext == "true",
            )
            .order_by(Communication.occurred_at.desc())
            .limit(50)
        )
    ).all()
    recent = (
        await session.scalars(
            select(Communication)
            .where(Communication.kind == "call", Communication.occurred_at >= day_start)
            .order_by(Communication.occurred_at.desc())
            .limit(RECENT_CALLS)
        )
    ).all()
    figures = await communication_figures(session, day_start, day_start + timedelta(days=1))
    by_user = {u.id: u for u in users}
    return {
        "at": now.isoformat(),
        "calls": calls,
        "queue": waiting_callers(calls),
        "agents": agents,
        "missed_today": [
            {
                "id": m.id,
                "phone": m.phone,
                "client_id": m.client_id,
                "at": m.occurred_at.isoformat(),
                "agents_rung": (m.extra or {}).get("agents_rung", []),
            }
            for m in missed
        ],
        "recent_calls": [_recent_call(c) for c in recent],
        "today": [
            {
                "user_id": uid,
                "name": by_user[uid].full_name if uid in by_user else "(unassigned)",
                **f,
            }
            for uid, f in figures.items()
        ],
    }
