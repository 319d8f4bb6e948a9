"""Checking messages against the published catalogue (GET /api/events/schema), in tests only.

Production never validates a message (the pop path is latency-sensitive); instead every message
the hub publishes and every connection message /ws sends during the tests is checked here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from crm_core.events.messages import CONTROL_TYPES, payload_schemas


@cache
def _validators() -> dict[str, Draft202012Validator]:
    return {name: Draft202012Validator(schema) for name, schema in payload_schemas().items()}


def violations(type_: str, payload: Any) -> list[str]:
    """Why `payload` is not a valid `type_` message; empty when it is."""
    validator = _validators().get(type_)
    if validator is None:
        return [f"{type_!r} is not in the catalogue"]
    return [f"{type_}: {e.json_path}: {e.message}" for e in validator.iter_errors(payload)]


def frame_violations(frame: dict[str, Any]) -> list[str]:
    """A frame as the page gets it: numbered ones carry a payload, control ones their fields."""
    type_ = frame.get("type")
    if not isinstance(type_, str):
        return [f"no type in {frame!r:.200}"]
    if type_ in CONTROL_TYPES:
        return violations(type_, {k: v for k, v in frame.items() if k != "type"})
    return violations(type_, frame.get("payload"))
