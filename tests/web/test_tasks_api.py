"""The agenda's API: tasks by state and person, done and rescheduled; missed calls with their
tries; recent calls; comments; contact results driving the deal; merging a card."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.service import log_call
from crm_core.clients.models import Client
from crm_core.deals.models import Deal, DealStage
from crm_core.models_common import utcnow
from tests.conftest import UserFactory
from tests.crm_core.test_callbacks import _call


def _iso(dt: datetime) -> str:
    return dt.isoformat()


async def _task(api: httpx.AsyncClient, h: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await api.post("/api/tasks", json={"title": "T", **body}, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_agenda_states_in_the_viewers_zone_done_and_reschedule(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user(role="operator")
    tz = "Pacific/Kiritimati"  # +14: "today" there is rarely today in UTC
    now = utcnow()
    local = now.astimezone(ZoneInfo(tz))
    midnight = datetime.combine(local.date(), datetime.min.time(), tzinfo=ZoneInfo(tz))
    overdue = await _task(api, h, due_at=_iso(now - timedelta(minutes=1)))
    later_today = await _task(api, h, due_at=_iso(midnight + timedelta(hours=23, minutes=59)))
    tomorrow = await _task(api, h, due_at=_iso(midnight + timedelta(days=1, hours=9)))
    undated = await _task(api, h)
    assert later_today["remind_at"] == later_today["due_at"]  # default: the due time

    async def ids(**params: Any) -> list[int]:
        r = await api.get("/api/tasks", params={"tz": tz, **params}, headers=h)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()]

    assert await ids(state="overdue") == [overdue["id"]]
    assert later_today["id"] in await ids(state="today")
    assert tomorrow["id"] not in await ids(state="today")
    assert await ids(state="upcoming") == [tomorrow["id"], undated["id"]]
    window = await ids(
        date_from=_iso(midnight + timedelta(days=1)), date_to=_iso(midnight + timedelta(days=2))
    )
    assert window == [tomorrow["id"]]

    done = await api.post(f"/api/tasks/{overdue['id']}/done", headers=h)
    assert done.status_code == 200 and done.json()["done"] is True
    listed = (await api.get("/api/tasks", headers=h)).json()
    assert next(t for t in listed if t["id"] == overdue["id"])["done"] is True
    assert await ids(state="done") == [overdue["id"]]

    new_due = midnight + timedelta(days=3, hours=10)
    moved = await api.post(
        f"/api/tasks/{tomorrow['id']}/reschedule", json={"due_at": _iso(new_due)}, headers=h
    )
    assert moved.status_code == 200
    assert datetime.fromisoformat(moved.json()["due_at"]) == new_due
    assert datetime.fromisoformat(moved.json()["remind_at"]) == new_due
    assert moved.json()["reminded_at"] is None
    bad = await api.get("/api/tasks", params={"state": "today", "tz": "Mars/Base"}, headers=h)
    assert bad.status_code in (400, 422)


async def test_supervisors_plan_and_read_anyones_agenda(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    op, op_h = await make_user(role="operator")
    _, mgr_h = await make_user(role="manager")
    _, sup_h = await make_user(role="supervisor")
    t = await _task(
        api, sup_h, assignee_id=op.id, kind="meeting", contact_type="visit", goal="sign the deal"
    )
    assert (t["assignee_id"], t["contact_type"], t["goal"]) == (op.id, "visit", "sign the deal")
    refused = await api.post("/api/tasks", json={"title": "x", "assignee_id": op.id}, headers=mgr_h)
    assert refused.status_code == 403
    theirs = await api.get("/api/tasks", params={"assignee": op.id}, headers=sup_h)
    assert [x["id"] for x in theirs.json()] == [t["id"]]
    assert (
        await api.get("/api/tasks", params={"assignee": op.id}, headers=mgr_h)
    ).status_code == 403
    # without an assignee an operator sees their own agenda only
    await _task(api, mgr_h)
    assert [x["id"] for x in (await api.get("/api/tasks", headers=op_h)).json()] == [t["id"]]


async def _log_missed(
    sessions: async_sessionmaker[AsyncSession], n: int, at: datetime, due: timedelta, **kw: Any
) -> int:
    async with sessions() as s:
        logged = await log_call(
            s, _call(n, at=at, **kw), region="RU", company_numbers=frozenset(), callback_due=due
        )
        await s.commit()
    assert logged is not None
    return logged.communication.id


async def test_missed_calls_list_their_tries_and_the_return_call(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    op, op_h = await make_user(role="operator", extension="101")
    _, other_h = await make_user(role="manager", extension="102")
    _, sup_h = await make_user(role="supervisor")
    now = utcnow()
    first = await _log_missed(sessions, 1, now, timedelta(hours=1), missed=True)
    await _log_missed(sessions, 2, now + timedelta(minutes=2), timedelta(minutes=10), missed=True)
    mine = (await api.get("/api/missed-calls", headers=op_h)).json()
    assert len(mine) == 1
    row = mine[0]
    assert (row["tries"], row["phone"], row["called_back"], row["communication_id"]) == (
        2,
        "+79161234567",
        False,
        first,
    )
    assert datetime.fromisoformat(row["due_at"]) == now + timedelta(minutes=12)
    assert (await api.get("/api/missed-calls", headers=other_h)).json() == []
    assert (
        await api.get("/api/missed-calls", params={"assignee_id": op.id}, headers=other_h)
    ).status_code == 403
    assert (
        len(
            (
                await api.get("/api/missed-calls", params={"assignee_id": op.id}, headers=sup_h)
            ).json()
        )
        == 1
    )

    back = await _log_missed(
        sessions,
        3,
        now + timedelta(minutes=5),
        timedelta(minutes=30),
        missed=False,
        direction="out",
    )
    assert (await api.get("/api/missed-calls", headers=op_h)).json() == []
    done = (await api.get("/api/missed-calls", params={"include_done": True}, headers=op_h)).json()
    assert (done[0]["called_back"], done[0]["closed_by_communication_id"]) == (True, back)
    tasks = (await api.get("/api/tasks", params={"assignee": op.id}, headers=op_h)).json()
    assert [(t["kind"], t["done"], t["closed_by_communication_id"]) for t in tasks] == [
        ("callback", True, back)
    ]

    recent = (await api.get("/api/calls/recent", params={"limit": 2}, headers=op_h)).json()
    assert [c["id"] for c in recent] == [back, first + 1]
    assert recent[1]["missed"] is True
    assert (await api.get("/api/calls/recent", headers=other_h)).json() == []

    c = await api.post(
        f"/api/communications/{back}/comments", json={"body": "agreed"}, headers=op_h
    )
    assert c.status_code == 201
    listed = (await api.get(f"/api/communications/{back}/comments", headers=sup_h)).json()
    assert [(x["body"], x["user_id"]) for x in listed] == [("agreed", op.id)]
    assert (await api.get("/api/communications/999999/comments", headers=op_h)).status_code == 404


async def test_results_drive_the_deal(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    op, op_h = await make_user(role="operator", extension="101")
    _, admin_h = await make_user(role="admin")
    comm = await _log_missed(sessions, 1, utcnow(), timedelta(minutes=30), missed=False)
    results = {r["kind"]: r for r in (await api.get("/api/contact-results", headers=op_h)).json()}
    assert set(results) == {"postponed", "refused", "offer_sent", "sale", "wrong_number", "other"}
    assert results["refused"]["name"] == "Отказ"  # seeded in DEFAULT_LOCALE (ru)

    no_reason = await api.post(
        f"/api/communications/{comm}/result",
        json={"result_id": results["refused"]["id"]},
        headers=admin_h,
    )
    assert no_reason.status_code == 422
    refused = await api.post(
        f"/api/communications/{comm}/result",
        json={"result_id": results["refused"]["id"], "reason": "too expensive"},
        headers=admin_h,
    )
    assert refused.status_code == 201, refused.text
    async with sessions() as s:
        deal = await s.get(Deal, refused.json()["deal_id"])
        assert deal is not None
        stage = await s.get(DealStage, deal.stage_id)
        assert stage is not None and stage.is_closed and not stage.is_won
        assert deal.lost_reason == "too expensive" and deal.closed_at is not None
        client_id = deal.client_id

    # a new deal for the card, then a sale on the card itself (no communication)
    d = await api.post(
        "/api/deals", json={"client_id": client_id, "title": "again"}, headers=admin_h
    )
    assert d.status_code == 201, d.text
    sale = await api.post(
        f"/api/clients/{client_id}/result",
        json={"result_id": results["sale"]["id"], "amount": "1500.50", "deal_id": d.json()["id"]},
        headers=admin_h,
    )
    assert sale.status_code == 201, sale.text
    async with sessions() as s:
        won = await s.get(Deal, d.json()["id"])
        assert won is not None and won.stage.is_won and str(won.amount) == "1500.50"

    later = utcnow() + timedelta(days=2)
    post = await api.post(
        f"/api/clients/{client_id}/result",
        json={"result_id": results["postponed"]["id"], "reason": "on holiday", "date": _iso(later)},
        headers=op_h,
    )
    assert post.status_code == 201, post.text
    task = (await api.get(f"/api/tasks/{post.json()['task_id']}", headers=op_h)).json()
    assert (task["assignee_id"], task["goal"]) == (op.id, "on holiday")
    assert datetime.fromisoformat(task["due_at"]) == later

    # admins edit the list; others may not
    new = await api.post(
        "/api/contact-results", json={"name": "Asked to email", "kind": "other"}, headers=admin_h
    )
    assert new.status_code == 201
    assert {k: v for k, v in new.json().items() if k not in ("id", "position")} == {
        "name": "Asked to email",
        "kind": "other",
        "is_active": True,
    }
    assert new.json()["id"] not in {r["id"] for r in results.values()}
    assert (
        await api.post("/api/contact-results", json={"name": "x", "kind": "other"}, headers=op_h)
    ).status_code == 403
    off = await api.patch(
        f"/api/contact-results/{new.json()['id']}", json={"is_active": False}, headers=admin_h
    )
    assert off.json() == {**new.json(), "is_active": False}
    gone = await api.post(
        f"/api/clients/{client_id}/result", json={"result_id": new.json()["id"]}, headers=op_h
    )
    assert gone.status_code == 422


async def test_an_unknown_numbers_card_merges_into_a_client(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, h = await make_user(role="operator", extension="101")
    kept = await api.post(
        "/api/clients", json={"name": "Ivan Petrov", "phones": ["+79035550000"]}, headers=h
    )
    assert kept.status_code == 201, kept.text
    kept_id = kept.json()["id"]
    comm = await _log_missed(sessions, 1, utcnow(), timedelta(minutes=30), missed=True)
    async with sessions() as s:
        auto = await s.scalar(select(Client.id).where(Client.id != kept_id))
    r = await api.post(f"/api/clients/{auto}/merge", json={"into_client_id": kept_id}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["moved"]["communications"] == 1 and r.json()["moved"]["phones"] == 1
    assert (await api.get(f"/api/clients/{auto}", headers=h)).status_code == 404
    card = (await api.get(f"/api/clients/{kept_id}", headers=h)).json()
    assert "+79161234567" in str(card)
    tasks = (await api.get("/api/tasks", params={"client_id": kept_id}, headers=h)).json()
    assert [t["kind"] for t in tasks] == ["callback"]
    comms = (await api.get(f"/api/clients/{kept_id}/communications", headers=h)).json()
    assert comm in [c["id"] for c in (comms["items"] if isinstance(comms, dict) else comms)]
    same = await api.post(
        f"/api/clients/{kept_id}/merge", json={"into_client_id": kept_id}, headers=h
    )
    assert same.status_code == 422
