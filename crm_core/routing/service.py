"""The routing status for people (who is on duty, free, away, next in turn): services over a
session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.presence import rules as presence_rules
from crm_core.presence import service as presence
from crm_core.routing import repository
from crm_core.routing.rules import BUSY_STATES, turn_order
from crm_core.schedules.rules import is_on_duty
from crm_core.schedules.service import load_schedules


@dataclass(frozen=True, slots=True)
class AgentStatus:
    user_id: int
    login: str
    full_name: str
    role: str
    extension: str
    timezone: str
    on_duty: bool
    state: str  # free | ringing | talking (what the call tracker last saw)
    routed_count: int  # round-robin calls dealt so far
    has_schedule: bool = True  # False: no hours at all, so never on duty, never routed
    presence: str = presence_rules.AVAILABLE  # available | paused | dnd | wrapup
    presence_reason: str | None = None
    presence_since: datetime | None = None
    wrapup_until: datetime | None = None

    @property
    def away(self) -> bool:
        return self.presence in presence_rules.AWAY


@dataclass(frozen=True, slots=True)
class RoutingStatus:
    at: datetime
    agents: list[AgentStatus]
    # on duty, free and not away, in the order round-robin calls will reach them: the first next
    turn: list[int]

    @property
    def next_user_id(self) -> int | None:
        return self.turn[0] if self.turn else None


async def routing_status(session: AsyncSession, instant: datetime) -> RoutingStatus:
    users = await repository.routable_users(session)
    ids = [u.id for u in users]
    schedules = {s.user_id: s for s in await load_schedules(session, ids)}
    states = await repository.agent_states(session, [u.extension or "" for u in users])
    turns = await repository.turns(session, ids)
    presences = await presence.current(session, ids)
    agents: list[AgentStatus] = []
    for u in users:
        schedule = schedules.get(u.id)
        raw_state = states.get(u.extension or "", "free")
        p = presence_rules.effective(presences.get(u.id), instant)
        agents.append(
            AgentStatus(
                user_id=u.id,
                login=u.login,
                full_name=u.full_name,
                role=u.role,
                extension=u.extension or "",
                timezone=u.timezone,
                on_duty=schedule is not None and is_on_duty(schedule, instant),
                state=raw_state if raw_state in BUSY_STATES else "free",
                routed_count=turns.get(u.id, (0, 0))[1],
                has_schedule=schedule is not None and bool(schedule.intervals or schedule.changes),
                presence=p.state,
                presence_reason=p.reason,
                presence_since=p.since,
                wrapup_until=p.until if p.state == presence_rules.WRAPUP else None,
            )
        )
    candidates = [a.user_id for a in agents if a.on_duty and a.state == "free" and not a.away]
    order = turn_order(candidates, {uid: t[0] for uid, t in turns.items()})
    return RoutingStatus(at=instant, agents=agents, turn=order)
