"""Every JSON answer of the API has its shape in /openapi.json, read the way a client generator
or /docs reads it: over HTTP, from outside the code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.usefixtures("db")

# (method, path, status) answered 2xx without a typed JSON body, and why. Anything not listed here
# must declare one; a listed one that changes or disappears fails too, so the list stays true.
EXEMPT: dict[tuple[str, str, str], str] = {
    ("post", "/api/auth/logout", "204"): "no content",
    ("delete", "/api/clients/{client_id}", "204"): "no content",
    ("get", "/api/calls/{communication_id}/recording", "200"): "the audio file itself",
    ("get", "/api/calls/{communication_id}/recording", "206"): "a byte range of the audio",
    ("post", "/webhooks/twilio/sms", "200"): "TwiML (text/xml) for Twilio",
}

# Served outside the API (include_in_schema=False): HTML pages and the docs themselves.
NOT_IN_SCHEMA = ["/", "/operator", "/dashboard", "/schedules", "/docs", "/redoc"]


def _untyped(schema: dict[str, Any]) -> str | None:
    """Why `schema` says nothing of the body's shape, or None when it does."""
    if not schema:
        return "empty schema {}"
    if "$ref" in schema:
        return None
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            reasons = [r for r in (_untyped(s) for s in schema[key]) if r]
            return f"{key}: {reasons[0]}" if reasons else None
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return "array of anything" if not items else _untyped(items)
    if kind == "object":
        return None if schema.get("properties") else "object with no properties"
    return None if kind else f"no type: {schema}"


async def test_every_2xx_json_response_declares_its_schema(api: httpx.AsyncClient) -> None:
    r = await api.get("/openapi.json")
    assert r.status_code == 200, r.text
    paths: dict[str, dict[str, Any]] = r.json()["paths"]
    untyped: list[str] = []
    seen_exempt: set[tuple[str, str, str]] = set()
    checked = 0
    for path, ops in paths.items():
        for method, op in ops.items():
            answers = {code: a for code, a in op["responses"].items() if code.startswith("2")}
            assert answers, f"{method.upper()} {path} declares no 2xx answer"
            for code, answer in answers.items():
                key = (method, path, code)
                json_body = answer.get("content", {}).get("application/json")
                if key in EXEMPT:
                    seen_exempt.add(key)
                    continue
                if json_body is None:
                    untyped.append(f"{method.upper()} {path} {code}: no JSON body declared")
                    continue
                why = _untyped(json_body.get("schema", {}))
                if why:
                    untyped.append(f"{method.upper()} {path} {code}: {why}")
                checked += 1
    assert not untyped, "2xx answers without a declared shape:\n" + "\n".join(untyped)
    assert seen_exempt == set(EXEMPT), f"stale exemptions: {set(EXEMPT) - seen_exempt}"
    # the walk did reach the API: every route module's answers
    assert checked >= 35, checked
    for page in NOT_IN_SCHEMA:
        assert page not in paths, f"{page} is a page, not an API operation"


def test_the_check_tells_typed_from_untyped() -> None:
    # what FastAPI writes for `-> dict[str, Any]` and for no annotation at all
    assert _untyped({"type": "object", "additionalProperties": True, "title": "Response"})
    assert _untyped({})
    assert _untyped({"type": "array", "items": {}})
    assert _untyped({"anyOf": [{"$ref": "#/components/schemas/A"}, {}]})
    assert _untyped({"$ref": "#/components/schemas/A"}) is None
    assert _untyped({"type": "array", "items": {"$ref": "#/components/schemas/A"}}) is None
