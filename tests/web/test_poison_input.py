"""Poison input is refused with 422 (or, for inbound messages, stored cleaned), never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.inputs import INT32_MAX
from tests.conftest import UserFactory
from web.app import create_app
from web.container import Container

pytestmark = pytest.mark.usefixtures("db")

BAD_TEXTS = ["nul\x00byte", "lone\ud800surrogate"]


async def _client(api: httpx.AsyncClient, h: dict[str, str], name: str = "Acme") -> int:
    r = await api.post("/api/clients", json={"name": name}, headers=h)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.parametrize("bad", BAD_TEXTS)
async def test_nul_and_lone_surrogates_in_text_are_422(
    api: httpx.AsyncClient, make_user: UserFactory, bad: str
) -> None:
    _, h = await make_user(role="admin")
    cid = await _client(api, h)
    posts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/clients", {"name": bad}),
        ("POST", "/api/clients", {"name": "A", "contacts": [{"name": bad}]}),
        ("PATCH", f"/api/clients/{cid}", {"notes": bad}),
        ("POST", "/api/notes", {"client_id": cid, "body": bad}),
        ("POST", "/api/tasks", {"title": bad}),
        ("POST", "/api/users", {"login": "x", "password": "pass", "role": "manager",
                                "full_name": bad}),
    ]  # fmt: skip
    for method, path, body in posts:
        # escaped (\\ud800) as a JSON client sends a lone surrogate; raw, it is not UTF-8
        content = json.dumps(body, ensure_ascii=True)
        r = await api.request(
            method, path, content=content, headers={**h, "Content-Type": "application/json"}
        )
        assert r.status_code == 422, (path, body, r.status_code, r.text)
    # nothing was stored, and the card is intact
    r = await api.get(f"/api/clients/{cid}", headers=h)
    assert r.status_code == 200 and r.json()["notes"] == ""


async def test_nul_in_a_query_or_form_is_422_and_bad_utf8_is_replaced(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """Query strings and forms carry bytes: a lone surrogate arrives as bad UTF-8 (replaced)."""
    _, h = await make_user(role="admin")
    r = await api.get("/api/clients?q=a%00b", headers=h)
    assert r.status_code == 422, r.text
    r = await api.get("/api/clients?q=a%ED%A0%80b", headers=h)
    assert r.status_code == 200 and r.json()["items"] == []
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = await api.post("/api/auth/token", content=b"username=a%00b&password=pw", headers=form)
    assert r.status_code == 422, r.text
    r = await api.post("/api/auth/token", content=b"username=a%ED%A0%80&password=pw", headers=form)
    assert r.status_code == 401, r.text


async def test_like_wildcards_in_search_are_literal(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user(role="admin")
    await _client(api, h, "Alpha")
    await _client(api, h, "50% off")
    await _client(api, h, "under_score")
    found = (await api.get("/api/clients", params={"q": "%"}, headers=h)).json()
    assert [c["name"] for c in found["items"]] == ["50% off"]
    found = (await api.get("/api/clients", params={"q": "_"}, headers=h)).json()
    assert [c["name"] for c in found["items"]] == ["under_score"]
    found = (await api.get("/api/clients", params={"q": "\\"}, headers=h)).json()
    assert found["items"] == []


@pytest.mark.parametrize(
    "due",
    ["0001-01-01T00:00:00+03:00", "9999-12-31T23:59:59-05:00", "2030-01-01T10:00:00"],
)
async def test_task_dates_far_out_or_naive_are_422_and_lists_keep_working(
    api: httpx.AsyncClient, make_user: UserFactory, due: str
) -> None:
    user, h = await make_user(role="manager")
    r = await api.post("/api/tasks", json={"title": "call back", "due_at": due}, headers=h)
    assert r.status_code == 422, r.text
    ok = await api.post(
        "/api/tasks", json={"title": "fine", "due_at": "2030-01-01T10:00:00+03:00"}, headers=h
    )
    assert ok.status_code == 201
    r = await api.patch(f"/api/tasks/{ok.json()['id']}", json={"due_at": due}, headers=h)
    assert r.status_code == 422, r.text
    tasks = await api.get("/api/tasks", params={"assignee_id": user.id}, headers=h)
    assert tasks.status_code == 200 and [t["title"] for t in tasks.json()] == ["fine"]


async def test_a_task_already_stored_at_minus_infinity_breaks_no_list(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A row written before these checks (or by hand) still lists, its due date shown as none."""
    user, h = await make_user(role="manager")
    ok = await api.post(
        "/api/tasks", json={"title": "old", "due_at": "2030-01-01T10:00:00+03:00"}, headers=h
    )
    async with sessions() as s:
        await s.execute(
            text("UPDATE tasks SET due_at = '-infinity' WHERE id = :id"), {"id": ok.json()["id"]}
        )
        await s.commit()
    for params in ({}, {"overdue": "true"}, {"assignee_id": user.id}):
        r = await api.get("/api/tasks", params=params, headers=h)
        assert r.status_code == 200, r.text
        assert [t["due_at"] for t in r.json()] == [None]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
