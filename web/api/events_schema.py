"""`GET /api/events/schema`: the contract of what pages receive over /ws, checkable from outside.

No sign-in: it describes message shapes, not data, and a client checks it before connecting.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field, create_model

from crm_core.events.messages import CATALOGUE, payload_schemas

router = APIRouter(tags=["events"])


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    # built once per process: the catalogue is fixed at import time
    return payload_schemas()


# One property per message type, so /docs and /openapi.json list the types themselves; each
# value is that type's JSON Schema (a document, free-form by nature).
EventCatalogue = create_model(  # type: ignore[call-overload]
    "EventCatalogue",
    __config__=ConfigDict(populate_by_name=True),
    **{
        cls.__name__: (
            dict[str, Any],
            Field(alias=cls.TYPE, description=f"JSON Schema of `{cls.TYPE}`'s payload"),
        )
        for cls in CATALOGUE
    },
)


@router.get("/api/events/schema", response_model=EventCatalogue, response_model_by_alias=True)
async def events_schema() -> dict[str, dict[str, Any]]:
    """Each message type the websocket sends (`call.ringing`, `subscribed`, …) -> the JSON Schema
    of its payload (of its fields beside `type` for the connection's own messages)."""
    return _schemas()
