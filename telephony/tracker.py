"""The call tracker: a pure state machine from AMI events to call facts.

No I/O, no asyncio, no database: the AMI listener feeds it parsed events, crm_core and notifier
consume the facts it returns. That keeps every rule below testable against recorded AMI traffic.

How a call is recognised (see the recordings in asterisk/recordings):
- one logical call is one ``Linkedid``; channels are remembered by ``Uniqueid`` from their
  ``Newchannel`` on, and events are routed through that channel, so events for a channel after
  its ``Hangup`` (late ``NewConnectedLine``, ``VarSet``) find nothing and are ignored;
- inbound: a channel runs its first dialplan step in an inbound context (the main channel);
- outbound: a channel enters the originate context (click-to-call), or an agent's channel dials
  something that is not an agent;
- an agent is recognised from a channel name by the configured pattern, computed once per
  channel; a Local channel's ``;1``/``;2`` halves are the same device (``channel_base``);
- a call ends with the ``Hangup`` of its main channel; its state is dropped once every channel
  of the Linkedid is gone, so memory does not grow with the number of finished calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from telephony.ami_fields import (
    agent_extension,
    channel_base,
    compile_agent_pattern,
    duration_seconds,
    event_time,
    known,
    ring_time_seconds,
    uniqueid_key,
)
from telephony.facts import (
    AgentRingEnded,
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallQueueChanged,
    CallSnapshot,
    CallStarted,
    CallState,
    CallSummary,
    CallTransferred,
    Direction,
    Fact,
    Leg,
    RingAttempt,
    Status,
    Transfer,
    TransferKind,
    Via,
)
from telephony.settings import TelephonySettings

logger = logging.getLogger(__name__)

_SNAPSHOT_VERSION = 1
# Outbound dial results that mean the call never reached the client's phone at all.
_UNREACHABLE = frozenset({"CHANUNAVAIL", "CONGESTION", "INVALIDARGS"})
# A hangup mark that is not a channel: the dialplan (or Asterisk itself) ended the call.
_PBX_MARK = "pbx"
# AST_SOFTHANGUP_SHUTDOWN (include/asterisk/channel.h): the SoftHangupRequest of `core stop`.
_SOFTHANGUP_SHUTDOWN = 1 << 2

Handler = Callable[[Mapping[str, str], float], list[Fact]]


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    inbound_contexts: frozenset[str] = frozenset({"from-pstn"})
    # Contexts where click-to-call originates put the agent's channel after it answers.
    outbound_contexts: frozenset[str] = frozenset({"crm-outbound"})
    agent_channel_pattern: str = TelephonySettings.model_fields["agent_channel_pattern"].default
    # Channel variables copied into the call (set by click-to-call originates).
    call_variables: frozenset[str] = frozenset({"CRM_DEAL_ID", "CRM_USER_ID"})
    # Channel variables naming the recording file, in order of preference.
    recording_variables: tuple[str, ...] = ("CRM_RECORDING", "MIXMONITOR_FILENAME")

    @classmethod
    def from_settings(cls, settings: TelephonySettings) -> TrackerConfig:
        return cls(
            inbound_contexts=frozenset(settings.inbound_contexts),
            outbound_contexts=frozenset({settings.originate_context}),
            agent_channel_pattern=settings.agent_channel_pattern,
            recording_variables=tuple(settings.recording_variables),
        )


@dataclass(slots=True)
class _Channel:
    uniqueid: str
    name: str
    base: str
    linkedid: str
    agent: str | None
    t_created: float
    context: str = ""
    exten: str = ""
    app: str = ""
    cid_num: str = ""
    cid_name: str = ""
    bridge: str = ""
    queue: str = ""  # known from CoreShowChannel only: the queue its Queue() application serves


@dataclass(slots=True)
class _Attempt:
    dest_uniqueid: str
    dest_base: str
    extension: str
    via: Via
    context: str
    to_agent: bool
    t_begin: float
    result: str | None = None
    t_end: float | None = None
    # Dialled by a party of the call other than the main channel while the call was up: an
    # agent consulting a colleague before an attended transfer (AMI Atxfer keeps the Linkedid).
    consult: bool = False


@dataclass(slots=True)
class _Call:
    linkedid: str
    channels: set[str] = field(default_factory=set)
    started: bool = False
    ended: bool = False
    direction: Direction = "inbound"
    main_uid: str = ""
    main_base: str = ""
    caller_number: str | None = None
    caller_name: str | None = None
    did_or_dialled: str = ""
    agent_extension: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    t_start: float = 0.0
    t_answer: float | None = None
    t_first_ring: float | None = None
    attempts: list[_Attempt] = field(default_factory=list)
    answered_by: str | None = None
    # The agent who owns the current stretch of talk, since leg_start; legs are cut by transfers.
    leg_owner: str | None = None
    leg_start: float | None = None
    # The device talking with the main channel and how to name it if it hangs up first.
    talking_base: str | None = None
    talking_party: str | None = None
    legs: list[Leg] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    hung_up_by: str | None = None
    # Channel bases (or _PBX_MARK) in the order they asked to hang up. Who ended the call is
    # decided at its end: a transferring agent's hangup can come before the transfer event.
    hangups: list[str] = field(default_factory=list)
    # The Timestamp of the last event seen for this call: its end when Asterisk never shows it.
    t_last: float | None = None
    # Hold: the sources holding right now ("hold:<uid>", "moh:<uid>"), since when, and the total.
    holds: list[str] = field(default_factory=list)
    hold_since: float | None = None
    hold_s: float = 0.0
    agent_leg_begin: float | None = None
    agent_leg_ring_s: float | None = None
    # The Asterisk queue the caller waits in (QueueCallerJoin .. QueueCallerLeave), and since when.
    queue: str | None = None
    t_queued: float | None = None
    # The recording file as Asterisk named it, which variable named it (its rank in the
    # configured list: a better-ranked one replaces it) and whether MixMonitorStart was seen.
    recording: str | None = None
    recording_rank: int = 0
    recording_started: bool = False


class CallTracker:
    def __init__(self, config: TrackerConfig) -> None:
        self._config = config
        self._inbound = config.inbound_contexts
        self._outbound = config.outbound_contexts
        self._variables = config.call_variables
        self._recording_rank = {v: i for i, v in enumerate(config.recording_variables)}
        self._pattern: re.Pattern[str] = compile_agent_pattern(config.agent_channel_pattern)
        self._channels: dict[str, _Channel] = {}
        self._calls: dict[str, _Call] = {}
        # Linkedids listed by CoreShowChannel events since the last CoreShowChannelsComplete.
        self._listed: set[str] = set()
        # The one place that lists every AMI event the tracker uses (as wazo-calld's bus.py).
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_newchannel,
            "Newexten": self._on_newexten,
            "NewCallerid": self._on_new_callerid,
            "Rename": self._on_rename,
            "VarSet": self._on_var_set,
            "MixMonitorStart": self._on_mixmonitor_start,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "AgentCalled": self._on_agent_called,
            "AgentRingNoAnswer": self._on_agent_ring_no_answer,
            "AgentConnect": self._on_agent_connect,
            "QueueCallerJoin": self._on_queue_caller_join,
            "QueueCallerLeave": self._on_queue_caller_leave,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "SoftHangupRequest": self._on_soft_hangup_request,
            "HangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
            "Hold": self._on_hold_start,
            "MusicOnHoldStart": self._on_hold_start,
            "Unhold": self._on_hold_stop,
            "MusicOnHoldStop": self._on_hold_stop,
            "CoreShowChannel": self._on_core_show_channel,
            "CoreShowChannelsComplete": self._on_core_show_channels_complete,
            "Shutdown": self._on_shutdown,
        }

    # ----------------------------------------------------------------------------- public API

    def feed(self, event: Mapping[str, str], arrival: float) -> list[Fact]:
        """Apply one AMI event; return the facts it produced. Never raises."""
        try:
            name = event.get("Event")
            handler = self._handlers.get(name) if name else None
            t = event_time(event, arrival)
            self._seen(event, t)
            if handler is None:
                return []
            return self._with_snapshots(handler(event, t))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            # A partial or garbled message: skip it, the calls around it stay intact because
            # handlers read every field they need before changing any state.
            logger.warning("skipping malformed AMI event %r: %r", _event_name(event), exc)
        except Exception:
            # A bug of ours must not stop the listener; log it loudly and carry on.
            logger.exception("tracker failed on AMI event %r", _event_name(event))
        return []

    def active_calls(self) -> list[CallSnapshot]:
        calls = [c for c in self._calls.values() if c.started and not c.ended]
        calls.sort(key=lambda c: uniqueid_key(c.linkedid))
        return [self._call_snapshot(c) for c in calls]

    def call_snapshot(self, linkedid: str) -> CallSnapshot | None:
        """One call in progress (None if unknown, not yet recognised, or ended): O(1)."""
        call = self._calls.get(linkedid)
        if call is None or not call.started or call.ended:
            return None
        return self._call_snapshot(call)

    def stats(self) -> dict[str, int]:
        """How much the tracker holds: calls (including ones not yet recognised) and channels."""
        return {"calls": len(self._calls), "channels": len(self._channels)}

    def snapshot(self, linkedid: str) -> dict[str, Any]:
        """JSON-able state of one tracked call (KeyError if the Linkedid is unknown)."""
        call = self._calls[linkedid]
        state = _plain(call)
        state["channels"] = sorted(call.channels, key=uniqueid_key)
        return {
            "version": _SNAPSHOT_VERSION,
            "call": state,
            "channels": [_plain(self._channels[uid]) for uid in state["channels"]],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Put back a call saved by ``snapshot`` (e.g. after a service restart)."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unsupported call snapshot version {state.get('version')!r}")
        raw = dict(state["call"])
        raw["channels"] = set(raw["channels"])
        raw["attempts"] = [_Attempt(**a) for a in raw["attempts"]]
        raw["legs"] = [Leg(**leg) for leg in raw["legs"]]
        raw["transfers"] = [Transfer(**t) for t in raw["transfers"]]
        call = _Call(**raw)
        for chan_state in state["channels"]:
            chan = _Channel(**chan_state)
            self._channels[chan.uniqueid] = chan
        self._calls[call.linkedid] = call

    def reconcile(self, live_linkedids: set[str], now: float) -> list[Fact]:
        """Align with Asterisk after an AMI reconnect.

        Calls we track that Asterisk no longer has ended while we were away: they are closed
        (once), at the last event we saw for them (``now`` if we never saw one), and marked as
        inferred: ``now`` would count our own downtime as talk. Calls Asterisk has that we
        never saw started are taken up from the ``CoreShowChannel`` events fed just before.
        """
        facts: list[Fact] = []
        for linkedid in [lid for lid in self._calls if lid not in live_linkedids]:
            call = self._calls.pop(linkedid)
            for uid in call.channels:
                self._channels.pop(uid, None)
            if call.started and not call.ended:
                end = call.t_last if call.t_last is not None else now
                facts += self._end(call, max(end, call.t_start), cause=None, inferred=True)
        self._listed.clear()  # the listener's snapshot comes here, not with a Complete event
        for linkedid in live_linkedids:
            self._seen({"Linkedid": linkedid}, now)  # Asterisk shows it up right now
        facts += self._adopt_unknown(live_linkedids)
        return self._with_snapshots(facts)

    def _with_snapshots(self, facts: list[Fact]) -> list[Fact]:
        """Each fact with the call as it stands now, the moment the fact happened."""
        if not facts:
            return facts
        snaps: dict[str, CallSnapshot | None] = {}
        out: list[Fact] = []
        for fact in facts:
            if isinstance(fact, CallEnded):
                out.append(fact)
                continue
            if fact.linkedid not in snaps:
                snaps[fact.linkedid] = self.call_snapshot(fact.linkedid)
            out.append(replace(fact, call=snaps[fact.linkedid]))
        return out

    def _adopt_unknown(self, linkedids: Iterable[str]) -> list[Fact]:
        facts: list[Fact] = []
        for linkedid in sorted(linkedids, key=uniqueid_key):
            unknown = self._calls.get(linkedid)
            if unknown is not None and not unknown.started:
                facts += self._adopt(unknown)
        return facts

    def _seen(self, event: Mapping[str, str], t: float) -> None:
        # Every event of a call (most carry its Linkedid) proves the call was up at t.
        call = self._calls.get(event.get("Linkedid", ""))
        if call is not None and not call.ended and (call.t_last is None or t > call.t_last):
            call.t_last = t

    # ------------------------------------------------------------------------ channel events

    def _on_newchannel(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        uid, linkedid, name = ev["Uniqueid"], ev["Linkedid"], ev["Channel"]
        if uid not in self._channels:
            self._add_channel(ev, uid, linkedid, name, t)
        return []

    def _on_core_show_channels_complete(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # The end of a CoreShowChannels answer fed as events (a recording of a service that
        # connected mid-call): take up the calls it showed. The listener's path does the same
        # through reconcile(), which also ends the calls the answer no longer lists.
        del ev, t
        listed, self._listed = self._listed, set()
        return self._adopt_unknown(listed)

    def _on_core_show_channel(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # Answers to CoreShowChannels after a reconnect: remember channels we missed so that
        # reconcile() can take their calls up.
        uid, linkedid, name = ev["Uniqueid"], ev["Linkedid"], ev["Channel"]
        self._listed.add(linkedid)
        chan = self._channels.get(uid)
        if chan is None:
            created = t - duration_seconds(ev.get("Duration", ""))
            chan = self._add_channel(ev, uid, linkedid, name, created)
            chan.app = ev.get("Application", "")
            if chan.app == "Queue":  # ApplicationData: "sales,,,,30"
                chan.queue = ev.get("ApplicationData", "").split(",", 1)[0]
        chan.bridge = ev.get("BridgeId", "")
        return []

    def _add_channel(
        self, ev: Mapping[str, str], uid: str, linkedid: str, name: str, t: float
    ) -> _Channel:
        chan = _Channel(
            uniqueid=uid,
            name=name,
            base=channel_base(name),
            linkedid=linkedid,
            agent=agent_extension(name, self._pattern),
            t_created=t,
            context=ev.get("Context", ""),
            exten=ev.get("Exten", ""),
            cid_num=ev.get("CallerIDNum", ""),
            cid_name=ev.get("CallerIDName", ""),
        )
        self._channels[uid] = chan
        call = self._calls.get(linkedid)
        if call is None:
            call = self._calls[linkedid] = _Call(linkedid=linkedid)
        call.channels.add(uid)
        return chan

    def _on_rename(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        chan = self._channels.get(ev["Uniqueid"])
        if chan is not None:
            chan.name = ev["Newname"]
            chan.base = channel_base(chan.name)
        return []

    def _on_newexten(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        found = self._live(ev["Uniqueid"])
        if found is None:
            return []
        chan, call = found
        chan.context = context = ev.get("Context", "")
        chan.exten = ev.get("Exten", "")
        chan.app = app = ev.get("Application", "")
        if not call.started:
            if context in self._inbound:
                return self._start(call, chan, "inbound", t)
            if context in self._outbound:
                return self._start(call, chan, "outbound", t)
            return []
        if app == "Hangup" and chan.uniqueid == call.main_uid:
            # The dialplan itself hangs up the main channel (Dial or Queue gave up).
            _mark_hangup(call, _PBX_MARK)
        return []

    def _on_new_callerid(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        found = self._live(ev["Uniqueid"])
        if found is None:
            return []
        chan, call = found
        chan.cid_num = ev.get("CallerIDNum", chan.cid_num)
        chan.cid_name = ev.get("CallerIDName", chan.cid_name)
        if call.started and chan.uniqueid == call.main_uid:
            # Trunks may set the caller ID after the channel is up: the later value is the
            # one the caller sent; Dial events are no source (DestCallerIDNum varies by leg).
            call.caller_number = known(chan.cid_num) or call.caller_number
            call.caller_name = known(chan.cid_name) or call.caller_name
        return []

    def _on_var_set(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        variable = ev.get("Variable", "")
        rank = self._recording_rank.get(variable)
        if variable not in self._variables and rank is None:  # the most frequent event
            return []
        found = self._live(ev["Uniqueid"])
        if found is None:
            return []
        call, value = found[1], ev.get("Value", "")
        if rank is None:
            call.variables[variable] = value
        elif value and (call.recording is None or rank < call.recording_rank):
            call.recording, call.recording_rank = value, rank
        return []

    def _on_mixmonitor_start(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # Asterisk 22 names no file here: the file comes from the VarSet before or after it.
        found = self._live(ev["Uniqueid"])
        if found is not None:
            found[1].recording_started = True
        return []

    # --------------------------------------------------------------------------- dial events

    def _on_dial_begin(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        dest_uid, dest_name = ev["DestUniqueid"], ev["DestChannel"]
        if not ev.get("Channel"):
            return self._originate_leg_begin(dest_uid, t)
        found = self._live(ev["Uniqueid"])
        if found is None:
            return []
        chan, call = found
        dest_agent = self._agent_of(dest_uid, dest_name)
        facts: list[Fact] = []
        if not call.started:
            if chan.agent is None or dest_agent is not None:
                return []  # not a call of ours, or an internal agent-to-agent call
            facts = self._start(call, chan, "outbound", t)  # an agent dialled out by hand
        elif self._is_inner_leg(call, chan):
            return []
        if dest_agent is not None:
            facts += self._ring(call, chan, dest_uid, dest_name, dest_agent, self._via(chan), t)
            if call.t_answer is not None and chan.base != call.main_base:
                # Not the caller's channel dialling: an agent consulting a colleague (AMI
                # Atxfer runs the consult call on the transferer's Linkedid).
                call.attempts[-1].consult = True
        elif call.direction == "outbound" and chan.uniqueid == call.main_uid:
            self._ring_client(call, chan, dest_uid, dest_name, ev.get("DestExten", ""), t)
        return facts

    def _on_agent_called(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # Queues announce the member before DialBegin; the attempt is created here as "queue".
        dest_uid, dest_name = ev["DestUniqueid"], ev["DestChannel"]
        found = self._live(ev["Uniqueid"])
        if found is None or not found[1].started:
            return []
        chan, call = found
        ext = self._agent_of(dest_uid, dest_name)
        if ext is None:
            return []
        return self._ring(call, chan, dest_uid, dest_name, ext, "queue", t)

    def _on_dial_end(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        dest_uid, status = ev["DestUniqueid"], ev["DialStatus"]
        if not ev.get("Channel"):
            return self._originate_leg_end(dest_uid, status, t)
        found = self._live(ev["Uniqueid"])
        if found is None or not found[1].started:
            return []
        call = found[1]
        attempt = _find_attempt(call, dest_uid)
        # Queue attempts send two DialEnds (NOANSWER, then CANCEL): the first one is the truth.
        if attempt is None or attempt.result is not None:
            return []
        attempt.result, attempt.t_end = status, t
        if status == "ANSWER" and attempt.consult:
            # The colleague talks with the agent, not yet with the caller: the leg is unchanged
            # until the AttendedTransfer.
            return [CallAnswered(linkedid=call.linkedid, at=t, extension=attempt.extension)]
        if status == "ANSWER":
            return self._answer(call, attempt, t)
        return _ring_ended(call, attempt, t)

    def _on_queue_caller_join(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        queue = ev["Queue"]
        found = self._live(ev["Uniqueid"])
        if found is None or not found[1].started:
            return []
        call = found[1]
        call.queue, call.t_queued = queue, t
        return [CallQueueChanged(linkedid=call.linkedid, at=t, queue=queue)]

    def _on_queue_caller_leave(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # Sent however the caller left: answered, abandoned (after QueueCallerAbandon), timeout.
        found = self._live(ev["Uniqueid"])
        if found is None or found[1].queue is None:
            return []
        call = found[1]
        call.queue = call.t_queued = None
        return [CallQueueChanged(linkedid=call.linkedid, at=t, queue=None)]

    def _on_agent_ring_no_answer(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        ring_s = ring_time_seconds(ev["RingTime"])  # milliseconds, unlike AgentConnect
        found = self._live(ev["Uniqueid"])
        if found is None:
            return []
        attempt = _find_attempt(found[1], ev["DestUniqueid"])
        if attempt is not None and attempt.result is None:
            attempt.result, attempt.t_end = "NOANSWER", attempt.t_begin + ring_s
            return _ring_ended(found[1], attempt, t)
        return []

    def _on_agent_connect(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # Normally DialEnd ANSWER came first; this covers an eventfilter that drops Dial events.
        found = self._live(ev["Uniqueid"])
        if found is None or not found[1].started:
            return []
        call = found[1]
        attempt = _find_attempt(call, ev["DestUniqueid"])
        if attempt is None or attempt.result is not None:
            return []
        attempt.result, attempt.t_end = "ANSWER", t
        return self._answer(call, attempt, t)

    def _originate_leg_begin(self, dest_uid: str, t: float) -> list[Fact]:
        # An Originate rings its first leg with no calling channel. If that leg is an agent's
        # phone it is a click-to-call; otherwise (the simulated caller in the recordings) it is
        # nobody's call and creates neither a call nor an agent.
        dest = self._channels.get(dest_uid)
        if dest is None or dest.agent is None:
            return []
        call = self._calls.get(dest.linkedid)
        if call is not None and not call.started and call.agent_leg_begin is None:
            call.agent_leg_begin, call.agent_extension = t, dest.agent
        return []

    def _originate_leg_end(self, dest_uid: str, status: str, t: float) -> list[Fact]:
        dest = self._channels.get(dest_uid)
        call = self._calls.get(dest.linkedid) if dest is not None else None
        if call is not None and call.agent_leg_begin is not None and status == "ANSWER":
            call.agent_leg_ring_s = t - call.agent_leg_begin
        return []

    # ----------------------------------------------------------------------- transfer events

    def _on_blind_transfer(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        target = ev["Extension"]
        if ev.get("Result", "Success") != "Success":
            return []
        call = self._started_call(ev.get("TransfereeUniqueid"), ev.get("TransfererUniqueid"))
        if call is None:
            return []
        transferer = self._channels.get(ev.get("TransfererUniqueid", ""))
        from_ext = transferer.agent if transferer is not None else call.leg_owner
        # Until someone answers at the target, nobody owns the talk and no device is "talking".
        return self._transfer(call, "blind", from_ext, target, t, None)

    def _on_attended_transfer(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        if ev["Result"] != "Success":
            return []
        call = self._started_call(ev.get("TransfereeUniqueid"), ev.get("OrigTransfererUniqueid"))
        if call is None:
            return []
        transferer = self._channels.get(ev.get("OrigTransfererUniqueid", ""))
        from_ext = transferer.agent if transferer is not None else call.leg_owner
        # The colleague who answered the consult call, when it ran on this call: the target
        # Asterisk names may be the Local channel that dialled them (Local/102@transfer-internal),
        # which Asterisk optimizes away and hangs up right after the transfer.
        target = self._consulted(call) or self._channels.get(ev.get("TransferTargetUniqueid", ""))
        to_ext = (target.agent if target is not None else None) or (
            known(ev.get("TransferTargetCallerIDNum"))
            or known(ev.get("SecondTransfererConnectedLineNum"))
            or ""
        )
        if target is not None:
            # The target talked to the agent in a consultation call with its own Linkedid; it
            # now talks to our caller, so its hangup must count for this call.
            self._move_device(target, call)
        return self._transfer(call, "attended", from_ext, to_ext, t, target)

    def _transfer(
        self,
        call: _Call,
        kind: TransferKind,
        from_ext: str | None,
        to_ext: str,
        t: float,
        target: _Channel | None,
    ) -> list[Fact]:
        self._close_leg(call, t)
        call.transfers.append(
            Transfer(
                kind=kind, from_extension=from_ext, to_extension=to_ext, at_s=t - call.t_start, at=t
            )
        )
        call.leg_start = t
        call.leg_owner = target.agent if target is not None else None
        call.talking_base = target.base if target is not None else None
        call.talking_party = _agent_label(call.leg_owner) if target is not None else None
        return [
            CallTransferred(
                linkedid=call.linkedid,
                at=t,
                from_extension=from_ext,
                to_extension=to_ext,
                kind=kind,
            )
        ]

    def _consulted(self, call: _Call) -> _Channel | None:
        # DestType Bridge (AMI Atxfer): the event names no target; it is the colleague who
        # answered the consult call.
        for attempt in reversed(call.attempts):
            if attempt.consult and attempt.result == "ANSWER":
                return self._channels.get(attempt.dest_uniqueid)
        return None

    def _move_device(self, chan: _Channel, call: _Call) -> None:
        old = self._calls.get(chan.linkedid)
        if old is None or old is call:
            return
        for uid in [u for u in old.channels if self._channels[u].base == chan.base]:
            old.channels.discard(uid)
            call.channels.add(uid)
            self._channels[uid].linkedid = call.linkedid
        if not old.channels:
            del self._calls[old.linkedid]

    # ------------------------------------------------------------------------ hangup events

    def _on_soft_hangup_request(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # A SoftHangupRequest's Cause is Asterisk's soft-hangup flags, not a Q.850 cause: the
        # shutdown flag means `core stop` hangs up every channel, whichever comes first.
        found = self._live(ev["Uniqueid"])
        if found is not None and found[1].started and _soft_flags(ev) & _SOFTHANGUP_SHUTDOWN:
            _mark_hangup(found[1], _PBX_MARK)
        return self._on_hangup_request(ev, t)

    def _on_shutdown(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        # Asterisk stops and closes the connection: a call whose end we have not seen ends
        # at its last event, by the PBX (usually every Hangup came before this).
        facts: list[Fact] = []
        for call in [c for c in self._calls.values() if c.started and not c.ended]:
            _mark_hangup(call, _PBX_MARK)
            end = call.t_last if call.t_last is not None else t
            facts += self._end(call, end, cause=None, inferred=True)
        return facts

    def _on_hangup_request(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        found = self._live(ev["Uniqueid"])
        if found is not None and found[1].started:
            self._note_hangup(found[1], found[0])
        return []

    def _on_hangup(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        chan = self._channels.pop(ev["Uniqueid"], None)
        if chan is None:
            return []
        call = self._calls.get(chan.linkedid)
        if call is None:
            return []
        call.channels.discard(chan.uniqueid)
        facts: list[Fact] = []
        if call.started and not call.ended:
            self._note_hangup(call, chan)
            self._drop_holds(call, chan, t)
            if chan.uniqueid == call.main_uid:
                facts = self._end(call, t, cause=ev.get("Cause-txt"))
        elif not call.started and not call.channels:
            facts = self._failed_click_to_call(call, t)
        if not call.channels:
            # Nothing of this Linkedid is left in Asterisk: forget it.
            del self._calls[call.linkedid]
        return facts

    def _note_hangup(self, call: _Call, chan: _Channel) -> None:
        # Only remembered here: whether this party was still in the conversation is known at
        # the end (an agent who transfers hangs up, sometimes before BlindTransfer arrives, and
        # always before AttendedTransfer when hanging up completes the transfer).
        _mark_hangup(call, chan.base)

    def _who_hung_up(self, call: _Call) -> str | None:
        """The first hangup by a party still talking with the caller at the end: the caller's
        own channel, the party that talked last (an agent, or the client), or the PBX. Ring
        attempts that ended and agents who left by transferring are not such a party."""
        for mark in call.hangups:
            if mark == _PBX_MARK:
                return "pbx"
            if mark == call.main_base:
                inbound = call.direction == "inbound"
                return "caller" if inbound else _agent_label(call.agent_extension)
            if call.talking_base is not None and mark == call.talking_base:
                return call.talking_party
        return call.hung_up_by

    # -------------------------------------------------------------------------- hold events

    def _drop_holds(self, call: _Call, chan: _Channel, t: float) -> None:
        # A transferer on hold while consulting hangs up with no Unhold: its hold ends there.
        keys = {f"hold:{chan.uniqueid}", f"moh:{chan.uniqueid}"}
        if keys.intersection(call.holds):
            call.holds[:] = [k for k in call.holds if k not in keys]
            if not call.holds:
                _close_hold(call, t)

    def _on_hold_start(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        found = self._live(ev["Uniqueid"])
        if found is None or not found[1].started:
            return []
        call = found[1]
        # Music while waiting in a queue or ringing a transfer target is no hold: only a call
        # whose talk someone owns can be put on hold.
        if call.leg_owner is None:
            return []
        key = _hold_key(ev)
        if key not in call.holds:
            # A phone's hold key gives Hold on the agent and music to the caller at once: the
            # time counts once while any source holds.
            if not call.holds:
                call.hold_since = t
            call.holds.append(key)
        return []

    def _on_hold_stop(self, ev: Mapping[str, str], t: float) -> list[Fact]:
        found = self._live(ev["Uniqueid"])
        if found is None:
            return []
        call = found[1]
        key = _hold_key(ev)
        # A blind transfer sends Unhold with no Hold before it: nothing to close then.
        if key in call.holds:
            call.holds.remove(key)
            if not call.holds:
                _close_hold(call, t)
        return []

    # ------------------------------------------------------------------------------ helpers

    def _live(self, uniqueid: str) -> tuple[_Channel, _Call] | None:
        chan = self._channels.get(uniqueid)
        if chan is None:
            return None
        call = self._calls.get(chan.linkedid)
        if call is None or call.ended:
            return None
        return chan, call

    def _started_call(self, *uniqueids: str | None) -> _Call | None:
        for uid in uniqueids:
            found = self._live(uid) if uid else None
            if found is not None and found[1].started:
                return found[1]
        return None

    def _agent_of(self, uniqueid: str, name: str) -> str | None:
        chan = self._channels.get(uniqueid)
        if chan is not None:
            return chan.agent
        return agent_extension(name, self._pattern)

    def _via(self, chan: _Channel) -> Via:
        return "queue" if chan.app == "Queue" else "dial"

    def _is_inner_leg(self, call: _Call, chan: _Channel) -> bool:
        # A Local channel's ;2 half (or a phone being rung) dialling the real device, e.g.
        # Local/101@agent-phones;2 -> PJSIP/101: the same ring attempt seen again, not a new one.
        if chan.uniqueid == call.main_uid:
            return False
        return chan.base == call.main_base or any(a.dest_base == chan.base for a in call.attempts)

    def _start(
        self, call: _Call, chan: _Channel, direction: Direction, t: float, did: str | None = None
    ) -> list[Fact]:
        call.started = True
        call.direction = direction
        call.main_uid, call.main_base = chan.uniqueid, chan.base
        call.t_start = t
        call.caller_number = known(chan.cid_num)
        call.caller_name = known(chan.cid_name)
        call.did_or_dialled = chan.exten if did is None else did
        if direction == "outbound":
            call.agent_extension = chan.agent or call.agent_extension
        return [
            CallStarted(
                linkedid=call.linkedid,
                at=t,
                direction=direction,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                did_or_dialled=call.did_or_dialled,
                agent_extension=call.agent_extension,
                variables=dict(call.variables),
            )
        ]

    def _ring(
        self,
        call: _Call,
        chan: _Channel,
        dest_uid: str,
        dest_name: str,
        ext: str,
        via: Via,
        t: float,
    ) -> list[Fact]:
        if _find_attempt(call, dest_uid) is not None:
            return []  # AgentCalled already opened this attempt
        dest = self._channels.get(dest_uid)
        base = dest.base if dest is not None else channel_base(dest_name)
        call.attempts.append(_Attempt(dest_uid, base, ext, via, chan.context, True, t))
        if call.direction == "inbound" and call.t_first_ring is None:
            call.t_first_ring = t
        return [AgentRinging(linkedid=call.linkedid, at=t, extension=ext, via=via)]

    def _ring_client(
        self, call: _Call, chan: _Channel, dest_uid: str, dest_name: str, dest_exten: str, t: float
    ) -> None:
        if _find_attempt(call, dest_uid) is not None:
            return
        number = call.did_or_dialled or dest_exten
        base = channel_base(dest_name)
        call.attempts.append(_Attempt(dest_uid, base, number, "dial", chan.context, False, t))
        if call.t_first_ring is None:
            call.t_first_ring = t

    def _answer(self, call: _Call, attempt: _Attempt, t: float) -> list[Fact]:
        # Outbound: the client answering means the agent who placed the call starts talking.
        ext = attempt.extension if attempt.to_agent else call.agent_extension
        if call.t_answer is None:
            call.t_answer = t
            call.answered_by = attempt.extension if attempt.to_agent else "client"
            call.leg_start = t
        # After a transfer the leg started at the transfer; whoever answers now owns it.
        call.leg_owner = ext
        call.talking_base = attempt.dest_base
        call.talking_party = _agent_label(ext) if attempt.to_agent else "client"
        return [CallAnswered(linkedid=call.linkedid, at=t, extension=ext)]

    def _close_leg(self, call: _Call, t: float) -> None:
        if call.leg_owner is not None and call.leg_start is not None:
            call.legs.append(Leg(extension=call.leg_owner, talk_s=t - call.leg_start))
        call.leg_owner = call.leg_start = None

    def _end(
        self, call: _Call, t: float, cause: str | None, *, inferred: bool = False
    ) -> list[Fact]:
        call.ended = True
        call.hung_up_by = self._who_hung_up(call)
        self._close_leg(call, t)
        if call.holds:
            call.holds.clear()
            _close_hold(call, t)
        attempts = tuple(_finish_attempt(a, t) for a in call.attempts)
        inbound = call.direction == "inbound"
        answered = call.t_answer is not None
        until = call.t_answer if call.t_answer is not None else t
        summary = CallSummary(
            linkedid=call.linkedid,
            direction=call.direction,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            did=call.did_or_dialled if inbound else None,
            dialled_number=None if inbound else call.did_or_dialled,
            agent_extension=call.agent_extension,
            rang=tuple(a.extension for a in attempts),
            agents_rung=tuple(a.extension for a in attempts if a.to_agent),
            ring_attempts=attempts,
            answered_by=call.answered_by,
            final_agent=call.legs[-1].extension if call.legs else None,
            legs=tuple(call.legs),
            transfers=tuple(call.transfers),
            status=_status(call, attempts),
            missed=inbound and not answered,
            ring_s=until - call.t_first_ring if call.t_first_ring is not None else 0.0,
            wait_s=until - call.t_start if inbound else None,
            talk_s=t - call.t_answer if call.t_answer is not None else 0.0,
            hung_up_by=call.hung_up_by,
            hangup_cause=cause,
            t_start=call.t_start,
            t_answer=call.t_answer,
            t_end=t,
            variables=dict(call.variables),
            agent_leg_ring_s=call.agent_leg_ring_s,
            recording=call.recording,
            recording_started=call.recording_started,
            hold_s=call.hold_s,
            end_inferred=inferred,
        )
        return [CallEnded(linkedid=call.linkedid, at=t, summary=summary)]

    def _failed_click_to_call(self, call: _Call, t: float) -> list[Fact]:
        # A click-to-call whose agent never picked up never reaches the originate context, yet
        # the CRM should see the attempt on the deal: report it as a failed outbound call.
        if call.agent_leg_begin is None or not call.variables:
            return []
        call.started, call.direction, call.t_start = True, "outbound", call.agent_leg_begin
        call.hung_up_by = "pbx"
        started = CallStarted(
            linkedid=call.linkedid,
            at=call.agent_leg_begin,
            direction="outbound",
            caller_number=None,
            caller_name=None,
            did_or_dialled="",
            agent_extension=call.agent_extension,
            variables=dict(call.variables),
        )
        return [started, *self._end(call, t, cause=None)]

    def _adopt(self, call: _Call) -> list[Fact]:
        """Take up a call found by CoreShowChannels that started while we were not listening."""
        chans = sorted(
            (self._channels[u] for u in call.channels), key=lambda c: uniqueid_key(c.uniqueid)
        )
        found = self._adopted_main(call, chans)
        if found is None:
            return []
        main, direction, did = found
        facts = self._start(call, main, direction, main.t_created, did=did)
        for chan in chans:
            if chan.base == main.base or any(a.dest_base == chan.base for a in call.attempts):
                continue
            if chan.agent is not None:
                facts += self._ring(
                    call, main, chan.uniqueid, chan.name, chan.agent, "dial", chan.t_created
                )
            elif direction == "outbound":
                self._ring_client(call, main, chan.uniqueid, chan.name, chan.exten, chan.t_created)
            else:
                continue
            if main.bridge and chan.bridge == main.bridge:
                attempt = call.attempts[-1]
                attempt.result, attempt.t_end = "ANSWER", chan.t_created
                facts += self._answer(call, attempt, chan.t_created)
        if main.queue and call.leg_owner is None:
            # still waiting in a queue; since when, Asterisk does not say here
            call.queue = main.queue
            facts.append(
                CallQueueChanged(linkedid=call.linkedid, at=call.t_start, queue=call.queue)
            )
        return facts

    def _adopted_main(
        self, call: _Call, chans: list[_Channel]
    ) -> tuple[_Channel, Direction, str] | None:
        """The main channel of a call found running, its direction and DID (or number)."""
        for chan in chans:
            if chan.context in self._inbound:
                return chan, "inbound", chan.exten
        for chan in chans:
            if chan.context in self._outbound:
                return chan, "outbound", chan.exten
        # After a transfer the caller's channel runs in the transfer context (transfer-internal
        # dialling 102): the call's first channel, whose Uniqueid is its Linkedid, is still the
        # caller (the trunk inbound, the agent's phone outbound). Its dialled digits are gone.
        first = self._channels.get(call.linkedid)
        if first is None:
            return None
        if first.agent is None:
            return first, "inbound", ""
        if all(c.agent is not None for c in chans):
            return None  # agents calling each other: not a call of ours
        return first, "outbound", ""

    def _call_snapshot(self, call: _Call) -> CallSnapshot:
        ringing = tuple(a.extension for a in call.attempts if a.to_agent and a.result is None)
        state: CallState = "talking" if call.leg_owner else "ringing" if ringing else "waiting"
        return CallSnapshot(
            linkedid=call.linkedid,
            direction=call.direction,
            state=state,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            did_or_dialled=call.did_or_dialled,
            agent_extension=call.agent_extension,
            ringing_extensions=ringing,
            talking_extension=call.leg_owner,
            t_start=call.t_start,
            t_answer=call.t_answer,
            variables=dict(call.variables),
            queue=call.queue,
            t_queued=call.t_queued,
            recording=call.recording,
        )


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(record: Any) -> dict[str, Any]:
    """`dataclasses.asdict` for the tracker's records, at a fraction of its CPU (it is taken for
    nearly every fact of every call): their fields hold scalars, or lists, sets and dicts of
    scalars or of records, each copied one level down, as asdict's deep copy would."""
    kind = type(record)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(record))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(record, name)
        if isinstance(value, list | tuple):
            value = type(value)(_plain(v) if is_dataclass(v) else v for v in value)
        elif isinstance(value, dict | set):
            value = value.copy()
        out[name] = value
    return out


