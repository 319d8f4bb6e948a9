"""GET /api/health: whether the database answers, and which of the running parts are down.

503 only when the database does not answer (nothing works without it); a part that is down
(AMI, FastAGI, the outbox worker, inbound SMTP, the event hub) is named with status "degraded"
and a 200, so a load balancer keeps the instance while a human sees what to fix.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from web.container import Container
from web.db_health import probe
from web.deps import container

router = APIRouter(tags=["health"])


def _ami(c: Container) -> str:
    if not c.settings.telephony.ami_enabled:
        return "disabled"
    election = c.extras.get("election")
    tracking = c.extras.get("tracking")
    if election is None or tracking is None:
        return "down"
    if not election.is_leader:
        return "standby"  # another instance follows the PBX
    listener = tracking.listener
    return "up" if listener is not None and str(listener.state) == "connected" else "down"


def _agi(c: Container) -> str:
    if not c.settings.telephony.agi_enabled:
        return "disabled"
    agi = c.extras.get("agi")
    return "up" if agi is not None and agi.server is not None else "down"


def _outbox(c: Container) -> str:
    messaging = c.extras.get("messaging")
    if messaging is None or not messaging.senders() or not c.settings.notifier.outbox_enabled:
        return "disabled"
    return "up" if messaging.worker is not None and messaging.worker.running else "down"


def _inbound_smtp(c: Container) -> str:
    if not c.settings.notifier.inbound_smtp_enabled:
        return "disabled"
    messaging = c.extras.get("messaging")
    return "up" if messaging is not None and messaging.inbound is not None else "down"


def parts(c: Container) -> dict[str, str]:
    return {"ami": _ami(c), "agi": _agi(c), "outbox": _outbox(c), "inbound_smtp": _inbound_smtp(c)}


@router.get("/api/health")
async def health(request: Request) -> JSONResponse:
    c = container(request)
    problem = await probe(c.engine, c.settings.web.health_timeout_seconds)
    states = parts(c)
    body: dict[str, Any] = {
        "status": "down" if problem else "degraded" if "down" in states.values() else "ok",
        "database": "down" if problem else "up",
        "parts": states,
    }
    if problem:
        body["database_error"] = problem
    return JSONResponse(body, status_code=503 if problem else 200)
