"""Defects a live Asterisk 22 showed, on its recorded traffic (asterisk/recordings), fed to the
tracker as recorded and with near-simultaneous events in the other order Asterisk may use."""

from __future__ import annotations

from typing import Any

import pytest

from telephony.facts import CallEnded, CallStarted, CallSummary, Fact
from telephony.finished_call import to_record
from telephony.tracker import CallTracker, TrackerConfig
from tests.telephony.helpers import arrival_times, read_events, read_truth

Event = dict[str, str]


def _feed(events: list[Event], tracker: CallTracker | None = None) -> list[Fact]:
    tracker = tracker or CallTracker(TrackerConfig())
    facts: list[Fact] = []
    for event, arrival in zip(events, arrival_times(events), strict=True):
        facts += tracker.feed(event, arrival)
    return facts


def _summary(facts: list[Fact]) -> CallSummary:
    (summary,) = [f.summary for f in facts if isinstance(f, CallEnded)]
    return summary


def _truth(name: str) -> dict[str, Any]:
    (call,) = read_truth(name)["calls"]
    return call


def _index(events: list[Event], name: str) -> int:
    return next(i for i, e in enumerate(events) if e.get("Event") == name)


def _before(events: list[Event], moved: list[int], anchor: int) -> list[Event]:
    """`events` with the events at `moved` put just before the one at `anchor`, stamped a
    tenth of a millisecond before it: the order Asterisk sends them in on another run."""
    stamp = f"{float(events[anchor]['Timestamp']) - 0.0001:.6f}"
    taken = [{**events[i], "Timestamp": stamp} for i in moved]
    rest = [e for i, e in enumerate(events) if i not in moved]
    at = rest.index(events[anchor])
    return rest[:at] + taken + rest[at:]


def _transferer_hangups(events: list[Event], after: int, base: str) -> list[int]:
    """The transferring agent's (Soft)HangupRequest and Hangup events around the transfer."""
    kinds = ("HangupRequest", "SoftHangupRequest", "Hangup")
    return [
        i
        for i, e in enumerate(events)
        if i > after and e.get("Event") in kinds and e.get("Channel", "").startswith(base)
    ][:4]


# ------------------------------------------------------------- 1. hung_up_by after transfers


def _blind_transfer_orders() -> dict[str, list[Event]]:
    events = read_events("blind_transfer_caller_hangs_up")
    transfer = _index(events, "BlindTransfer")
    agent = events[transfer]["TransfererChannel"].rsplit(";", 1)[0]
    moved = _transferer_hangups(events, transfer, agent)
    assert moved, "the recording holds the transferer's hangup"
    return {"as_recorded": events, "hangup_first": _before(events, moved, transfer)}


@pytest.mark.parametrize("order", ["as_recorded", "hangup_first"])
def test_blind_transfer_then_the_caller_hangs_up_is_hung_up_by_the_caller(order: str) -> None:
    events = _blind_transfer_orders()[order]
    summary = _summary(_feed(events))
    truth = _truth("blind_transfer_caller_hangs_up")
    assert summary.hung_up_by == truth["hung_up_by"] == "caller"
    assert [leg.extension for leg in summary.legs] == ["101", "102"]
    assert summary.final_agent == "102"


def _attended_orders() -> dict[str, list[Event]]:
    events = read_events("attended_transfer")
    transfer = _index(events, "AttendedTransfer")
    # As recorded, hanging up 101 (which completes the transfer) comes first; Asterisk may also
    # publish the transfer first: move the transfer before 101's HangupRequest.
    agent = events[transfer]["OrigTransfererChannel"].rsplit(";", 1)[0]
    request = next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "HangupRequest" and e.get("Channel", "").startswith(agent)
    )
    assert request < transfer
    # Live, Asterisk sometimes names a target: the Local channel that dialled 102 for the
    # consult (Local/102@transfer-internal-…;1), optimized away and hung up right after.
    consult = next(
        e
        for e in events
        if e.get("Event") == "Newchannel"
        and e.get("Channel", "").startswith("Local/102@transfer-internal-")
        and e["Channel"].endswith(";1")
    )
    named = [dict(e) for e in events]
    named[transfer] |= {
        "TransferTargetChannel": consult["Channel"],
        "TransferTargetUniqueid": consult["Uniqueid"],
        "TransferTargetLinkedid": consult["Linkedid"],
    }
    return {
        "as_recorded": events,
        "transfer_first": _before(events, [transfer], request),
        "target_named": named,
    }


@pytest.mark.parametrize("order", ["as_recorded", "transfer_first", "target_named"])
def test_attended_transfer_completed_by_the_agent_hanging_up(order: str) -> None:
    summary = _summary(_feed(_attended_orders()[order]))
    truth = _truth("attended_transfer")
    assert summary.hung_up_by == truth["hung_up_by"] == "caller"
    # AMI Atxfer keeps the caller's Linkedid for the consult call and its AttendedTransfer
    # (DestType Bridge) names no target: the colleague who answered the consult is it.
    assert [(t.kind, t.from_extension, t.to_extension) for t in summary.transfers] == [
        ("attended", "101", "102")
    ]
    assert [leg.extension for leg in summary.legs] == ["101", "102"]
    legs = [leg.talk_s for leg in summary.legs]
    assert legs == pytest.approx([leg["talk_s"] for leg in truth["legs"]], abs=0.05)
    assert summary.answered_by == "101" and summary.final_agent == "102"
    assert summary.talk_s == pytest.approx(truth["talk_s"], abs=0.05)


