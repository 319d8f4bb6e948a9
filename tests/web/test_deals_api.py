"""The deals API over HTTP: the stage contract, history, board, role limits, the admins' pipeline
and lists, live news on the sockets' channels, and bad input refused with a 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.deals.models import Deal, DealStageMove
from crm_core.deals.schemas import Board
from notifier.channels import messages_for
from tests.conftest import UserFactory
from tests.deals_pipeline import pipeline_kept
from tests.web.conftest import publishing_into
from web.container import Container

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
async def kept(db: AsyncEngine) -> AsyncIterator[None]:
    async with pipeline_kept(db):
        yield


@pytest.fixture
def container(container: Container, published: list[Any]) -> Container:
    return publishing_into(container, published)


async def _stages(api: httpx.AsyncClient, h: dict[str, str]) -> dict[str, dict[str, Any]]:
    """kind or name -> stage (the first of each kind)."""
    stages = (await api.get("/api/stages", headers=h)).json()
    out = {s["name"]: s for s in stages}
    for s in reversed(stages):
        out[s["kind"]] = s
    out["first"] = stages[0]
    return out


async def _deal(api: httpx.AsyncClient, h: dict[str, str], **fields: Any) -> dict[str, Any]:
    client = await api.post("/api/clients", json={"name": "Acme", "phones": []}, headers=h)
    assert client.status_code == 201, client.text
    body = {"client_id": client.json()["id"], "title": "Boxes"} | fields
    r = await api.post("/api/deals", json=body, headers=h)
    assert r.status_code == 201, r.text
    deal: dict[str, Any] = r.json()
    return deal


async def test_the_stage_contract(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    published: list[Any],
) -> None:
    manager, h = await make_user(role="manager", full_name="Анна Менеджер")
    st = await _stages(api, h)
    deal = await _deal(api, h)
    url = f"/api/deals/{deal['id']}/stage"

    no_reason = await api.post(url, json={"stage_id": st["lost"]["id"]}, headers=h)
    assert no_reason.status_code == 422 and "lost_reason" in no_reason.text
    blank = await api.post(url, json={"stage_id": st["lost"]["id"], "lost_reason": ""}, headers=h)
    assert blank.status_code == 422
    no_amount = await api.post(url, json={"stage_id": st["won"]["id"]}, headers=h)
    assert no_amount.status_code == 422 and "amount" in no_amount.text
    for bad in ({"stage_id": st["won"]["id"], "amount": "-5"}, {"stage_id": "x"}, {}):
        assert (await api.post(url, json=bad, headers=h)).status_code == 422, bad
    assert (await api.post(url, json={"stage_id": 999999}, headers=h)).status_code == 422
    assert (
        await api.post("/api/deals/999999/stage", json={"stage_id": 1}, headers=h)
    ).status_code == 404

    won = await api.post(url, json={"stage_id": st["won"]["id"], "amount": "1500"}, headers=h)
    assert won.status_code == 200, won.text
    assert won.json()["amount"] == "1500.00" and won.json()["is_closed"]
    lost = await api.post(
        url, json={"stage_id": st["lost"]["id"], "lost_reason": "Дорого"}, headers=h
    )
    assert lost.status_code == 200 and lost.json()["lost_reason"] == "Дорого"

    async with sessions() as s:
        row = await s.get(Deal, deal["id"])
        assert row is not None and row.closed_at is not None and row.lost_reason == "Дорого"
        moves = (
            await s.scalars(select(DealStageMove).where(DealStageMove.deal_id == deal["id"]))
        ).all()
        assert [(m.to_stage_id, m.lost_reason) for m in moves] == [
            (st["first"]["id"], None),
            (st["won"]["id"], None),
            (st["lost"]["id"], "Дорого"),
        ]
    # each move is news on the supervisors' boards and the responsible manager's own
    news = [
        (m.channel, m.payload["to_stage_id"])
        for m in messages_for(published)
        if m.type == "deal.stage_changed"
    ]
    assert news == [
        ("supervisors", st["won"]["id"]),
        (f"user:{manager.id}", st["won"]["id"]),
        ("supervisors", st["lost"]["id"]),
        (f"user:{manager.id}", st["lost"]["id"]),
    ]
    created = [m for m in messages_for(published) if m.type == "deal.created"]
    assert [m.channel for m in created] == ["supervisors", f"user:{manager.id}"]

    detail = (await api.get(f"/api/deals/{deal['id']}", headers=h)).json()
    assert [(m["from_stage"], m["to_stage"], m["user_name"]) for m in detail["moves"]] == [
        (None, st["first"]["name"], "Анна Менеджер"),
        (st["first"]["name"], st["won"]["name"], "Анна Менеджер"),
        (st["won"]["name"], st["lost"]["name"], "Анна Менеджер"),
    ]
    assert detail["moves"][-1]["lost_reason"] == "Дорого"
    assert all(m["moved_at"] for m in detail["moves"])


async def test_editing_a_deal_and_the_clients_deals(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user(role="manager")
    other, _ = await make_user(role="manager")
    _, sup = await make_user(role="supervisor")
    st = await _stages(api, h)
    deal = await _deal(api, h, amount="10", lead_source="Сайт")
    edit = {"title": "Pallets", "amount": "99.90", "currency": "EUR", "lead_source": "Звонок"}
    r = await api.patch(f"/api/deals/{deal['id']}", json=edit, headers=h)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in edit} == edit
    for bad in ({"currency": "euro"}, {"amount": "-1"}, {"title": ""}, {"amount": None}):
        assert (
            await api.patch(f"/api/deals/{deal['id']}", json=bad, headers=h)
        ).status_code == 422, bad
    # only staff reassign, and only to someone who exists
    assert (
        await api.patch(f"/api/deals/{deal['id']}", json={"responsible_id": other.id}, headers=h)
    ).status_code == 403
    r = await api.patch(f"/api/deals/{deal['id']}", json={"responsible_id": other.id}, headers=sup)
    assert r.status_code == 200 and r.json()["responsible_id"] == other.id
    assert (
        await api.patch(f"/api/deals/{deal['id']}", json={"responsible_id": 424242}, headers=sup)
    ).status_code == 422
    # nor do others open a deal in a colleague's name: their own, or nobody's (then theirs)
    for_other = {"client_id": deal["client_id"], "title": "More", "responsible_id": other.id}
    refused = await api.post("/api/deals", json=for_other, headers=h)
    assert (refused.status_code, refused.json()["code"]) == (403, "deal.not_yours")
    assert (await _deal(api, sup, responsible_id=other.id))["responsible_id"] == other.id
    # a client that does not exist: the same code as everywhere else a client is missing
    nobody = await api.post("/api/deals", json={"client_id": 424242, "title": "X"}, headers=h)
    assert (nobody.status_code, nobody.json()["code"]) == (422, "client.not_found")

    # a second deal for the same client, won; both listed on the card
    second = await api.post(
        "/api/deals",
        json={"client_id": deal["client_id"], "title": "Crates", "amount": "5"},
        headers=h,
    )
    await api.post(
        f"/api/deals/{second.json()['id']}/stage", json={"stage_id": st["won"]["id"]}, headers=h
    )
    listed = (await api.get(f"/api/clients/{deal['client_id']}/deals", headers=h)).json()
    assert [(d["title"], d["is_closed"]) for d in listed] == [("Crates", True), ("Pallets", False)]
    assert (await api.get("/api/clients/999999/deals", headers=h)).json() == []
    closed_start = await api.post(
        "/api/deals",
        json={"client_id": deal["client_id"], "title": "x", "stage_id": st["won"]["id"]},
        headers=h,
    )
    assert closed_start.status_code == 422


async def test_the_board_over_http(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    anna, anna_h = await make_user(role="manager", full_name="Anna")
    boris, boris_h = await make_user(role="operator", full_name="Boris")
    _, sup = await make_user(role="supervisor")
    await _deal(api, anna_h, title="A", amount="100", lead_source="Сайт")
    await _deal(api, boris_h, title="B", amount="7")

    def titles(board: dict[str, Any]) -> list[str]:
        return [c["title"] for col in board["columns"] for c in col["cards"]]

    mine = await api.get("/api/deals/board", headers=anna_h)
    assert mine.status_code == 200 and titles(mine.json()) == ["A"]
    card = mine.json()["columns"][0]["cards"][0]
    assert card["client_name"] == "Acme" and card["responsible_name"] == "Anna"
    assert card["amount"] == "100.00" and card["days_in_stage"] == 0
    assert card["last_contact_at"] is None
    # the JSON the database writes keeps the documented shape
    Board.model_validate(mine.json())
    everyone = (await api.get("/api/deals/board?responsible=all", headers=sup)).json()
    Board.model_validate(everyone)
    assert sorted(titles(everyone)) == ["A", "B"]
    assert [c["stage"]["kind"] for c in everyone["columns"]][-2:] == ["won", "lost"]
    by_boris = await api.get(f"/api/deals/board?responsible={boris.id}", headers=sup)
    assert titles(by_boris.json()) == ["B"]
    by_source = await api.get("/api/deals/board?responsible=all&lead_source=Сайт", headers=sup)
    assert titles(by_source.json()) == ["A"]
    assert (await api.get("/api/deals/board?responsible=all", headers=anna_h)).status_code == 403
    assert (
        await api.get(f"/api/deals/board?responsible={anna.id}", headers=boris_h)
    ).status_code == 403
    for bad in ("responsible=someone", "date_from=yesterday", "date_from=0001-01-01"):
        assert (await api.get(f"/api/deals/board?{bad}", headers=sup)).status_code == 422, bad
    assert (
        await api.get("/api/deals/board?date_from=2030-01-02&date_to=2030-01-01", headers=sup)
    ).status_code == 422
    assert (await api.get("/api/deals/board")).status_code == 401


@pytest.mark.usefixtures("kept")
async def test_admins_edit_stages(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, admin = await make_user(role="admin")
    _, sup = await make_user(role="supervisor")
    _, mgr = await make_user(role="manager")
    body = {"name": "Демо"}
    for h in (sup, mgr):
        assert (await api.post("/api/stages", json=body, headers=h)).status_code == 403
    made = await api.post("/api/stages", json=body, headers=admin)
    assert made.status_code == 201 and made.json()["kind"] == "open"
    stage_id = made.json()["id"]
    assert (await api.post("/api/stages", json=body, headers=admin)).status_code == 409
    for bad in ({"name": ""}, {"name": "   "}, {"name": "x" * 65}, {"name": "x", "kind": "maybe"}):
        assert (await api.post("/api/stages", json=bad, headers=admin)).status_code == 422, bad
    renamed = await api.patch(
        f"/api/stages/{stage_id}", json={"name": "Демонстрация"}, headers=admin
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Демонстрация"
    assert (
        await api.patch(f"/api/stages/{stage_id}", json={"name": "x"}, headers=mgr)
    ).status_code == 403
    assert (
        await api.patch("/api/stages/999999", json={"name": "x"}, headers=admin)
    ).status_code == 404

    ids = [s["id"] for s in (await api.get("/api/stages", headers=mgr)).json()]
    new_order = [stage_id] + [i for i in ids if i != stage_id]
    r = await api.put("/api/stages/order", json={"ids": new_order}, headers=admin)
    assert r.status_code == 200 and [s["id"] for s in r.json()] == new_order
    assert (
        await api.put("/api/stages/order", json={"ids": new_order[:-1]}, headers=admin)
    ).status_code == 422
    assert (
        await api.put("/api/stages/order", json={"ids": new_order}, headers=sup)
    ).status_code == 403

    # a stage with a deal in it stays: 409; an unused one goes
    deal = await _deal(api, admin, stage_id=stage_id)
    assert (await api.delete(f"/api/stages/{stage_id}", headers=admin)).status_code == 409
    first = new_order[1]
    await api.post(f"/api/deals/{deal['id']}/stage", json={"stage_id": first}, headers=admin)
    assert (await api.delete(f"/api/stages/{stage_id}", headers=admin)).status_code == 409
    spare = await api.post("/api/stages", json={"name": "Spare", "kind": "lost"}, headers=admin)
    assert (await api.delete(f"/api/stages/{spare.json()['id']}", headers=mgr)).status_code == 403
    assert (await api.delete(f"/api/stages/{spare.json()['id']}", headers=admin)).status_code == 200
    assert spare.json()["id"] not in [
        s["id"] for s in (await api.get("/api/stages", headers=mgr)).json()
    ]


@pytest.mark.parametrize("path", ["lost-reasons", "lead-sources"])
async def test_admins_edit_the_lists(
    api: httpx.AsyncClient, make_user: UserFactory, path: str
) -> None:
    _, admin = await make_user(role="admin")
    _, mgr = await make_user(role="manager")
    base = f"/api/lists/{path}"
    assert (await api.post(base, json={"name": "Дорого"}, headers=mgr)).status_code == 403
    a = await api.post(base, json={"name": "Дорого"}, headers=admin)
    b = await api.post(base, json={"name": "Нет потребности"}, headers=admin)
    assert a.status_code == b.status_code == 201
    assert (await api.post(base, json={"name": "Дорого"}, headers=admin)).status_code == 409
    assert (await api.post(base, json={"name": " "}, headers=admin)).status_code == 422
    assert (await api.post(base, json={"name": "a\x00"}, headers=admin)).status_code == 422
    r = await api.patch(f"{base}/{a.json()['id']}", json={"name": "Очень дорого"}, headers=admin)
    assert r.status_code == 200
    r = await api.put(
        f"{base}/order", json={"ids": [b.json()["id"], a.json()["id"]]}, headers=admin
    )
    assert r.status_code == 200
    listed = (await api.get(base, headers=mgr)).json()
    assert [i["name"] for i in listed] == ["Нет потребности", "Очень дорого"]
    assert (await api.delete(f"{base}/{b.json()['id']}", headers=mgr)).status_code == 403
    assert (await api.delete(f"{base}/{b.json()['id']}", headers=admin)).status_code == 200
    assert (await api.delete(f"{base}/{b.json()['id']}", headers=admin)).status_code == 404
    assert [i["name"] for i in (await api.get(base, headers=mgr)).json()] == ["Очень дорого"]
