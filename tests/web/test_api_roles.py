"""Every endpoint's role rules, over HTTP against the real database."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.models import Client
from tests.conftest import UserFactory

pytestmark = pytest.mark.usefixtures("db")


async def test_token_login_and_me(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    await make_user(role="operator", login="op", password="pw1234", extension="101")
    bad = await api.post("/api/auth/token", data={"username": "op", "password": "nope"})
    assert bad.status_code == 401
    ok = await api.post("/api/auth/token", data={"username": "op", "password": "pw1234"})
    assert ok.status_code == 200
    token = ok.json()["access_token"]
    me = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["extension"] == "101"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/clients"),
        ("POST", "/api/clients"),
        ("GET", "/api/clients/1"),
        ("GET", "/api/deals"),
        ("GET", "/api/communications"),
        ("GET", "/api/tasks"),
        ("GET", "/api/users"),
        ("POST", "/api/users"),
        ("GET", "/api/schedules/1"),
        ("PUT", "/api/schedules/1"),
        ("GET", "/api/stages"),
    ],
)
async def test_no_token_or_a_forged_one_is_401(
    api: httpx.AsyncClient, method: str, path: str
) -> None:
    assert (await api.request(method, path)).status_code == 401
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.bad"}
    assert (await api.request(method, path, headers=forged)).status_code == 401


async def test_only_admins_manage_users(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    body = {"login": "new", "password": "secret1", "role": "operator", "extension": "150"}
    for role in ("operator", "manager", "supervisor"):
        _, h = await make_user(role=role)
        assert (await api.post("/api/users", json=body, headers=h)).status_code == 403
        assert (await api.get("/api/users", headers=h)).status_code == 200
    _, admin = await make_user(role="admin")
    created = await api.post("/api/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    again = await api.post("/api/users", json=body, headers=admin)
    assert again.status_code == 409
    bad = await api.post("/api/users", json={**body, "login": "x", "role": "king"}, headers=admin)
    assert bad.status_code == 422


async def test_clients_create_and_find_by_any_phone_form(
    api: httpx.AsyncClient, make_user: UserFactory, session: AsyncSession
) -> None:
    _, h = await make_user(role="operator")
    r = await api.post(
        "/api/clients",
        json={"name": "Ivan Petrov", "company": "Romashka", "phones": ["8 (903) 123-45-67"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["phones"][0]["number"] == "+79031234567"
    for form in ("89031234567", "79031234567", "+7 (903) 123-45-67"):
        found = await api.get("/api/clients", params={"phone": form}, headers=h)
        assert [c["name"] for c in found.json()["items"]] == ["Ivan Petrov"]
    by_name = await api.get("/api/clients", params={"q": "romash"}, headers=h)
    assert by_name.json()["total"] == 1
    dup = await api.post(
        "/api/clients", json={"name": "Dup", "phones": ["+79031234567"]}, headers=h
    )
    assert dup.status_code == 409
    garbage = await api.post("/api/clients", json={"name": "X", "phones": ["call me"]}, headers=h)
    assert garbage.status_code == 422 and "not a phone number" in garbage.text
    bad_search = await api.get("/api/clients", params={"phone": "abc"}, headers=h)
    assert bad_search.status_code == 422
    # nothing half-written: the rejected cards left no rows
    assert await session.scalar(select(func.count()).select_from(Client)) == 1


async def test_bad_json_is_422(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user(role="operator")
    r = await api.post(
        "/api/clients", content=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    r = await api.post("/api/clients", json={"phones": []}, headers=h)
    assert r.status_code == 422 and "name" in r.text


async def _client_and_deal(
    api: httpx.AsyncClient, headers: dict[str, str], responsible_id: int
) -> tuple[int, int]:
    c = await api.post("/api/clients", json={"name": "Acme", "phones": []}, headers=headers)
    d = await api.post(
        "/api/deals",
        json={
            "client_id": c.json()["id"],
            "title": "Deal",
            "amount": "1000.50",
            "responsible_id": responsible_id,
        },
        headers=headers,
    )
    assert d.status_code == 201, d.text
    return c.json()["id"], d.json()["id"]


async def test_deals_change_only_by_owner_or_staff(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, owner_h = await make_user(role="manager")
    other, other_h = await make_user(role="manager")
    _, op_h = await make_user(role="operator")
    _, sup_h = await make_user(role="supervisor")
    _, deal_id = await _client_and_deal(api, sup_h, owner.id)
    move = {"stage": "Negotiation"}
    assert (
        await api.post(f"/api/deals/{deal_id}/stage", json=move, headers=other_h)
    ).status_code == 403
    assert (
        await api.post(f"/api/deals/{deal_id}/stage", json=move, headers=op_h)
    ).status_code == 403
    r = await api.post(f"/api/deals/{deal_id}/stage", json=move, headers=owner_h)
    assert r.status_code == 200 and r.json()["stage"] == "Negotiation"
    r = await api.post(
        f"/api/deals/{deal_id}/stage", json={"stage": "Lost", "lost_reason": "price"}, headers=sup_h
    )
    assert r.json()["is_closed"] and r.json()["lost_reason"] == "price"
    detail = await api.get(f"/api/deals/{deal_id}", headers=op_h)
    assert len(detail.json()["moves"]) == 3  # created, negotiation, lost
    assert (
        await api.patch(f"/api/deals/{deal_id}", json={"title": "x"}, headers=other_h)
    ).status_code == 403
    assert (
        await api.patch(f"/api/deals/{deal_id}", json={"responsible_id": other.id}, headers=owner_h)
    ).status_code == 403
    bad = await api.post(f"/api/deals/{deal_id}/stage", json={"stage": "Nowhere"}, headers=sup_h)
    assert bad.status_code == 422
    by_stage = await api.get("/api/deals", params={"stage_id": r.json()["stage_id"]}, headers=op_h)
    assert [d["id"] for d in by_stage.json()] == [deal_id]


async def test_tasks_change_only_by_assignee_or_staff(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    me, me_h = await make_user(role="operator")
    other, other_h = await make_user(role="manager")
    _, sup_h = await make_user(role="supervisor")
    t = await api.post("/api/tasks", json={"title": "Call back", "kind": "callback"}, headers=me_h)
    assert t.status_code == 201 and t.json()["assignee_id"] == me.id
    tid = t.json()["id"]
    assert (
        await api.patch(f"/api/tasks/{tid}", json={"done": True}, headers=other_h)
    ).status_code == 403
    assert (
        await api.post("/api/tasks", json={"title": "x", "assignee_id": other.id}, headers=me_h)
    ).status_code == 403
    done = await api.patch(f"/api/tasks/{tid}", json={"done": True}, headers=me_h)
    assert done.json()["done"] is True
    assert (
        await api.patch(f"/api/tasks/{tid}", json={"assignee_id": other.id}, headers=sup_h)
    ).status_code == 200
    overdue = await api.post(
        "/api/tasks",
        json={"title": "late", "due_at": "2020-01-01T10:00:00Z", "assignee_id": other.id},
        headers=sup_h,
    )
    listed = await api.get("/api/tasks", params={"overdue": True}, headers=other_h)
    assert [x["id"] for x in listed.json()] == [overdue.json()["id"]]


async def test_schedules_edited_by_staff_only(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    mgr, mgr_h = await make_user(role="manager")
    _, sup_h = await make_user(role="supervisor")
    grid = {
        "intervals": [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)],
        "exceptions": [
            {
                "kind": "vacation",
                "start_date": "2030-01-01",
                "end_date": "2030-01-10",
                "note": "Sochi",
            }
        ],
    }
    assert (await api.put(f"/api/schedules/{mgr.id}", json=grid, headers=mgr_h)).status_code == 403
    r = await api.put(f"/api/schedules/{mgr.id}", json=grid, headers=sup_h)
    assert r.status_code == 200 and len(r.json()["intervals"]) == 7
    seen = await api.get(f"/api/schedules/{mgr.id}", headers=mgr_h)
    assert seen.json()["exceptions"][0]["kind"] == "vacation"
    assert seen.json()["exceptions"][0]["note"] == "Sochi"
    duty = await api.get("/api/schedules/on-duty", headers=mgr_h)
    assert mgr.id in duty.json()["user_ids"]  # a 24h shift every day
    bad = {"intervals": [{"weekday": 9, "start": "09:00", "end": "18:00"}]}
    assert (await api.put(f"/api/schedules/{mgr.id}", json=bad, headers=sup_h)).status_code == 422


async def test_communications_and_notes(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user(role="operator")
    c = await api.post(
        "/api/clients", json={"name": "Noted", "phones": ["+79035550101"]}, headers=h
    )
    cid = c.json()["id"]
    n = await api.post(
        "/api/notes",
        json={"client_id": cid, "body": "wants an offer", "result": "sent offer"},
        headers=h,
    )
    assert n.status_code == 201, n.text
    assert n.json()["kind"] == "note" and n.json()["deal_id"]
    listed = await api.get("/api/communications", params={"kind": "note"}, headers=h)
    items = listed.json()["items"]
    assert [i["client_id"] for i in items] == [cid]
    for key in (
        "id",
        "kind",
        "direction",
        "status",
        "phone",
        "client_id",
        "deal_id",
        "external_id",
    ):
        assert key in items[0]
    per_client = await api.get(f"/api/clients/{cid}/communications", headers=h)
    assert per_client.json()["total"] == 1
    assert (
        await api.get("/api/communications", params={"kind": "fax"}, headers=h)
    ).status_code == 422


async def test_a_task_for_a_client_that_does_not_exist_is_422(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user(role="operator")
    r = await api.post("/api/tasks", json={"title": "x", "client_id": 999}, headers=h)
    assert r.status_code == 422 and "no such client" in r.text
    assert (await api.get("/api/tasks", headers=h)).json() == []


# --- read scoping: cards for all, colleagues' details for staff ------------------------------

PUBLIC_USER_KEYS = {"id", "full_name", "extension"}


async def test_colleagues_are_names_and_extensions_to_operators_and_managers(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    op, op_h = await make_user(role="operator", extension="101", full_name="Olga")
    mgr, mgr_h = await make_user(role="manager", extension="103", full_name="Maria")
    _, sup_h = await make_user(role="supervisor")
    for me, h, other in ((op, op_h, mgr), (mgr, mgr_h, op)):
        listed = {u["id"]: u for u in (await api.get("/api/users", headers=h)).json()}
        assert set(listed[other.id]) == PUBLIC_USER_KEYS
        assert listed[other.id]["extension"] == other.extension
        assert listed[me.id]["login"] == me.login  # their own record is whole
        one = await api.get(f"/api/users/{other.id}", headers=h)
        assert one.status_code == 200 and set(one.json()) == PUBLIC_USER_KEYS
    seen = (await api.get(f"/api/users/{op.id}", headers=sup_h)).json()
    assert seen["login"] == op.login and seen["role"] == "operator"


async def test_a_schedule_is_read_by_its_owner_and_staff_only(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    op, op_h = await make_user(role="operator", extension="101")
    mgr, mgr_h = await make_user(role="manager", extension="103")
    _, sup_h = await make_user(role="supervisor")
    assert (await api.get(f"/api/schedules/{mgr.id}", headers=op_h)).status_code == 403
    assert (await api.get(f"/api/schedules/{op.id}", headers=mgr_h)).status_code == 403
    assert (await api.get(f"/api/schedules/{op.id}", headers=op_h)).status_code == 200
    assert (await api.get(f"/api/schedules/{op.id}", headers=sup_h)).status_code == 200
    # who is on duty now stays open to all: the schedules page's status and transfers need it
    assert (await api.get("/api/schedules/on-duty", headers=op_h)).status_code == 200


async def test_every_role_reads_every_card_and_its_timeline(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, _ = await make_user(role="manager")
    _, op_h = await make_user(role="operator")
    _, mgr_h = await make_user(role="manager")
    _, sup_h = await make_user(role="supervisor")
    client_id, deal_id = await _client_and_deal(api, sup_h, owner.id)
    for h in (op_h, mgr_h):
        assert (await api.get(f"/api/clients/{client_id}", headers=h)).status_code == 200
        timeline = await api.get(f"/api/clients/{client_id}/communications", headers=h)
        assert timeline.status_code == 200
        assert (await api.get(f"/api/deals/{deal_id}", headers=h)).status_code == 200
        deal_timeline = await api.get(f"/api/deals/{deal_id}/communications", headers=h)
        assert deal_timeline.status_code == 200
        everything = await api.get("/api/communications", headers=h)
        assert everything.status_code == 200
        # but one colleague's communications are a report on them: staff's
        of_owner = await api.get("/api/communications", params={"user_id": owner.id}, headers=h)
        assert of_owner.status_code == 403
    assert (
        await api.get("/api/communications", params={"user_id": owner.id}, headers=sup_h)
    ).status_code == 200


async def test_only_staff_create_a_client_for_another_manager(
    api: httpx.AsyncClient, make_user: UserFactory, session: AsyncSession
) -> None:
    op, op_h = await make_user(role="operator")
    mgr, mgr_h = await make_user(role="manager")
    _, sup_h = await make_user(role="supervisor")
    for h, other in ((op_h, mgr), (mgr_h, op)):
        r = await api.post(
            "/api/clients", json={"name": "Theirs", "responsible_id": other.id}, headers=h
        )
        assert r.status_code == 403, r.text
    assert await session.scalar(select(func.count()).select_from(Client)) == 0
    unassigned = await api.post("/api/clients", json={"name": "Caller"}, headers=op_h)
    assert unassigned.status_code == 201 and unassigned.json()["responsible_id"] is None
    mine = await api.post(
        "/api/clients", json={"name": "Mine", "responsible_id": op.id}, headers=op_h
    )
    assert mine.status_code == 201 and mine.json()["responsible_id"] == op.id
    managers = await api.post("/api/clients", json={"name": "M"}, headers=mgr_h)
    assert managers.json()["responsible_id"] == mgr.id
    given = await api.post(
        "/api/clients", json={"name": "Given", "responsible_id": mgr.id}, headers=sup_h
    )
    assert given.status_code == 201 and given.json()["responsible_id"] == mgr.id


async def test_a_task_links_a_deal_of_its_own_client_only(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    op, op_h = await make_user(role="operator")
    _, sup_h = await make_user(role="supervisor")
    client_a, deal_a = await _client_and_deal(api, sup_h, op.id)
    client_b, _ = await _client_and_deal(api, sup_h, op.id)
    for h in (op_h, sup_h):
        wrong = await api.post(
            "/api/tasks",
            json={"title": "x", "client_id": client_b, "deal_id": deal_a},
            headers=h,
        )
        assert wrong.status_code == 422 and "is not client" in wrong.text
    assert (await api.get("/api/tasks", headers=sup_h)).json() == []
    missing = await api.post("/api/tasks", json={"title": "x", "deal_id": 9999}, headers=op_h)
    assert missing.status_code == 422
    # a deal alone files the task on its client's card
    by_deal = await api.post("/api/tasks", json={"title": "x", "deal_id": deal_a}, headers=op_h)
    assert by_deal.status_code == 201 and by_deal.json()["client_id"] == client_a
    both = await api.post(
        "/api/tasks", json={"title": "y", "client_id": client_a, "deal_id": deal_a}, headers=op_h
    )
    assert both.status_code == 201
