"""`GET /api/events/schema`: the contract of what pages receive over /ws, checkable from outside.

No sign-in: it describes message shapes, not data, and a client checks it before connecting.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter

from crm_core.events.messages import payload_schemas

router = APIRouter(tags=["events"])


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    # built once per process: the catalogue is fixed at import time
    return payload_schemas()


@router.get("/api/events/schema", response_model=dict[str, dict[str, Any]])
async def events_schema() -> dict[str, dict[str, Any]]:
    """Each message type the websocket sends (`call.ringing`, `subscribed`, …) -> the JSON Schema
    of its payload (of its fields beside `type` for the connection's own messages)."""
    return _schemas()