def _ring_ended(call: _Call, attempt: _Attempt, t: float) -> list[Fact]:
    """The agent's phone is free again (the call goes on elsewhere, or ends)."""
    if not attempt.to_agent or not call.started:
        return []
    return [
        AgentRingEnded(
            linkedid=call.linkedid, at=t, extension=attempt.extension, result=attempt.result or ""
        )
    ]


def _find_attempt(call: _Call, dest_uid: str) -> _Attempt | None:
    # A call has a handful of attempts at most: a scan is cheaper than keeping an index.
    for attempt in call.attempts:
        if attempt.dest_uniqueid == dest_uid:
            return attempt
    return None


def _finish_attempt(attempt: _Attempt, t_end: float) -> RingAttempt:
    # An attempt still ringing when the call ended was cancelled by that end.
    end = attempt.t_end if attempt.t_end is not None else t_end
    return RingAttempt(
        extension=attempt.extension,
        via=attempt.via,
        context=attempt.context,
        result=attempt.result or "CANCEL",
        ring_s=end - attempt.t_begin,
        to_agent=attempt.to_agent,
    )


def _status(call: _Call, attempts: tuple[RingAttempt, ...]) -> Status:
    if call.t_answer is not None:
        return "answered"
    if call.direction == "inbound":
        return "abandoned" if call.hung_up_by == "caller" else "missed"
    client = [a for a in attempts if not a.to_agent]
    if not client or client[-1].result in _UNREACHABLE:
        return "failed"
    if client[-1].result == "BUSY":
        return "busy"
    return "no_answer"


def _soft_flags(ev: Mapping[str, str]) -> int:
    cause = ev.get("Cause", "")
    return int(cause) if cause.isdigit() else 0


def _mark_hangup(call: _Call, mark: str) -> None:
    if mark not in call.hangups:
        call.hangups.append(mark)


def _hold_key(ev: Mapping[str, str]) -> str:
    kind = "moh" if ev["Event"].startswith("MusicOnHold") else "hold"
    return f"{kind}:{ev['Uniqueid']}"


def _close_hold(call: _Call, t: float) -> None:
    if call.hold_since is not None:
        call.hold_s += max(0.0, t - call.hold_since)
    call.hold_since = None


def _agent_label(extension: str | None) -> str:
    return f"agent {extension}" if extension else "agent"


def _event_name(event: object) -> str:
    getter = getattr(event, "get", None)
    return str(getter("Event")) if callable(getter) else type(event).__name__