async def test_report_dates_far_out_are_422(
    api: httpx.AsyncClient, make_user: UserFactory, day: str
) -> None:
    _, h = await make_user(role="supervisor")
    for params in ({"date_from": day}, {"date_to": day}, {"date_from": day, "date_to": day}):
        r = await api.get("/api/reports", params=params, headers=h)
        assert r.status_code == 422, (params, r.text)


async def test_null_for_a_field_that_cannot_be_empty_is_422(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user, h = await make_user(role="admin")
    cid = await _client(api, h)
    deal = await api.post("/api/deals", json={"client_id": cid, "title": "D"}, headers=h)
    did = deal.json()["id"]
    for path, body in [
        (f"/api/deals/{did}", {"amount": None}),
        (f"/api/deals/{did}", {"title": None}),
        (f"/api/deals/{did}", {"currency": None}),
        (f"/api/clients/{cid}", {"name": None}),
        (f"/api/clients/{cid}", {"readiness": None}),
        (f"/api/clients/{cid}", {"notes": None}),
        (f"/api/users/{user.id}", {"full_name": None}),
    ]:
        r = await api.patch(path, json=body, headers=h)
        assert r.status_code == 422, (path, body, r.status_code, r.text)
    # what may be emptied still may: no responsible manager, no lead source
    r = await api.patch(
        f"/api/deals/{did}", json={"responsible_id": None, "lead_source": None}, headers=h
    )
    assert r.status_code == 200 and r.json()["responsible_id"] is None


def _id_routes(app: FastAPI) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path, path params, id query params) of every operation taking an id."""
    routes = []
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            in_path = [p["name"] for p in params if p["in"] == "path"]
            in_query = [
                p["name"] for p in params if p["in"] == "query" and p["name"].endswith("_id")
            ]
            if in_path or in_query:
                routes.append((method.upper(), path, in_path, in_query))
    return routes


async def test_every_id_route_refuses_ids_past_int32(
    api: httpx.AsyncClient, make_user: UserFactory, container: Container
) -> None:
    _, h = await make_user(role="admin")
    routes = _id_routes(create_app(container=container))
    # the walk did find them: 17 operations with an id in the path, 4 more in the query
    assert len([r for r in routes if r[2]]) >= 17 and len(routes) >= 21
    huge = 2**31
    for method, path, in_path, in_query in routes:
        url = path
        for name in in_path:
            url = url.replace("{" + name + "}", str(huge))
        params = {name: str(huge) for name in in_query}
        body = None if method in ("GET", "DELETE") else {}
        r = await api.request(method, url, params=params, json=body, headers=h)
        assert r.status_code in (404, 422), (method, path, r.status_code, r.text)
    # the largest id PostgreSQL holds is an honest "not found"
    r = await api.get(f"/api/clients/{INT32_MAX}", headers=h)
    assert r.status_code == 404
    r = await api.get(f"/api/clients/{INT32_MAX + 1}", headers=h)
    assert r.status_code == 422
    for path, body in [
        ("/api/deals", {"client_id": huge, "title": "D"}),
        ("/api/tasks", {"title": "T", "deal_id": huge}),
        ("/api/notes", {"client_id": huge, "body": "B"}),
        ("/api/calls/originate", {"client_id": huge}),
        ("/api/deals", {"client_id": 1, "title": "D", "responsible_id": huge}),
    ]:
        r = await api.post(path, json=body, headers=h)
        assert r.status_code == 422, (path, r.text)


async def test_a_422_never_echoes_a_password(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user(role="admin")
    secret = "hunter2-is-my-secret"
    r = await api.post(
        "/api/users", json={"login": "bad login!", "password": secret, "role": "x"}, headers=h
    )
    assert r.status_code == 422 and secret not in r.text
    r = await api.post("/api/users", json={"login": "ok", "password": 12345}, headers=h)
    assert r.status_code == 422 and "12345" not in r.text
    r = await api.patch("/api/users/1", json={"password": "x"}, headers=h)
    assert r.status_code in (404, 422) and '"x"' not in r.text


async def test_cleaned_names_stay_searchable(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, h = await make_user(role="admin")
    await _client(api, h, "Ünïcode ✓ 名前")
    r = await api.get("/api/clients", params={"q": "名前"}, headers=h)
    assert [c["name"] for c in r.json()["items"]] == ["Ünïcode ✓ 名前"]
    async with sessions() as s:
        assert (await s.scalars(select(Client.name))).all() == ["Ünïcode ✓ 名前"]
