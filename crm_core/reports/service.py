"""Reports and the supervisors' live board: aggregates in SQL, one query per figure family."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import ActiveCall, AgentState
from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStage
from crm_core.presence import rules as presence_rules
from crm_core.presence import service as presence
from crm_core.reports.plans import period_plans
from crm_core.reports.rules import money, percent
from crm_core.schedules.rules import is_on_duty
from crm_core.schedules.service import load_schedules
from crm_core.users.models import User


def _count(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0).cast(Integer)


COMM_KEYS = (
    "calls_in",
    "calls_out",
    "answered",
    "missed",
    "talk_seconds",
    "emails_out",
    "emails_in",
    "sms",
    "sms_in",
    "sms_out",
    "calls_in_answered",
    "calls_in_missed",
    "calls_out_answered",
    "calls_out_missed",
)

# A missed call nobody owns counts for each agent whose phone rang (once per call), not for
# "(unassigned)"; the team's totals still count it once.
_RUNG_MISSED_SQL = text(
    """
WITH pairs AS (
    SELECT DISTINCT c.id, c.direction, u.id AS user_id
    FROM communications c
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(c.extra -> 'agents_rung') = 'array'
             THEN c.extra -> 'agents_rung' ELSE '[]'::jsonb END) AS r(ext)
    JOIN users u ON u.extension = r.ext
    WHERE c.kind = 'call' AND c.user_id IS NULL AND c.extra ->> 'missed' = 'true'
      AND c.occurred_at >= :start AND c.occurred_at < :end
)
SELECT user_id, count(*) FILTER (WHERE direction = 'in') AS calls_in,
       count(*) FILTER (WHERE direction = 'out') AS calls_out
