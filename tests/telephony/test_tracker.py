"""The call tracker against real Asterisk recordings and hand-made production-style calls."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from telephony.facts import (
    AgentRingEnded,
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallQueueChanged,
    CallStarted,
    CallSummary,
    CallTransferred,
    Fact,
)
from telephony.finished_call import to_record
from telephony.settings import TelephonySettings
from telephony.tracker import CallTracker, TrackerConfig
from tests.telephony.helpers import (
    arrival_times,
    parse_stream,
    read_events,
    read_messages,
    read_truth,
    recordings,
)

# The truths are measured from Timestamp headers and rounded to 0.5 s; the brief allows 1 s.
SECONDS = 1.0
RECORDINGS = recordings()
ID_FIELDS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid")


def new_tracker() -> CallTracker:
    return CallTracker(TrackerConfig())


def feed_all(
    tracker: CallTracker,
    events: list[dict[str, str]],
    times: Iterable[float] | None = None,
) -> list[Fact]:
    facts: list[Fact] = []
    for event, arrival in zip(events, times or arrival_times(events), strict=True):
        facts += tracker.feed(event, arrival)
    return facts


def summaries(facts: Iterable[Fact]) -> list[CallSummary]:
    return [f.summary for f in facts if isinstance(f, CallEnded)]


def of_type(facts: Iterable[Fact], kind: type[Any]) -> list[Any]:
    return [f for f in facts if isinstance(f, kind)]


def run(name: str) -> list[Fact]:
    tracker = new_tracker()
    facts = feed_all(tracker, read_events(name))
    assert tracker.stats() == {"calls": 0, "channels": 0}
    return facts


def truth_calls(name: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = read_truth(name)["calls"]
    return calls


# ---------------------------------------------------------------- every recording vs its truth


@pytest.mark.parametrize("name", RECORDINGS)
def test_one_call_per_truth_call(name: str) -> None:
    facts = run(name)
    truth = truth_calls(name)
    assert [f.linkedid for f in of_type(facts, CallStarted)] == [c["linkedid"] for c in truth]
    assert [s.linkedid for s in summaries(facts)] == [c["linkedid"] for c in truth]
    # The call opens with CallStarted and closes with CallEnded; nothing follows the end.
    assert isinstance(facts[0], CallStarted)
    assert isinstance(facts[-1], CallEnded)


@pytest.mark.parametrize("name", RECORDINGS)
def test_summary_matches_truth(name: str) -> None:
    (summary,) = summaries(run(name))
    (truth,) = truth_calls(name)
    assert summary.direction == truth["direction"]
    assert summary.rang == tuple(truth["rang"])
    assert summary.answered_by == truth["answered_by"]
    assert summary.status == truth["status"]
    assert summary.missed == truth.get("missed", False)
    assert summary.hung_up_by == truth["hung_up_by"]
    assert summary.hangup_cause == truth["hangup_cause"]
    assert summary.ring_s == pytest.approx(truth["ring_s"], abs=SECONDS)
    assert summary.talk_s == pytest.approx(truth["talk_s"], abs=SECONDS)
    assert summary.t_start == pytest.approx(float(truth["t_start"]), abs=0.001)
    assert summary.t_end == pytest.approx(float(truth["t_end"]), abs=0.001)
    if truth["t_answer"] is None:
        assert summary.t_answer is None
    else:
        assert summary.t_answer == pytest.approx(float(truth["t_answer"]), abs=0.001)
    if "hold_s" in truth:
        assert summary.hold_s == pytest.approx(truth["hold_s"], abs=SECONDS)
    assert not summary.end_inferred
    attempts = [(a.extension, a.via, a.context, a.result) for a in summary.ring_attempts]
    assert attempts == [
        (a["ext"], a["via"], a["context"], a["result"]) for a in truth["ring_attempts"]
    ]
    for got, want in zip(summary.ring_attempts, truth["ring_attempts"], strict=True):
        assert got.ring_s == pytest.approx(want["ring_s"], abs=SECONDS)


@pytest.mark.parametrize(
    "name", [n for n in RECORDINGS if truth_calls(n)[0]["direction"] == "inbound"]
)
def test_inbound_caller_did_agents(name: str) -> None:
    (summary,) = summaries(run(name))
    (truth,) = truth_calls(name)
    assert summary.caller_number == truth["caller"]
    assert summary.caller_name == truth["caller_name"]
    assert summary.did == truth["did"]
    assert summary.dialled_number is None
    assert summary.agents_rung == tuple(truth["rang"])
    assert summary.wait_s == pytest.approx(truth["wait_s"], abs=SECONDS)
    assert summary.variables == {}
    assert summary.agent_leg_ring_s is None


def test_click_to_call_is_one_outbound_call_with_crm_variables() -> None:
    facts = run("click_to_call")
    (truth,) = truth_calls("click_to_call")
    (started,) = of_type(facts, CallStarted)
    assert started.direction == "outbound"
    assert started.agent_extension == truth["agent"] == "101"
    assert started.did_or_dialled == truth["dialled_number"]
    # The CRM needs the deal at the start already, to log the call on it.
    assert started.variables == truth["crm_variables"]
    # The agent's own phone ringing for the originate is no screen-pop.
    assert of_type(facts, AgentRinging) == []
    assert [a.extension for a in of_type(facts, CallAnswered)] == ["101"]
    (summary,) = summaries(facts)
    assert summary.dialled_number == truth["dialled_number"]
    assert summary.did is None
    assert summary.agent_extension == "101"
    assert summary.agents_rung == ()
    assert summary.final_agent == "101"
    assert summary.wait_s is None
    assert summary.variables == truth["crm_variables"]
    assert summary.agent_leg_ring_s == pytest.approx(truth["agent_leg_ring_s"], abs=SECONDS)
    assert [leg.extension for leg in summary.legs] == ["101"]


@pytest.mark.parametrize("name", RECORDINGS)
def test_ringing_and_answer_facts(name: str) -> None:
    facts = run(name)
    (truth,) = truth_calls(name)
    if truth["direction"] == "inbound":
        ringing = [(f.extension, f.via) for f in of_type(facts, AgentRinging)]
        assert ringing == [(a["ext"], a["via"]) for a in truth["ring_attempts"]]
    answers = [a["ext"] for a in truth["ring_attempts"] if a["result"] == "ANSWER"]
    if truth["direction"] == "outbound":
        answers = [truth["agent"]] * len(answers)
    assert [f.extension for f in of_type(facts, CallAnswered)] == answers


@pytest.mark.parametrize("name", RECORDINGS)
def test_legs_and_transfers(name: str) -> None:
    facts = run(name)
    (summary,) = summaries(facts)
    (truth,) = truth_calls(name)
    transfer = truth.get("transfer")
    if transfer is None:
        assert summary.transfers == ()
        assert of_type(facts, CallTransferred) == []
        if summary.answered_by is None:
            assert summary.legs == ()
            assert summary.final_agent is None
        else:
            assert len(summary.legs) == 1
            assert summary.legs[0].talk_s == pytest.approx(truth["talk_s"], abs=SECONDS)
        return
    (fact,) = of_type(facts, CallTransferred)
    assert (fact.kind, fact.from_extension, fact.to_extension) == (
        transfer["type"],
        transfer["by"],
        transfer["to"],
    )
    (record,) = summary.transfers
    assert (record.kind, record.from_extension, record.to_extension) == (
        transfer["type"],
        transfer["by"],
        transfer["to"],
    )
    assert record.at_s == pytest.approx(transfer["at_s"], abs=SECONDS)
    # A transfer into a queue names the queue; the agent it reached owns the last leg.
    assert truth["transferred_to"] == transfer["to"]
    assert summary.final_agent == transfer["answered_by"]
    assert [leg.extension for leg in summary.legs] == [transfer["by"], transfer["answered_by"]]
    before, after = (leg.talk_s for leg in summary.legs)
    assert before == pytest.approx(truth["talk_before_transfer_s"], abs=SECONDS)
    assert after == pytest.approx(truth["talk_after_transfer_s"], abs=SECONDS)
    assert sum(leg.talk_s for leg in summary.legs) == pytest.approx(summary.talk_s, abs=0.01)


# ------------------------------------------------------------------ without Timestamp headers


@pytest.mark.parametrize("name", RECORDINGS)
def test_without_timestamps_arrival_times_are_used(name: str) -> None:
    events = [{k: v for k, v in e.items() if k != "Timestamp"} for e in read_events(name)]
    times = [500.0 + 0.25 * i for i in range(len(events))]
    tracker = new_tracker()
    facts = feed_all(tracker, events, times)
    (truth,) = truth_calls(name)
    (summary,) = summaries(facts)
    assert summary.linkedid == truth["linkedid"]
    assert summary.direction == truth["direction"]
    assert summary.rang == tuple(truth["rang"])
    assert summary.answered_by == truth["answered_by"]
    assert summary.status == truth["status"]
    assert summary.hung_up_by == truth["hung_up_by"]
    assert times[0] <= summary.t_start <= summary.t_end <= times[-1]
    assert tracker.stats() == {"calls": 0, "channels": 0}


# ---------------------------------------------------------------------------- malformed input


def corrupt_stream(name: str) -> list[bytes]:
    """The recording with garbage of every kind between its messages."""
    blocks = read_messages(name)
    dial_begin = next(b for b in blocks if b"Event: DialBegin" in b and b"\nChannel:" in b)
    newchannel = next(b for b in blocks if b"Event: Newchannel" in b)
    garbage = [
        b"this line has no colon at all",
        bytes(range(256)),
        b"\xff\xfe\x00\x01Event\x00: \x80\x81",
        b"Event: SomethingAsteriskAddsNextYear\r\nChannel: PJSIP/101-00000009\r\nFoo: bar",
        # A DialBegin cut before its destination fields.
        dial_begin[: dial_begin.index(b"DestChannel")],
        # A Newchannel without its Linkedid, for a channel nobody knows.
        newchannel.replace(b"Linkedid", b"Xinkedid").replace(b"Uniqueid: ", b"Uniqueid: 9"),
        b"Event: Hangup\r\nUniqueid: does-not-exist",
        b"Event: DialEnd\r\nChannel: Local/s@caller-sim-00000000;1",
        b"Event: BlindTransfer\r\nResult: Success",
        b"Event: Hangup",
        b"",
    ]
    stream: list[bytes] = []
    for i, block in enumerate(blocks):
        stream.append(block)
        stream.append(garbage[i % len(garbage)])
    return stream


@pytest.mark.parametrize("name", RECORDINGS)
def test_malformed_messages_neither_raise_nor_lose_calls(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    clean = summaries(run(name))
    tracker = new_tracker()
    facts: list[Fact] = []
    arrival = 0.0
    with caplog.at_level(logging.WARNING, logger="telephony.tracker"):
        for message in parse_stream(b"\n\n".join(corrupt_stream(name))):
            arrival += 0.01
            facts += tracker.feed(message, arrival)
    assert summaries(facts) == clean
    assert any("malformed" in r.getMessage() for r in caplog.records)
    assert tracker.stats() == {"calls": 0, "channels": 0}


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Event": ""},
        {"Event": "Newchannel"},
        {"Event": "DialBegin", "Channel": "PJSIP/101-00000001"},
        {"Event": "AgentRingNoAnswer", "Uniqueid": "1.1", "DestUniqueid": "1.2", "RingTime": "x"},
        {"Event": "Newexten", "Uniqueid": "1.1", "Timestamp": "not-a-number"},
        {"Event": "VarSet", "Variable": "CRM_DEAL_ID"},
    ],
)
def test_partial_events_return_nothing(event: dict[str, str]) -> None:
    tracker = new_tracker()
    assert tracker.feed(event, 1.0) == []
    assert tracker.stats() == {"calls": 0, "channels": 0}


def test_a_non_mapping_event_does_not_raise() -> None:
    assert new_tracker().feed(None, 1.0) == []  # type: ignore[arg-type]


def test_late_events_of_a_hung_up_channel_are_ignored() -> None:
    # The main channel's first step in from-pstn, replayed after its Hangup, must not open a
    # phantom call: events of a channel after its Hangup are ignored.
    events = read_events("inbound_answered")
    tracker = new_tracker()
    feed_all(tracker, events)
    entering = next(
        e for e in events if e.get("Event") == "Newexten" and e["Context"] == "from-pstn"
    )
    late = [entering, {**entering, "Event": "NewConnectedLine"}, {**entering, "Event": "VarSet"}]
    assert feed_all(tracker, late, [2e9, 2e9 + 1, 2e9 + 2]) == []
    assert tracker.stats() == {"calls": 0, "channels": 0}


# ------------------------------------------------------------------- snapshot, restore, reconcile


@pytest.mark.parametrize("name", RECORDINGS)
def test_snapshot_and_restore_mid_call(name: str) -> None:
    events = read_events(name)
    times = arrival_times(events)
    clean = summaries(run(name))
    # halfway through the call itself (an agent dialling out starts only at its DialBegin)
    dialled = next(
        i for i, e in enumerate(events) if e.get("Event") == "DialBegin" and e.get("Channel")
    )
    half = (dialled + len(events)) // 2
    first = new_tracker()
    facts = feed_all(first, events[:half], times[:half])
    (active,) = first.active_calls()
    # Persisted as JSON across the restart.
    saved = json.loads(json.dumps(first.snapshot(active.linkedid)))
    second = new_tracker()
    second.restore(saved)
    assert second.active_calls() == first.active_calls()
    facts += feed_all(second, events[half:], times[half:])
    assert summaries(facts) == clean
    assert len(of_type(facts, CallStarted)) == 1
    assert second.stats() == {"calls": 0, "channels": 0}


def test_active_calls_show_the_call_in_progress() -> None:
    events = read_events("inbound_blind_transfer_dial")
    tracker = new_tracker()
    answered = next(
        i for i, e in enumerate(events) if e.get("Event") == "DialEnd" and e.get("Channel")
    )
    feed_all(tracker, events[: answered + 1])
    (call,) = tracker.active_calls()
    assert (call.direction, call.state, call.talking_extension) == ("inbound", "talking", "101")
    assert call.caller_number == "+79167770001"
    assert call.did_or_dialled == "84951112233"


def queue_events(name: str) -> list[dict[str, str]]:
    return [e for e in read_events(name) if e.get("Event", "").startswith("QueueCaller")]


@pytest.mark.parametrize("name", RECORDINGS)
def test_queue_join_and_leave_are_facts_and_shown_while_waiting(name: str) -> None:
    events = read_events(name)
    joins = [i for i, e in enumerate(events) if e.get("Event") == "QueueCallerJoin"]
    leaves = [i for i, e in enumerate(events) if e.get("Event") == "QueueCallerLeave"]
    queued = of_type(run(name), CallQueueChanged)
    # one fact per join and per leave, at the PBX's time, in order
    assert [(f.queue, f.at) for f in queued] == [
        (events[i]["Queue"] if i in joins else None, float(events[i]["Timestamp"]))
        for i in sorted(joins + leaves)
    ]
    for join, leave in zip(joins, leaves, strict=True):
        tracker = new_tracker()
        feed_all(tracker, events[: join + 1])
        (call,) = tracker.active_calls()
        assert (call.queue, call.t_queued) == ("sales", float(events[join]["Timestamp"]))
        assert call.state in ("waiting", "ringing")
        feed_all(
            tracker, events[: leave + 1][join + 1 :], arrival_times(events)[join + 1 : leave + 1]
        )
        assert all(c.queue is None and c.t_queued is None for c in tracker.active_calls())


def test_the_queued_recordings_are_the_ones_with_queue_events() -> None:
    with_queue = {n for n in RECORDINGS if queue_events(n)}
    assert with_queue == {
        "blind_transfer_queue",
        "inbound_missed_queue",
        "inbound_queue_second_answers",
        "inbound_router_down_queue",
    }


def test_snapshot_of_an_unknown_call_raises_key_error() -> None:
    with pytest.raises(KeyError):
        new_tracker().snapshot("1.0")


def test_restore_rejects_unknown_versions() -> None:
    with pytest.raises(ValueError):
        new_tracker().restore({"version": 99})


def test_reconcile_ends_a_vanished_call_once() -> None:
    events = read_events("inbound_answered")
    times = arrival_times(events)
    tracker = new_tracker()
    # Cut the AMI connection while 101 talks to the caller.
    half = 1 + next(
        i for i, e in enumerate(events) if e.get("Event") == "DialEnd" and e.get("Channel")
    )
    feed_all(tracker, events[:half], times[:half])
    (active,) = tracker.active_calls()
    assert tracker.reconcile({active.linkedid}, now=times[half]) == []  # still there
    now = times[half] + 60.0
    facts = tracker.reconcile(set(), now=now)
    (summary,) = summaries(facts)
    # It ended at some point after Asterisk last showed it (the first reconcile), not at
    # `now`: our own time away is no talk. The record says the end was inferred.
    last_seen = times[half]
    assert facts == [CallEnded(linkedid=active.linkedid, at=last_seen, summary=summary)]
    assert summary.t_end == last_seen
    assert summary.end_inferred
    assert summary.answered_by == "101"
    assert summary.hung_up_by is None  # nobody knows who, and we say so
    assert tracker.reconcile(set(), now=now + 1) == []
    assert tracker.active_calls() == []
    assert tracker.stats() == {"calls": 0, "channels": 0}
    # Whatever of the old call still arrives produces nothing.
    assert feed_all(tracker, events[half:], times[half:]) == []


def core_show_channel(
    channel: str, uid: str, linkedid: str, context: str, exten: str, cid: str, **fields: str
) -> dict[str, str]:
    """One row of a CoreShowChannels answer; `fields` the rest (Application, Duration, ...)."""
    return {
        "Event": "CoreShowChannel",
        "ActionID": "reconnect-1",
        "Channel": channel,
        "Uniqueid": uid,
        "Linkedid": linkedid,
        "Context": context,
        "Exten": exten,
        "CallerIDNum": cid,
        **fields,
    }


def test_reconcile_takes_up_a_caller_waiting_in_a_queue() -> None:
    tracker = new_tracker()
    caller = core_show_channel(
        "PJSIP/trunk-00000030",
        "1700000000.40",
        "1700000000.40",
        "from-pstn",
        "84951112233",
        "+79161234567",
        Application="Queue",
        ApplicationData="sales,,,,30",
        Duration="00:00:12",
    )
    assert tracker.feed(caller, 1000.0) == []
    facts = tracker.reconcile({"1700000000.40"}, now=1000.0)
    assert [type(f) for f in facts] == [CallStarted, CallQueueChanged]
    assert facts[1] == CallQueueChanged(linkedid="1700000000.40", at=988.0, queue="sales")
    (call,) = tracker.active_calls()
    assert (call.state, call.queue, call.t_queued) == ("waiting", "sales", None)
    leave = {"Event": "QueueCallerLeave", "Uniqueid": "1700000000.40", "Queue": "sales"}
    assert tracker.feed(leave, 1001.0) == [
        CallQueueChanged(linkedid="1700000000.40", at=1001.0, queue=None)
    ]
    assert tracker.active_calls()[0].queue is None


def test_reconcile_takes_up_calls_found_by_core_show_channels() -> None:
    tracker = new_tracker()
    caller = core_show_channel(
        "PJSIP/trunk-00000010",
        "1700000000.20",
        "1700000000.20",
        "from-pstn",
        "84951112233",
        "+79161234567",
        CallerIDName="Ivan Petrov",
        Application="Dial",
        Duration="00:00:20",
        BridgeId="b-1",
    )
    agent = core_show_channel(
        "PJSIP/101-00000011",
        "1700000000.21",
        "1700000000.20",
        "from-internal",
        "",
        "101",
        Application="AppDial",
        Duration="00:00:15",
        BridgeId="b-1",
    )
    assert tracker.feed(caller, 1000.0) == [] and tracker.feed(agent, 1000.0) == []
    facts = tracker.reconcile({"1700000000.20"}, now=1000.0)
    assert [type(f) for f in facts] == [CallStarted, AgentRinging, CallAnswered]
    assert facts[0].at == 980.0
    (call,) = tracker.active_calls()
    assert (call.caller_number, call.talking_extension) == ("+79161234567", "101")
    hangups = [
        {"Event": "Hangup", "Uniqueid": "1700000000.21", "Cause-txt": "Normal Clearing"},
        {"Event": "Hangup", "Uniqueid": "1700000000.20", "Cause-txt": "Normal Clearing"},
    ]
    (summary,) = summaries(feed_all(tracker, hangups, [1010.0, 1010.0]))
    assert (summary.answered_by, summary.hung_up_by, summary.status) == (
        "101",
        "agent 101",
        "answered",
    )
    assert tracker.stats() == {"calls": 0, "channels": 0}


# ---------------------------------------------------------------------------- memory and speed


def renumbered(events: list[dict[str, str]], copy: int) -> list[dict[str, str]]:
    """The recording as if it happened ``copy`` × 1000 s later: new Uniqueids and Linkedids."""
    shift = copy * 1000

    def move(value: str) -> str:
        seconds, dot, sequence = value.partition(".")
        return f"{int(seconds) + shift}{dot}{sequence}" if seconds.isdigit() else value

    out = []
    for event in events:
        event = dict(event)
        for key in ID_FIELDS:
            if key in event:
                event[key] = move(event[key])
        out.append(event)
    return out


def test_a_thousand_finished_calls_leave_no_state() -> None:
    # The tracker's speed is measured in bench/ami_bench.py (its no-database path), beside bare
    # panoramisk in the same run; here only what 1,000 calls leave behind: nothing.
    base = read_events("inbound_queue_second_answers")
    copies = [renumbered(base, i) for i in range(1000)]
    tracker = new_tracker()
    ended = 0
    linkedids = set()
    for copy in copies:
        for event in copy:
            for fact in tracker.feed(event, 0.0):
                if isinstance(fact, CallEnded):
                    ended += 1
                    linkedids.add(fact.linkedid)
    assert ended == len(linkedids) == 1000
    assert tracker.stats() == {"calls": 0, "channels": 0}
    assert tracker.active_calls() == []


def test_concurrent_calls_are_kept_apart() -> None:
    # Two recordings interleaved event by event (their Linkedids differ): each stays whole.
    a = read_events("inbound_answered")
    b = renumbered(read_events("inbound_missed_queue"), 1)
    mixed: list[dict[str, str]] = []
    for i in range(max(len(a), len(b))):
        mixed += a[i : i + 1] + b[i : i + 1]
    tracker = new_tracker()
    ended = {s.caller_number: s for s in summaries(feed_all(tracker, mixed, [0.0] * len(mixed)))}
    assert ended["+79161234567"].answered_by == "101"
    assert ended["+74957654321"].agents_rung == ("101", "101", "102")
    assert ended["+74957654321"].status == "abandoned"
    assert tracker.stats() == {"calls": 0, "channels": 0}


# ------------------------------------------------- production-style calls (PJSIP, no Local halves)


class Pbx:
    """Feeds hand-made AMI events with production channel names, one second apart."""

    def __init__(self) -> None:
        self.tracker = new_tracker()
        self.t = 1_700_000_000.0
        self.facts: list[Fact] = []

    def send(self, event: str, **fields: str) -> list[Fact]:
        self.t += 1.0
        message: Mapping[str, str] = {
            "Event": event,
            "Timestamp": f"{self.t:.6f}",
            **{k.replace("_", "-"): v for k, v in fields.items()},
        }
        facts = self.tracker.feed(message, 0.0)
        self.facts += facts
        return facts

    def channel(
        self, name: str, uid: str, linkedid: str, context: str, exten: str, cid: str
    ) -> None:
        self.send(
            "Newchannel",
            Channel=name,
            Uniqueid=uid,
            Linkedid=linkedid,
            Context=context,
            Exten=exten,
            CallerIDNum=cid,
        )

    def step(self, uid: str, context: str, exten: str, app: str) -> list[Fact]:
        return self.send("Newexten", Uniqueid=uid, Context=context, Exten=exten, Application=app)

    def dial(self, src: str, dest: str, dest_name: str, status: str | None = None) -> list[Fact]:
        fields = {"Channel": "x", "Uniqueid": src, "DestUniqueid": dest, "DestChannel": dest_name}
        if status is None:
            return self.send("DialBegin", **fields)
        return self.send("DialEnd", DialStatus=status, **fields)

    def hangup(self, uid: str, cause: str = "Normal Clearing") -> list[Fact]:
        return self.send("Hangup", Uniqueid=uid, Cause_txt=cause)

    def start(
        self, name: str, uid: str, context: str, exten: str, cid: str, app: str = "Dial"
    ) -> list[Fact]:
        """A call's first channel (its own Linkedid) and the dialplan step it runs."""
        self.channel(name, uid, uid, context, exten, cid)
        return self.step(uid, context, exten, app)

    def answer(
        self, src: str, dest: str, dest_name: str, context: str, exten: str, cid: str
    ) -> list[Fact]:
        """A new leg of the call `src` started rings and answers: the facts it brings."""
        self.channel(dest_name, dest, src, context, exten, cid)
        rang = self.dial(src, dest, dest_name)
        return rang + self.dial(src, dest, dest_name, "ANSWER")


