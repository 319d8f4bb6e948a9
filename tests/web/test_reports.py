"""The supervisors' board and reports, from calls replayed into the real database."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.events.types import CallEvent
from crm_core.reports.service import waiting_callers
from crm_core.schedules.models import ScheduleInterval
from notifier.channels import SUPERVISORS, messages_for
from tests.conftest import UserFactory
from tests.telephony.helpers import split_recording
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
    # the missed call rang 101: it counts for 101 (an inbound call, missed), not for nobody
    assert today[a101.id]["calls_in"] == 2 and today[a101.id]["calls_out"] == 1
    assert today[a101.id]["answered"] == 2 and today[a101.id]["missed"] == 1
    assert None not in today

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
            move = {"stage": stage, "lost_reason": "price"} if stage == "Lost" else {"stage": stage}
            await api.post(f"/api/deals/{d.json()['id']}/stage", json=move, headers=sup)
    report = (await api.get("/api/reports", headers=sup)).json()
    row = next(r for r in report["per_manager"] if r["user_id"] == a101.id)
    assert row["won"] == 1 and row["won_sum"] == "100.00"
    assert row["lost"] == 1 and row["lost_sum"] == "50.00"
    assert row["calls_in"] == 2 and row["calls_out"] == 1 and row["missed"] == 1
    assert report["team"]["calls_in"] == 2  # the missed call counts once for the team
    sources = {s["lead_source"]: s["deals"] for s in report["lead_sources"]}
    assert sources["website"] == 3
    own = (await api.get("/api/reports", headers=h101)).json()
    assert [r["user_id"] for r in own["per_manager"]] == [a101.id] and "team" not in own
    bad = await api.get(
        "/api/reports", params={"date_from": "2026-02-01", "date_to": "2026-01-01"}, headers=sup
    )
    assert bad.status_code == 422


async def test_board_queue_follows_asterisk_queue_events(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """A caller in Asterisk's queue `sales` is on the board's queue, named and numbered, until
    QueueCallerLeave; the supervisors' channel is told both times."""
    await make_user(role="operator", extension="101")
    await make_user(role="operator", extension="102")
    _, sup = await make_user(role="supervisor")
    head, tail = split_recording("inbound_missed_queue", "QueueCallerJoin", tmp_path)
    published: list[Any] = []

    async def publish(events: list[Any]) -> None:
        published.extend(events)

    async with replayed_pbx(sessions, publish) as pbx:
        await pbx.server.play([head], speed=0)  # moved to now: the board shows today's calls
        await pbx.server.wait_played()
        await pbx.settle()
        board = (await api.get("/api/dashboard", headers=sup)).json()
        (waiting,) = board["queue"]
        assert waiting["caller_number"] == "+74957654321"
        assert (waiting["queue"], waiting["position"]) == ("sales", 1)
        assert waiting["queued_at"] is not None and waiting["state"] in ("waiting", "ringing")

        await pbx.server.play([tail], speed=0, resume=True)
        await pbx.server.wait_played()
        await pbx.settle()
    board = (await api.get("/api/dashboard", headers=sup)).json()
    assert board["queue"] == [] and board["calls"] == []

    kinds = [(e.type, e.payload.get("queue")) for e in published if isinstance(e, CallEvent)]
    assert [k for k in kinds if k[0] in ("call.queued", "call.dequeued")] == [
        ("call.queued", "sales"),
        ("call.dequeued", None),
    ]
    to_board = [m for m in messages_for(published) if m.channel == SUPERVISORS]
    queued = next(m for m in to_board if m.type == "call.queued")
    assert queued.payload["queue"] == "sales" and queued.payload["call"]["queue"] == "sales"


def test_waiting_callers_longest_first_and_numbered_per_queue() -> None:
    def call(
        linkedid: str, started: str, queue: str | None = None, queued: str | None = None
    ) -> dict[str, Any]:
        return {
            "linkedid": linkedid,
            "direction": "inbound",
            "state": "waiting",
            "started_at": started,
            "queue": queue,
            "queued_at": queued,
        }

    calls = [
        call("a", "2026-03-10T10:00:05+00:00", "sales", "2026-03-10T10:00:30+00:00"),
        call("b", "2026-03-10T10:00:01+00:00", "sales", "2026-03-10T10:00:40+00:00"),
        call("c", "2026-03-10T10:00:03+00:00"),
        call("d", "2026-03-10T10:00:02+00:00", "support", "2026-03-10T10:00:50+00:00"),
        {**call("e", "2026-03-10T10:00:00+00:00"), "state": "talking"},
        {**call("f", "2026-03-10T10:00:00+00:00"), "direction": "outbound"},
    ]
    queue = waiting_callers(calls)
    assert [c["linkedid"] for c in queue] == ["b", "d", "c", "a"]
    assert {c["linkedid"]: c.get("position") for c in queue} == {
        "a": 1,  # joined sales first, though it called later
        "b": 2,
        "c": None,
        "d": 1,
    }
