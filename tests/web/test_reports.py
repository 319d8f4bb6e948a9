"""The supervisors' board and reports, from calls replayed into the real database."""

from __future__ import annotations

from datetime import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.schedules.models import ScheduleInterval
from tests.conftest import UserFactory
from tests.telephony.pbx import replayed_pbx

pytestmark = pytest.mark.usefixtures("db")


async def test_board_and_report_figures(
    api: httpx.AsyncClient, make_user: UserFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a101, h101 = await make_user(role="operator", extension="101")
    await make_user(role="operator", extension="102")
    _, sup = await make_user(role="supervisor")
    async with sessions() as s:  # 101 works round the clock, 102 has no shifts: off duty
        s.add_all(
            ScheduleInterval(user_id=a101.id, weekday=d, start_time=time(0), end_time=time(0))
            for d in range(7)
        )
        await s.commit()
    async with replayed_pbx(sessions) as pbx:
        await pbx.play("inbound_answered", "inbound_abandoned", "click_to_call", shift_to_now=True)

    assert (await api.get("/api/dashboard", headers=h101)).status_code == 403
    board = (await api.get("/api/dashboard", headers=sup)).json()
    assert board["calls"] == [] and board["queue"] == []
    states = {a["extension"]: a["state"] for a in board["agents"]}
    assert states == {"101": "free", "102": "off duty"}
    assert [m["phone"] for m in board["missed_today"]] == ["+79031234567"]
    today = {f["user_id"]: f for f in board["today"]}
    assert today[a101.id]["calls_in"] == 1 and today[a101.id]["calls_out"] == 1
    assert today[a101.id]["answered"] == 2
    assert today[None]["missed"] == 1  # the missed call belongs to nobody yet

    # deals: one won, one lost, for the team report
    client = await api.post("/api/clients", json={"name": "Acme", "phones": []}, headers=sup)
    for title, amount, stage in (
        ("A", "100.00", "Won"),
        ("B", "50.00", "Lost"),
        ("C", "7.00", None),
    ):
        d = await api.post(
            "/api/deals",
            json={
                "client_id": client.json()["id"],
                "title": title,
                "amount": amount,
                "responsible_id": a101.id,
                "lead_source": "website",
            },
            headers=sup,
        )
        if stage:
            await api.post(f"/api/deals/{d.json()['id']}/stage", json={"stage": stage}, headers=sup)
    report = (await api.get("/api/reports", headers=sup)).json()
    row = next(r for r in report["per_manager"] if r["user_id"] == a101.id)
    assert row["won"] == 1 and row["won_sum"] == "100.00"
    assert row["lost"] == 1 and row["lost_sum"] == "50.00"
    assert row["calls_in"] == 1 and row["calls_out"] == 1
    assert report["team"]["calls_in"] == 2  # the missed call counts for the team
    sources = {s["lead_source"]: s["deals"] for s in report["lead_sources"]}
    assert sources["website"] == 3
    own = (await api.get("/api/reports", headers=h101)).json()
    assert [r["user_id"] for r in own["per_manager"]] == [a101.id] and "team" not in own
    bad = await api.get(
        "/api/reports", params={"date_from": "2026-02-01", "date_to": "2026-01-01"}, headers=sup
    )
    assert bad.status_code == 422