def test_the_agent_hanging_up_after_a_transfer_is_named() -> None:
    # The transfer target (102) hanging up first names 102, not the transferring agent.
    events = read_events("blind_transfer_caller_hangs_up")
    target = next(
        e["DestChannel"].rsplit(";", 1)[0]
        for e in events
        if e.get("Event") == "DialEnd" and e.get("Context") == "transfer-internal"
    )
    caller_gone = next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "SoftHangupRequest" and "caller-sim" in e.get("Channel", "")
    )
    hangs_up = next(
        i
        for i, e in enumerate(events)
        if e.get("Event") == "HangupRequest" and e.get("Channel", "").startswith(target)
    )
    summary = _summary(_feed(_before(events, [hangs_up], caller_gone)))
    assert summary.hung_up_by == "agent 102"


def test_core_stop_mid_call_is_hung_up_by_the_pbx() -> None:
    events = read_events("asterisk_stopped_mid_call")
    summary = _summary(_feed(events))
    # The agent's channel gets the first SoftHangupRequest (Cause 4: the shutdown flag).
    first = next(e for e in events if e.get("Event") == "SoftHangupRequest")
    assert "agent-phones" in first["Channel"] and first["Cause"] == "4"
    assert summary.hung_up_by == "pbx"
    assert summary.t_end == pytest.approx(float(_truth("asterisk_stopped_mid_call")["t_end"]))
    assert not summary.end_inferred  # the Hangups came before Shutdown: the end was seen


def test_shutdown_before_the_hangups_ends_the_call_at_its_last_event() -> None:
    events = read_events("asterisk_stopped_mid_call")
    stop = next(i for i, e in enumerate(events) if e.get("Event") == "SoftHangupRequest")
    shutdown = events[_index(events, "Shutdown")]
    tracker = CallTracker(TrackerConfig())
    facts = _feed([*events[:stop], shutdown], tracker)
    summary = _summary(facts)
    last = max(
        float(e["Timestamp"])
        for e in events[:stop]
        if e.get("Linkedid") == summary.linkedid and "Timestamp" in e
    )
    assert (summary.hung_up_by, summary.end_inferred, summary.t_end) == ("pbx", True, last)
    assert summary.talk_s == pytest.approx(
        last - float(_truth("asterisk_stopped_mid_call")["t_answer"])
    )
    assert tracker.reconcile(set(), now=2e9) == []  # ended once


# ----------------------------------------------------------------------- 2. a busy client


def test_a_busy_client_is_busy_with_its_dial_result_kept() -> None:
    summary = _summary(_feed(read_events("click_to_call_busy")))
    assert summary.status == _truth("click_to_call_busy")["status"] == "busy"
    assert [(a.extension, a.result) for a in summary.ring_attempts] == [("79161234598", "BUSY")]
    record = to_record(summary, client_id=None)
    assert record.status == "busy"
    assert record.extra["ring_attempts"][0]["result"] == "BUSY"


# --------------------------------------------------------- 3. a call found running at connect


def test_a_call_found_after_a_blind_transfer_is_adopted_and_logged_once() -> None:
    name = "service_started_after_blind_transfer"
    events = read_events(name)
    # The recording begins with the answer to CoreShowChannels (its items have no Timestamp).
    listed = [e for e in events if e.get("Event") == "CoreShowChannel"]
    assert len(listed) == 4 and not any("Timestamp" in e for e in listed)
    facts = _feed(events)
    truth = _truth(name)
    seen = truth["seen_by_service"]
    (started,) = [f for f in facts if isinstance(f, CallStarted)]
    assert (started.linkedid, started.direction) == (truth["linkedid"], "inbound")
    assert started.caller_number == truth["caller"]
    summary = _summary(facts)
    assert summary.did == seen["did"] or summary.did == ""
    assert (summary.answered_by, summary.final_agent) == (seen["answered_by"], seen["final_agent"])
    assert summary.status == "answered"
    assert summary.hung_up_by == truth["hung_up_by"] == "caller"
    assert summary.t_end == pytest.approx(float(truth["t_end"]))
    assert seen["talk_s_at_least"] - 1 <= summary.talk_s <= seen["talk_s_at_most"] + 1


# --------------------------------------------------------------------------------- 5. hold


@pytest.mark.parametrize(
    ("name", "hold_s"),
    [("hold_resume", 6.0), ("attended_transfer", 2.69), ("blind_transfer_queue", 0.0)],
)
def test_hold_seconds(name: str, hold_s: float) -> None:
    # Queue music after a transfer into the queue is waiting, not hold; the consult of an
    # attended transfer is (the caller hears music, the agent's channel is on Hold).
    summary = _summary(_feed(read_events(name)))
    assert summary.hold_s == pytest.approx(_truth(name)["hold_s"], abs=0.05)
    assert summary.hold_s == pytest.approx(hold_s, abs=0.05)
    assert to_record(summary, client_id=None).extra["hold_s"] == summary.hold_s


@pytest.mark.parametrize(
    "dropped", [{"Hold", "Unhold"}, {"MusicOnHoldStart", "MusicOnHoldStop"}, set()]
)
def test_hold_counts_once_from_either_kind_of_event(dropped: set[str]) -> None:
    # A PBX that shows hold only as music (or only as Hold) gives the same hold time, and
    # both kinds together are not counted twice.
    events = [e for e in read_events("hold_resume") if e.get("Event") not in dropped]
    assert _summary(_feed(events)).hold_s == pytest.approx(6.0, abs=0.05)