FROM pairs GROUP BY user_id
UNION ALL
SELECT NULL, count(*) FILTER (WHERE direction = 'in'), count(*) FILTER (WHERE direction = 'out')
FROM (SELECT DISTINCT id, direction FROM pairs) AS calls
"""
)


async def _base_figures(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[int | None, dict[str, Any]]:
    """Per owning user (None: nobody): calls, answered, missed, talk, emails, SMS.

    Counted by (user, kind, direction, status, missed) in SQL, a few dozen groups per user, and
    folded into the figures here: one hash aggregate instead of fifteen conditions per row (a
    month of 200,000 communications: about half the time)."""
    c = Communication
    answered = (c.status == "answered").label("answered")
    missed = and_(c.kind == "call", c.extra["missed"].astext == "true").label("missed")
    rows = await session.execute(
        select(
            c.user_id,
            c.kind,
            c.direction,
            answered,
            missed,
            func.count(),
            func.coalesce(func.sum(c.talk_seconds), 0.0),
        )
        .where(c.occurred_at >= start, c.occurred_at < end)
        .group_by(c.user_id, c.kind, c.direction, "answered", "missed")
    )
    out: dict[int | None, dict[str, Any]] = {}
    for uid, kind, direction, was_answered, is_missed, n, talk in rows:
        f = out.setdefault(uid, _empty_comms())
        if kind == "call":
            f["calls_in" if direction == "in" else "calls_out"] += n
            f["answered"] += n if was_answered else 0
            f["missed"] += n if is_missed else 0
            f["talk_seconds"] += float(talk or 0)
            key = "answered" if was_answered else "missed"
            f[f"calls_{direction}_{key}"] += n
        elif kind == "email":
            f["emails_in" if direction == "in" else "emails_out"] += n
        elif kind == "sms":
            f["sms"] += n
            f["sms_in" if direction == "in" else "sms_out"] += n
    return out


def _empty_comms() -> dict[str, Any]:
    return {k: 0.0 if k == "talk_seconds" else 0 for k in COMM_KEYS}


async def communication_figures(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[int | None, dict[str, Any]]:
    """Per user (None: nobody, e.g. a missed call no agent's phone rang for): calls in/out,
    answered, missed (for every agent rung), talk, emails, SMS."""
    return (await _figures(session, start, end))[1]


async def _figures(
    session: AsyncSession, start: datetime, end: datetime
) -> tuple[dict[str, Any], dict[int | None, dict[str, Any]]]:
    """(the team's totals, each call once; figures per user with missed calls moved to the
    agents rung)."""
    base = await _base_figures(session, start, end)
    team = _team_comms(base)
    figures = {uid: dict(row) for uid, row in base.items()}
    rung = await session.execute(_RUNG_MISSED_SQL, {"start": start, "end": end})
    for uid, calls_in, calls_out in rung:
        n_in, n_out = int(calls_in or 0), int(calls_out or 0)
        if n_in + n_out == 0:
            continue
        sign = -1 if uid is None else 1  # the grand total row: moved away from nobody
        row = figures.setdefault(uid, _empty_comms())
        row["calls_in"] += sign * n_in
        row["calls_out"] += sign * n_out
        row["missed"] += sign * (n_in + n_out)
        row["calls_in_missed"] += sign * n_in
        row["calls_out_missed"] += sign * n_out
    nobody = figures.get(None)
    if nobody is not None and not any(nobody.values()):
        del figures[None]
    return team, figures


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


def _team_comms(base: dict[int | None, dict[str, Any]]) -> dict[str, Any]:
    team = _empty_comms()
    for row in base.values():
        for key in COMM_KEYS:
            team[key] += row.get(key, 0)
    return team


EMPTY_DEALS: dict[str, Any] = {
    "created": 0,
    "created_sum": Decimal(0),
    "won": 0,
    "won_sum": Decimal(0),
    "lost": 0,
    "lost_sum": Decimal(0),
}


def _plan_fields(plan: Decimal | None, won: Decimal) -> dict[str, Any]:
    return {
        "plan_amount": money(plan) if plan is not None else None,
        "won_amount": money(won),
        "plan_percent": percent(won, plan) if plan else None,
    }


async def report(session: AsyncSession, start: datetime, end: datetime) -> dict[str, Any]:
    """Per manager and for the team: calls in/out, emails, SMS, deals created/won/lost with sums,
    the sales plan for the period against what was won, lead sources."""
    team_comms, comms = await _figures(session, start, end)
    deals = await deal_figures(session, start, end)
    users = {u.id: u for u in await session.scalars(select(User).order_by(User.id))}
    first, last = start.date(), (end - timedelta(days=1)).date()
    plans = await period_plans(session, first, last)
    per_manager = []
    team_deals = dict(EMPTY_DEALS)
    ids = set(comms) | set(deals) | set(plans)
    for uid in sorted(ids, key=lambda x: (x is None, x or 0)):
        d = {**EMPTY_DEALS, **deals.get(uid, {})}
        for key in EMPTY_DEALS:
            team_deals[key] = team_deals[key] + d[key]
        row = {**_empty_comms(), **comms.get(uid, {}), **d}
        user = users.get(uid) if uid is not None else None
        plan = plans.get(uid) if uid is not None else None
        per_manager.append(
            {
                "user_id": uid,
                "name": user.full_name if user else "(unassigned)",
                "extension": user.extension if user else None,
                **_money(row),
                **_plan_fields(plan, d["won_sum"]),
            }
        )
    team_plan = sum(plans.values(), Decimal(0)) if plans else None
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "per_manager": per_manager,
        "team": {
            **_money({**team_comms, **team_deals}),
            **_plan_fields(team_plan, team_deals["won_sum"]),
        },
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
    presences = await presence.current(session, [u.id for u in users])
    agents = []
    for u in users:
        p = presence_rules.effective(presences.get(u.id), now)
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
                "presence": p.state,
                "presence_reason": p.reason,
                "presence_since": p.since.isoformat() if p.since else None,
                "wrapup_until": p.until.isoformat() if p.until and p.state == "wrapup" else None,
            }
        )
    return {
        "at": now.isoformat(),
        "calls": calls,
        "queue": waiting_callers(calls),
        "agents": agents,
        **await finished_calls(session, day_start),
    }


async def finished_calls(session: AsyncSession, day_start: datetime) -> dict[str, Any]:
    """The board's part that changes when a call ends: today's missed and most recent calls and
    per-manager figures (re-read once per finished call; the live part follows the messages)."""
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
    # the names of those with figures only (re-read per finished call: not every user's row)
    names_of = dict(
        (
            await session.execute(
                select(User.id, User.full_name).where(User.id.in_([u for u in figures if u]))
            )
        ).all()
    )
    ids = list({m.client_id for m in missed})
    names = dict(
        (await session.execute(select(Client.id, Client.name).where(Client.id.in_(ids)))).all()
    )
    # called back: the first answered call with the client (either way: we rang them, or they
    # got through) after the missed one, the call that also closes their callback task
    # (crm_core.tasks.callbacks.on_answered_call)
    answered_at: dict[int, list[datetime]] = {}
    for client_id, at in (
        await session.execute(
            select(Communication.client_id, Communication.occurred_at)
            .where(
                Communication.kind == "call",
                Communication.status == "answered",
                Communication.client_id.in_(ids),
                Communication.occurred_at >= day_start,
            )
            .order_by(Communication.occurred_at)
        )
    ).all():
        answered_at.setdefault(client_id, []).append(at)

    def called_back(m: Communication) -> datetime | None:
        return next((at for at in answered_at.get(m.client_id, []) if at > m.occurred_at), None)

    return {
        "missed_today": [
            {
                "id": m.id,
                "phone": m.phone,
                "client_id": m.client_id,
                "client_name": names.get(m.client_id),
                "at": m.occurred_at.isoformat(),
                "agents_rung": (m.extra or {}).get("agents_rung", []),
                "called_back": (back := called_back(m)) is not None,
                "called_back_at": back.isoformat() if back else None,
            }
            for m in missed
        ],
        "recent_calls": [_recent_call(c) for c in recent],
        "today": [
            {
                "user_id": uid,
                "name": names_of.get(uid, "(unassigned)") if uid else "(unassigned)",
                **f,
            }
            for uid, f in figures.items()
        ],
    }