def test_inbound_nobody_answers_and_the_dialplan_hangs_up() -> None:
    pbx = Pbx()
    (started,) = pbx.start(
        "PJSIP/trunk-00000001", "1.1", "from-pstn", "84951112233", "89161234567", "NoOp"
    )
    assert (started.direction, started.caller_number) == ("inbound", "89161234567")
    pbx.channel("PJSIP/101-00000002", "1.2", "1.1", "from-internal", "101", "101")
    (ringing,) = pbx.dial("1.1", "1.2", "PJSIP/101-00000002")
    assert (ringing.extension, ringing.via) == ("101", "dial")
    (ring_ended,) = pbx.dial("1.1", "1.2", "PJSIP/101-00000002", "NOANSWER")
    assert isinstance(ring_ended, AgentRingEnded)
    assert (ring_ended.extension, ring_ended.result) == ("101", "NOANSWER")
    pbx.hangup("1.2", "Unknown")
    pbx.step("1.1", "from-pstn", "84951112233", "Hangup")
    pbx.send("SoftHangupRequest", Uniqueid="1.1")
    (ended,) = pbx.hangup("1.1")
    assert isinstance(ended, CallEnded)
    s = ended.summary
    assert (s.status, s.missed, s.hung_up_by, s.answered_by) == ("missed", True, "pbx", None)
    assert s.ring_attempts[0].result == "NOANSWER"
    assert s.ring_s == pytest.approx(5.0)  # first ring -> end of the caller, gaps included
    assert pbx.tracker.stats() == {"calls": 0, "channels": 0}


