"""Queue statistics from replayed recordings equal what the recordings' truth files imply.

Every recorded queue call waits in the one queue of the recording PBX (asterisk-conf/queues.conf,
`sales`, Asterisk's default retry of 5 s between rounds of ringing). From each truth file: a call
with ring attempts made by the queue was offered to it; answered there when the queue's last
attempt was answered; abandoned when the caller hung up unanswered. Its wait before the answer is
the queue's ringing plus the retry pauses between attempts.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.reports.models import QueueEntry
from tests.conftest import UserFactory
from tests.telephony.helpers import AMI_DIR, split_recording
from tests.telephony.pbx import replayed_pbx
from web.settings import Settings

pytestmark = pytest.mark.usefixtures("db")

QUEUE_CALLS = (
    "inbound_missed_queue",
    "inbound_queue_second_answers",
    "inbound_router_down_queue",
    "blind_transfer_queue",
)
RETRY_S = 5.0  # queues.conf sets none: Asterisk's default


def recorded_queue() -> str:
    conf = (AMI_DIR / "asterisk-conf" / "queues.conf").read_text()
    (name,) = [
        line.strip("[] \n")
        for line in conf.splitlines()
        if line.startswith("[") and "general" not in line
    ]
    return name


def implied(names: tuple[str, ...]) -> dict[str, Any]:
    offered = answered = abandoned = 0
    waits: list[float] = []
    for name in names:
        truth = json.loads((AMI_DIR / f"{name}.truth.json").read_text())
        for call in truth["calls"]:
            tries = [a for a in call["ring_attempts"] if a["via"] == "queue"]
            if not tries:
                continue
            offered += 1
            if call["status"] == "answered" and tries[-1]["result"] == "ANSWER":
                answered += 1
                waits.append(sum(a["ring_s"] for a in tries) + RETRY_S * (len(tries) - 1))
            elif call["status"] == "abandoned":
                abandoned += 1
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "waits": waits,
    }


async def test_queue_figures_from_replayed_calls_match_the_truth(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    await make_user(role="operator", extension="101")
    await make_user(role="operator", extension="102")
    _, sup = await make_user(role="supervisor")
    async with replayed_pbx(sessions) as pbx:
        await pbx.play(*QUEUE_CALLS)
    truth = implied(QUEUE_CALLS)
    assert truth["offered"] == 4 and truth["answered"] == 3 and truth["abandoned"] == 1

    today = datetime.now(ZoneInfo(settings.core.default_timezone)).date()
    period = {
        "date_from": str(today - timedelta(days=1)),
        "date_to": str(today + timedelta(days=1)),
    }
    r = await api.get("/api/reports/queues", params=period, headers=sup)
    assert r.status_code == 200, r.text
    (q,) = r.json()["items"]
    assert q["queue"] == recorded_queue()
    assert (q["offered"], q["answered"], q["abandoned"], q["short_abandoned"]) == (
        truth["offered"],
        truth["answered"],
        truth["abandoned"],
        0,
    )
    assert q["abandon_percent"] == round(100 * truth["abandoned"] / truth["offered"], 1)
    within = sum(1 for w in truth["waits"] if w <= 20)  # SERVICE_LEVEL_SECONDS default
    assert q["service_level_percent"] == round(100 * within / truth["offered"], 1)
    asa = sum(truth["waits"]) / len(truth["waits"])
    assert q["asa_seconds"] == pytest.approx(asa, abs=0.5)
    assert q["callers_waiting"] == 0 and q["longest_wait_now_seconds"] == 0

    async with sessions() as s:  # one stay per call, each closed
        entries = (await s.scalars(select(QueueEntry))).all()
    assert len(entries) == truth["offered"] and all(e.left_at for e in entries)

    # the same table as CSV, and a manager may not see queue figures
    csv = await api.get("/api/reports/queues", params={**period, "format": "csv"}, headers=sup)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    header, row = csv.text.strip().split("\r\n")
    assert header.split(",")[:4] == ["queue", "offered", "answered", "abandoned"]
    assert row.split(",")[:4] == [q["queue"], "4", "3", "1"]
    _, manager = await make_user(role="manager", extension="103")
    assert (await api.get("/api/reports/queues", headers=manager)).status_code == 403


async def test_callers_waiting_now_from_the_calls_in_progress(
    api: httpx.AsyncClient,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    today = datetime.now(ZoneInfo(settings.core.default_timezone)).date()
    period = {
        "date_from": str(today - timedelta(days=1)),
        "date_to": str(today + timedelta(days=1)),
    }
    await make_user(role="operator", extension="101")
    _, sup = await make_user(role="supervisor")
    head, tail = split_recording("inbound_missed_queue", "QueueCallerJoin", tmp_path)
    async with replayed_pbx(sessions) as pbx:
        await pbx.server.play([head], speed=0)
        await pbx.server.wait_played()
        await pbx.settle()
        (q,) = (await api.get("/api/reports/queues", params=period, headers=sup)).json()["items"]
        assert (q["queue"], q["offered"], q["callers_waiting"]) == ("sales", 1, 1)
        assert q["longest_wait_now_seconds"] >= 0
        await pbx.server.play([tail], speed=0, resume=True)
        await pbx.server.wait_played()
        await pbx.settle()
    (q,) = (await api.get("/api/reports/queues", params=period, headers=sup)).json()["items"]
    assert (q["offered"], q["abandoned"], q["callers_waiting"]) == (1, 1, 0)
