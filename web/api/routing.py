"""Routing status for people: who is on duty now, who is free, ringing or talking, who is next."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from crm_core.models_common import utcnow
from crm_core.policy import may_see_user
from crm_core.routing.service import AgentStatus, routing_status
from crm_core.users.models import User
from web.deps import CurrentUser, Session

router = APIRouter(prefix="/api/routing", tags=["routing"])


def _agent(a: AgentStatus, turn: list[int], viewer: User) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user_id": a.user_id,
        "full_name": a.full_name,
        "extension": a.extension,
    }
    if may_see_user(viewer, a.user_id):  # as /api/users: names and extensions for colleagues
        out.update(login=a.login, role=a.role, timezone=a.timezone)
    out.update(
        on_duty=a.on_duty,
        state=a.state,
        routed_count=a.routed_count,
        # 1 = the next round-robin call rings this agent; None = not in the rotation now
        turn=turn.index(a.user_id) + 1 if a.user_id in turn else None,
    )
    return out


@router.get("/status")
async def status(session: Session, user: CurrentUser) -> dict[str, Any]:
    s = await routing_status(session, utcnow())
    duty = [a for a in s.agents if a.on_duty]
    return {
        "at": s.at.isoformat(),
        "agents": [_agent(a, s.turn, user) for a in s.agents],
        "on_duty": [a.user_id for a in duty],
        "free": [a.user_id for a in duty if a.state == "free"],
        "ringing": [a.user_id for a in s.agents if a.state == "ringing"],
        "talking": [a.user_id for a in s.agents if a.state == "talking"],
        "next_user_id": s.next_user_id,
        "turn": s.turn,
    }