def test_agent_dialling_out_from_the_phone_is_an_outbound_call() -> None:
    pbx = Pbx()
    pbx.start("PJSIP/101-00000003", "2.1", "from-internal", "89161234567", "101")
    pbx.channel("PJSIP/trunk-00000004", "2.2", "2.1", "from-pstn", "s", "89161234567")
    (started,) = pbx.dial("2.1", "2.2", "PJSIP/trunk-00000004")
    assert isinstance(started, CallStarted)
    assert (started.direction, started.agent_extension, started.did_or_dialled) == (
        "outbound",
        "101",
        "89161234567",
    )
    (answered,) = pbx.dial("2.1", "2.2", "PJSIP/trunk-00000004", "ANSWER")
    assert answered == CallAnswered(linkedid="2.1", at=pbx.t, extension="101")
    pbx.send("HangupRequest", Uniqueid="2.2")
    pbx.hangup("2.2")
    (ended,) = pbx.hangup("2.1")
    assert isinstance(ended, CallEnded)
    s = ended.summary
    assert (s.status, s.answered_by, s.hung_up_by, s.final_agent) == (
        "answered",
        "client",
        "client",
        "101",
    )
    assert s.dialled_number == "89161234567" and s.rang == ("89161234567",)
    assert pbx.tracker.stats() == {"calls": 0, "channels": 0}


