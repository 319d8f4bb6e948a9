"""A call's recording (MixMonitor) is linked to it: tracker, pipeline and the logged row."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.communications.models import Communication
from telephony.facts import CallEnded, CallSummary
from telephony.settings import TelephonySettings
from telephony.tracker import CallTracker, TrackerConfig
from tests.telephony.helpers import arrival_times, read_events, read_truth, recordings
from tests.telephony.pbx import replayed_pbx

RECORDED = "inbound_recorded"
RECORDED_ABANDONED = "inbound_recorded_abandoned"


def _summary(events: list[dict[str, str]], config: TrackerConfig | None = None) -> CallSummary:
    tracker = CallTracker(config or TrackerConfig())
    ended = [
        fact.summary
        for event, t in zip(events, arrival_times(events), strict=True)
        for fact in tracker.feed(event, t)
        if isinstance(fact, CallEnded)
    ]
    assert len(ended) == 1
    return ended[0]


def _renamed(events: list[dict[str, str]], renames: dict[str, str | None]) -> list[dict[str, str]]:
    """The recording with VarSet variables renamed (None: the event left out), as another
    dialplan would set them."""
    out = []
    for event in events:
        variable = event.get("Variable", "")
        if event.get("Event") == "VarSet" and variable in renames:
            new = renames[variable]
            if new is None:
                continue
            event = {**event, "Variable": new}
        out.append(event)
    return out


@pytest.mark.parametrize("name", recordings())
def test_every_recording_links_the_file_its_truth_names(name: str) -> None:
    truth = read_truth(name)["calls"][0]
    summary = _summary(read_events(name))
    # the older recordings were made on a dialplan that records nothing
    assert summary.recording == truth.get("recording")
    assert summary.recording_started == ("recording" in truth)


def test_freepbx_style_mixmonitor_filename_alone_links_the_file() -> None:
    events = _renamed(read_events(RECORDED), {"CRM_RECORDING": None})
    summary = _summary(events)
    assert summary.recording == read_truth(RECORDED)["calls"][0]["recording"]


def test_a_configured_variable_wins_over_mixmonitors_own() -> None:
    # the dialplan names the file in its own variable; MixMonitor's is set after it anyway
    events = _renamed(read_events(RECORDED), {"CRM_RECORDING": "REC_FILE"})
    for event in events:
        if event.get("Variable") == "MIXMONITOR_FILENAME":
            event["Value"] = "/elsewhere/other.wav"
    settings = TelephonySettings(RECORDING_VARIABLES=["REC_FILE", "MIXMONITOR_FILENAME"])
    summary = _summary(events, TrackerConfig.from_settings(settings))
    assert summary.recording == read_truth(RECORDED)["calls"][0]["recording"]
    # and unconfigured, the variable means nothing
    assert _summary(_renamed(events, {"MIXMONITOR_FILENAME": None})).recording is None


def test_a_call_in_progress_shows_its_recording_and_keeps_it_across_a_restart() -> None:
    events = read_events(RECORDED)
    times = arrival_times(events)
    tracker = CallTracker(TrackerConfig())
    cut = next(i for i, e in enumerate(events) if e.get("Event") == "BridgeEnter")
    for event, t in zip(events[: cut + 1], times[: cut + 1], strict=True):
        tracker.feed(event, t)
    (live,) = tracker.active_calls()
    assert live.recording == read_truth(RECORDED)["calls"][0]["recording"]
    restarted = CallTracker(TrackerConfig())
    restarted.restore(tracker.snapshot(live.linkedid))
    ended = [
        f.summary
        for event, t in zip(events[cut + 1 :], times[cut + 1 :], strict=True)
        for f in restarted.feed(event, t)
        if isinstance(f, CallEnded)
    ]
    assert [(s.recording, s.recording_started) for s in ended] == [(live.recording, True)]


@pytest.mark.usefixtures("db")
async def test_logged_rows_carry_their_recording(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with replayed_pbx(sessions) as pbx:
        await pbx.play(RECORDED, RECORDED_ABANDONED, "inbound_answered", renumber=False)
    async with sessions() as s:
        rows = (
            await s.scalars(
                select(Communication)
                .where(Communication.kind == "call")
                .order_by(Communication.occurred_at)
            )
        ).all()
    by_call: dict[str | None, Any] = {row.external_id: row.extra["recording"] for row in rows}
    answered = read_truth(RECORDED)["calls"][0]
    abandoned = read_truth(RECORDED_ABANDONED)["calls"][0]
    assert by_call == {
        read_truth("inbound_answered")["calls"][0]["linkedid"]: None,
        answered["linkedid"]: {"file": answered["recording"], "started": True, "empty": False},
        # unanswered: MixMonitor (option b) wrote a header only, and the row says so
        abandoned["linkedid"]: {"file": abandoned["recording"], "started": True, "empty": True},
    }
