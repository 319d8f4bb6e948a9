"""Reports and the supervisors' live board: aggregates in SQL, one query per figure family."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, and_, func, literal, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import ActiveCall, AgentState
from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStage
from crm_core.presence import rules as presence_rules
from crm_core.presence import service as presence
from crm_core.reports.custom_plans import custom_plans
from crm_core.reports.plans import period_plans
from crm_core.reports.rules import money, percent
from crm_core.schedules.rules import is_on_duty
from crm_core.schedules.service import load_schedules
from crm_core.users.models import User

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

# One statement over the period's communications: the first branch groups every row by owner,
# kind, direction and answered (plain columns: no JSON read per row); the second reads only the
# missed calls (ix_communications_missed, whose predicate these literals match), grouped by owner,
# direction and, for a missed call nobody owns, the extensions it rang, each distinct list
# resolved to users once. A missed call nobody owns counts for each agent whose phone rang (once
# per call), not for "(unassigned)"; the team's totals still count it once.
_COMMS_SQL = text(
    """
SELECT user_id, kind, direction, status = 'answered' AS answered, false AS missed,
       NULL::int[] AS rung_users, count(*) AS n, coalesce(sum(talk_seconds), 0) AS talk
FROM communications
WHERE occurred_at >= :start AND occurred_at < :end
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT m.user_id, 'call', m.direction, NULL, true,
       ARRAY(SELECT DISTINCT u.id
             FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(m.rung) = 'array'
                                                 THEN m.rung ELSE '[]'::jsonb END) AS r(ext)
             JOIN users u ON u.extension = r.ext),
       m.n, 0
FROM (
    SELECT user_id, direction,
           CASE WHEN user_id IS NULL THEN extra -> 'agents_rung' END AS rung, count(*) AS n
    FROM communications
    WHERE kind = 'call' AND (extra ->> 'missed') = 'true'
      AND occurred_at >= :start AND occurred_at < :end
    GROUP BY 1, 2, 3
) AS m
"""
)


def _empty_comms() -> dict[str, Any]:
    return {k: 0.0 if k == "talk_seconds" else 0 for k in COMM_KEYS}


def _fold_base(
    base: dict[int | None, dict[str, Any]],
    uid: int | None,
    kind: str,
    direction: str,
    was_answered: bool,
    n: int,
    talk: float,
) -> None:
    """One (owner, kind, direction, answered) group into its owner's figures."""
    f = base.setdefault(uid, _empty_comms())
    if kind == "call":
        f["calls_in" if direction == "in" else "calls_out"] += n
        f["answered"] += n if was_answered else 0
        f["talk_seconds"] += float(talk or 0)
        key = "answered" if was_answered else "missed"
        f[f"calls_{direction}_{key}"] += n
    elif kind == "email":
        f["emails_in" if direction == "in" else "emails_out"] += n
    elif kind == "sms":
        f["sms"] += n
        f["sms_in" if direction == "in" else "sms_out"] += n


def _move_rung(
    figures: dict[int | None, dict[str, Any]], uid: int | None, direction: str, n: int
) -> None:
    """n missed calls of `direction` to `uid` (None: away from nobody, sign -1)."""
    sign = -1 if uid is None else 1
    row = figures.setdefault(uid, _empty_comms())
    row["calls_in" if direction == "in" else "calls_out"] += sign * n
    row["missed"] += sign * n
    row["calls_in_missed" if direction == "in" else "calls_out_missed"] += sign * n


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
    await custom_plans(session)
    base: dict[int | None, dict[str, Any]] = {}
    moves: list[tuple[int | None, str, int]] = []
    rows = await session.execute(_COMMS_SQL, {"start": start, "end": end})
    for uid, kind, direction, was_answered, missed, rung_users, n, talk in rows:
        if not missed:
            _fold_base(base, uid, kind, direction, was_answered, n, talk)
            continue
        base.setdefault(uid, _empty_comms())["missed"] += n
        if rung_users:  # each agent rung once per call; the call leaves nobody once
            moves += [(u, direction, n) for u in rung_users]
            moves.append((None, direction, n))
    team = _team_comms(base)
    figures = {uid: dict(row) for uid, row in base.items()}
    for uid, direction, n in moves:
        _move_rung(figures, uid, direction, n)
    nobody = figures.get(None)
    if nobody is not None and not any(nobody.values()):
        del figures[None]
    return team, figures


def _deal_columns(start: datetime, end: datetime) -> list[Any]:
    """Deals created, won and lost in [start, end), with sums, as FILTERed aggregates."""
    d, s = Deal, DealStage
    created = and_(d.created_at >= start, d.created_at < end)
    closed = and_(s.is_closed, d.closed_at >= start, d.closed_at < end)
    won, lost = and_(closed, s.is_won), and_(closed, ~s.is_won)
    zero = literal(0, Numeric)
    return [
        func.count().filter(created),
        func.coalesce(func.sum(d.amount).filter(created), zero),
        func.count().filter(won),
        func.coalesce(func.sum(d.amount).filter(won), zero),
        func.count().filter(lost),
        func.coalesce(func.sum(d.amount).filter(lost), zero),
    ]


DEAL_KEYS = ("created", "created_sum", "won", "won_sum", "lost", "lost_sum")


async def deal_figures_for(
    session: AsyncSession, periods: Sequence[tuple[datetime, datetime]]
) -> tuple[list[dict[int | None, dict[str, Any]]], list[tuple[str | None, int, Decimal]]]:
    """Per responsible manager, for each of `periods`: deals created, won and lost, with sums;
    and per lead source the deals created in the first period (count, sum), biggest first.

    One pass over the deals created or closed within the periods' span (GROUPING SETS: by
    manager and by lead source) instead of a query per figure and period."""
    await custom_plans(session)
    d, s = Deal, DealStage
    lo, hi = min(p[0] for p in periods), max(p[1] for p in periods)
    cols = [c for start, end in periods for c in _deal_columns(start, end)]
    q = (
        select(d.responsible_id, d.lead_source, func.grouping(d.responsible_id), *cols)
        .join(s, s.id == d.stage_id)
        .where(
            or_(
                and_(d.created_at >= lo, d.created_at < hi),
                and_(d.closed_at >= lo, d.closed_at < hi),
            )
        )
        .group_by(func.grouping_sets(tuple_(d.responsible_id), tuple_(d.lead_source)))
    )
    per_period: list[dict[int | None, dict[str, Any]]] = [{} for _ in periods]
    sources: list[tuple[str | None, int, Decimal]] = []
    width = len(DEAL_KEYS)
    for uid, source, by_source, *values in await session.execute(q):
        if by_source:
            if values[0]:
                sources.append((source, values[0], values[1]))
            continue
        for i, out in enumerate(per_period):
            figures = dict(zip(DEAL_KEYS, values[i * width : (i + 1) * width], strict=True))
            if figures["created"] or figures["won"] or figures["lost"]:
                out[uid] = figures
    sources.sort(key=lambda r: -r[1])
    return per_period, sources


def _lead_sources(sources: list[tuple[str | None, int, Decimal]]) -> list[dict[str, Any]]:
    return [
        {"lead_source": src or "unknown", "deals": n, "amount": str(total)}
        for src, n, total in sources
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
    (deals,), sources = await deal_figures_for(session, [(start, end)])
    users = {
        uid: (name, ext)
        for uid, name, ext in await session.execute(select(User.id, User.full_name, User.extension))
    }
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
                "name": user[0] if user else "(unassigned)",
                "extension": user[1] if user else None,
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
        "lead_sources": _lead_sources(sources),
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