def test_agent_to_agent_calls_are_not_crm_calls() -> None:
    pbx = Pbx()
    pbx.start("PJSIP/101-00000005", "3.1", "from-internal", "102", "101")
    pbx.answer("3.1", "3.2", "PJSIP/102-00000006", "from-internal", "102", "101")
    pbx.hangup("3.2")
    pbx.hangup("3.1")
    assert pbx.facts == []
    assert pbx.tracker.stats() == {"calls": 0, "channels": 0}


def test_attended_transfer_moves_the_call_to_the_target() -> None:
    pbx = Pbx()
    pbx.start("PJSIP/trunk-00000007", "4.1", "from-pstn", "84951112233", "+79160000001")
    pbx.answer("4.1", "4.2", "PJSIP/101-00000008", "from-internal", "101", "101")
    # 101 consults 102 on a second line: a call of its own Linkedid, internal, no facts.
    pbx.channel("PJSIP/101-00000009", "4.3", "4.3", "from-internal", "102", "101")
    pbx.channel("PJSIP/102-0000000a", "4.4", "4.3", "from-internal", "102", "101")
    assert pbx.dial("4.3", "4.4", "PJSIP/102-0000000a") == []
    assert pbx.dial("4.3", "4.4", "PJSIP/102-0000000a", "ANSWER") == []
    (moved,) = pbx.send(
        "AttendedTransfer",
        Result="Success",
        OrigTransfererUniqueid="4.2",
        SecondTransfererUniqueid="4.3",
        TransfereeUniqueid="4.1",
        TransferTargetUniqueid="4.4",
        DestType="Bridge",
    )
    assert moved == CallTransferred(
        linkedid="4.1", at=pbx.t, from_extension="101", to_extension="102", kind="attended"
    )
    pbx.hangup("4.2")  # the transferrer leaving is not the end of the call
    pbx.hangup("4.3")
    pbx.t += 10
    pbx.send("HangupRequest", Uniqueid="4.4")
    pbx.hangup("4.4")
    (ended,) = pbx.hangup("4.1")
    assert isinstance(ended, CallEnded)
    s = ended.summary
    assert (s.answered_by, s.final_agent, s.hung_up_by) == ("101", "102", "agent 102")
    assert [leg.extension for leg in s.legs] == ["101", "102"]
    assert s.legs[1].talk_s == pytest.approx(15.0)  # transfer -> end of the caller
    assert [t.kind for t in s.transfers] == ["attended"]
    assert pbx.tracker.stats() == {"calls": 0, "channels": 0}


