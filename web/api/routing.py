"""Routing status for people: who is on duty now, who is free, ringing or talking, paused, DND or
in wrap-up, who is next."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from crm_core.models_common import utcnow
from crm_core.outputs import IsoDatetime
from crm_core.policy import may_see_user
from crm_core.routing.service import AgentStatus, routing_status
from crm_core.users.models import User
from web.deps import CurrentUser, Session

router = APIRouter(prefix="/api/routing", tags=["routing"])


class AgentOut(BaseModel):
    """One agent; `login`, `role` and `timezone` only for those the viewer may see in full
    (absent, not null, otherwise: the route answers with response_model_exclude_unset)."""

    user_id: int
    full_name: str
    extension: str
    login: str | None = None
    role: str | None = None
    timezone: str | None = None
    on_duty: bool
    state: str
    routed_count: int
    # available | paused | dnd | wrapup (crm_core.presence); paused and the others are never rung
    presence: str
    presence_reason: str | None
    presence_since: IsoDatetime | None  # None: never set
    wrapup_until: IsoDatetime | None
    # 1 = the next round-robin call rings this agent; None = not in the rotation now
    turn: int | None
    has_schedule: bool
    # why the router never rings this agent, when it never will ("no schedule: never routed")
    routing_note: str | None


class RoutingStatusOut(BaseModel):
    at: IsoDatetime
    agents: list[AgentOut]
    on_duty: list[int]
    free: list[int]
    ringing: list[int]
    talking: list[int]
    paused: list[int]
    dnd: list[int]
    wrapup: list[int]
    next_user_id: int | None
    turn: list[int]  # user ids in round-robin order, the next first


def _agent(a: AgentStatus, turn: list[int], viewer: User) -> AgentOut:
    out = AgentOut(
        user_id=a.user_id,
        full_name=a.full_name,
        extension=a.extension,
        on_duty=a.on_duty,
        state=a.state,
        routed_count=a.routed_count,
        presence=a.presence,
        presence_reason=a.presence_reason,
        presence_since=a.presence_since,
        wrapup_until=a.wrapup_until,
        turn=turn.index(a.user_id) + 1 if a.user_id in turn else None,
        has_schedule=a.has_schedule,
        routing_note=None if a.has_schedule else "no schedule: never routed",
    )
    if may_see_user(viewer, a.user_id):  # as /api/users: names and extensions for colleagues
        out.login, out.role, out.timezone = a.login, a.role, a.timezone
    return out


@router.get("/status", response_model_exclude_unset=True)
async def status(session: Session, user: CurrentUser) -> RoutingStatusOut:
    s = await routing_status(session, utcnow())
    duty = [a for a in s.agents if a.on_duty]
    return RoutingStatusOut(
        at=s.at,
        agents=[_agent(a, s.turn, user) for a in s.agents],
        on_duty=[a.user_id for a in duty],
        # free: on duty, phone idle and not away, i.e. who may be rung now
        free=[a.user_id for a in duty if a.state == "free" and not a.away],
        ringing=[a.user_id for a in s.agents if a.state == "ringing"],
        talking=[a.user_id for a in s.agents if a.state == "talking"],
        paused=[a.user_id for a in s.agents if a.presence == "paused"],
        dnd=[a.user_id for a in s.agents if a.presence == "dnd"],
        wrapup=[a.user_id for a in s.agents if a.presence == "wrapup"],
        next_user_id=s.next_user_id,
        turn=s.turn,
    )
