"""GET /api/health: whether the database answers, and which of the running parts are down.

503 only when the database does not answer (nothing works without it); a part that is down
(AMI, FastAGI, the outbox worker, inbound SMTP, the event hub) is named with status "degraded"
and a 200, so a load balancer keeps the instance while a human sees what to fix.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from web.container import Container
from web.db_health import probe
from web.deps import container

router = APIRouter(tags=["health"])


def _ami(c: Container) -> str:
    if not c.settings.telephony.ami_enabled:
        return "disabled"
    election, tracking = c.ami_election, c.call_tracking
    if election is None or tracking is None:
        return "down"
    if not election.is_leader:
        return "standby"  # another instance follows the PBX
    listener = tracking.listener
    return "up" if listener is not None and str(listener.state) == "connected" else "down"


def _agi(c: Container) -> str:
    if not c.settings.telephony.agi_enabled:
        return "disabled"
    agi = c.agi_routing
    return "up" if agi is not None and agi.server is not None else "down"


def _outbox(c: Container) -> str:
    messaging = c.messaging
    if messaging is None or not messaging.senders() or not c.settings.notifier.outbox_enabled:
        return "disabled"
    return "up" if messaging.worker is not None and messaging.worker.running else "down"


def _inbound_smtp(c: Container) -> str:
    if not c.settings.notifier.inbound_smtp_enabled:
        return "disabled"
    messaging = c.messaging
    return "up" if messaging is not None and messaging.inbound is not None else "down"


def parts(c: Container) -> dict[str, str]:
    return {"ami": _ami(c), "agi": _agi(c), "outbox": _outbox(c), "inbound_smtp": _inbound_smtp(c)}


class Parts(BaseModel):
    """Each part: up, down, disabled (not configured here) or, for AMI, standby (another
    instance follows the PBX)."""

    ami: str
    agi: str
    outbox: str
    inbound_smtp: str


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    database: Literal["up", "down"]
    parts: Parts
    database_error: str | None = None  # only when the database is down: why


@router.get(
    "/api/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "the database does not answer"}},
)
async def health(request: Request) -> JSONResponse:
    c = container(request)
    problem = await probe(c.engine, c.settings.web.health_timeout_seconds)
    states = parts(c)
    body = HealthOut(
        status="down" if problem else "degraded" if "down" in states.values() else "ok",
        database="down" if problem else "up",
        parts=Parts(**states),
    )
    if problem:
        body.database_error = problem
    # a JSONResponse for the 503; database_error stays absent, not null, while the database is up
    return JSONResponse(body.model_dump(exclude_unset=True), status_code=503 if problem else 200)