def test_click_to_call_the_agent_never_answers_is_a_failed_call() -> None:
    pbx = Pbx()
    pbx.channel("PJSIP/101-0000000b", "5.1", "5.1", "from-internal", "101", "")
    pbx.send("VarSet", Uniqueid="5.1", Variable="CRM_DEAL_ID", Value="42")
    pbx.send("DialBegin", DestUniqueid="5.1", DestChannel="PJSIP/101-0000000b")
    pbx.send("DialEnd", DestUniqueid="5.1", DestChannel="PJSIP/101-0000000b", DialStatus="NOANSWER")
    started, ended = pbx.hangup("5.1")
    assert isinstance(started, CallStarted) and isinstance(ended, CallEnded)
    assert (started.direction, started.agent_extension) == ("outbound", "101")
    assert (ended.summary.status, ended.summary.variables) == ("failed", {"CRM_DEAL_ID": "42"})


def test_the_crm_variables_a_call_comes_back_with_are_ids_only_when_they_can_be() -> None:
    # set by anyone with dialplan access: what no row's id can be is logged as no id, not a
    # failed statement that loses the call's log
    for deal, user, expected in (
        ("42", " 7 ", (42, 7)),
        ("99999999999", "2147483648", (None, None)),
        ("0", "-7", (None, None)),
        ("4 2", "x", (None, None)),
    ):
        pbx = Pbx()
        pbx.channel("PJSIP/101-0000000b", "5.1", "5.1", "from-internal", "101", "")
        pbx.send("VarSet", Uniqueid="5.1", Variable="CRM_DEAL_ID", Value=deal)
        pbx.send("VarSet", Uniqueid="5.1", Variable="CRM_USER_ID", Value=user)
        pbx.send("DialBegin", DestUniqueid="5.1", DestChannel="PJSIP/101-0000000b")
        pbx.send(
            "DialEnd", DestUniqueid="5.1", DestChannel="PJSIP/101-0000000b", DialStatus="NOANSWER"
        )
        _, ended = pbx.hangup("5.1")
        assert isinstance(ended, CallEnded)
        record = to_record(ended.summary, client_id=None)
        assert (record.deal_id, record.user_id) == expected, (deal, user)


def test_a_plain_originate_to_a_non_agent_is_nobodys_call() -> None:
    pbx = Pbx()
    pbx.channel("Local/s@caller-sim-00000000;1", "6.1", "6.1", "caller-sim", "s", "")
    pbx.send("DialBegin", DestUniqueid="6.1", DestChannel="Local/s@caller-sim-00000000;1")
    pbx.send(
        "DialEnd",
        DestUniqueid="6.1",
        DestChannel="Local/s@caller-sim-00000000;1",
        DialStatus="ANSWER",
    )
    pbx.hangup("6.1")
    assert pbx.facts == []
    assert pbx.tracker.stats() == {"calls": 0, "channels": 0}


# ------------------------------------------------------------------------------------ config


def test_config_from_settings() -> None:
    settings = TelephonySettings.model_validate(
        {"INBOUND_CONTEXTS": ["from-pstn", "from-sip"], "ORIGINATE_CONTEXT": "c2c"}
    )
    config = TrackerConfig.from_settings(settings)
    assert config.inbound_contexts == frozenset({"from-pstn", "from-sip"})
    assert config.outbound_contexts == frozenset({"c2c"})
    assert config.agent_channel_pattern == settings.agent_channel_pattern
    assert TrackerConfig().agent_channel_pattern == TelephonySettings().agent_channel_pattern


def test_a_pattern_without_ext_group_is_refused() -> None:
    with pytest.raises(ValueError):
        CallTracker(TrackerConfig(agent_channel_pattern=r"^PJSIP/(\d+)-"))
