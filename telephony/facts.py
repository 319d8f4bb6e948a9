"""Call facts: what the tracker tells the rest of the service, as frozen dataclasses.

Facts are values, not commands: crm_core decides what to store, notifier what to show. Every fact
carries the call's ``linkedid`` (one logical call, however many channels), ``at``, the PBX
time of the event that produced it (epoch seconds), and ``call``, the call's snapshot at that
moment (the tracker fills it in; None for a call that is over).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["inbound", "outbound"]
Via = Literal["dial", "queue"]
TransferKind = Literal["blind", "attended"]
# answered: someone talked; abandoned: inbound caller hung up before an answer (a missed call);
# missed: inbound, nobody answered and the PBX gave up; no_answer: outbound, the client did not
# answer; busy: outbound, the client's line was busy (DialEnd BUSY); failed: outbound, the call
# never reached the client (agent leg or trunk failed).
CallState = Literal["waiting", "ringing", "talking"]
Status = Literal["answered", "abandoned", "missed", "no_answer", "busy", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSnapshot:
    """A call in progress, for dashboards and persistence."""

    linkedid: str
    direction: Direction
    state: CallState
    caller_number: str | None
    caller_name: str | None
    did_or_dialled: str
    agent_extension: str | None
    ringing_extensions: tuple[str, ...]
    talking_extension: str | None
    t_start: float
    t_answer: float | None
    variables: dict[str, str] = field(default_factory=dict)
    queue: str | None = None  # the Asterisk queue the caller waits in, if any
    t_queued: float | None = None
    recording: str | None = None  # the recording file being written, as Asterisk named it


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseFact:
    linkedid: str
    at: float
    # The call as it stood when the fact happened (None once it has ended): what the CRM shows
    # and saves, so nobody downstream re-reads the tracker. Left out of equality: a fact is
    # what happened, the snapshot its surroundings.
    call: CallSnapshot | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(BaseFact):
    direction: Direction
    caller_number: str | None  # raw, as sent (inbound: the client; outbound: the agent's phone)
    caller_name: str | None
    did_or_dialled: str  # inbound: the DID dialled by the client; outbound: the client's number
    agent_extension: str | None  # outbound: the agent who placed the call
    variables: dict[str, str] = field(default_factory=dict)  # CRM_DEAL_ID, CRM_USER_ID …


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRinging(BaseFact):
    extension: str
    via: Via


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingEnded(BaseFact):
    """An agent's phone stopped ringing without answering (NOANSWER, CANCEL, BUSY…)."""

    extension: str
    result: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(BaseFact):
    # Inbound: the agent who picked up. Outbound: the agent who placed the call (the client
    # answered). Sent again when a transfer target answers.
    extension: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueueChanged(BaseFact):
    """The caller joined an Asterisk queue (`queue` names it) or left it (`queue` is None)."""

    queue: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(BaseFact):
    from_extension: str | None
    to_extension: str
    kind: TransferKind


@dataclass(frozen=True, slots=True, kw_only=True)
class RingAttempt:
    extension: str  # agent extension, or the client's number for an outbound dial
    via: Via
    context: str  # dialplan context of the dialling channel (from-pstn, transfer-internal …)
    result: str  # ANSWER, NOANSWER, CANCEL, BUSY … (the first DialEnd of the attempt)
    ring_s: float
    to_agent: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """A stretch of conversation owned by one agent; legs are cut by transfers."""

    extension: str
    talk_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    kind: TransferKind
    from_extension: str | None
    to_extension: str
    at_s: float  # seconds after t_start
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSummary:
    linkedid: str
    direction: Direction
    caller_number: str | None
    caller_name: str | None
    did: str | None  # inbound
    dialled_number: str | None  # outbound
    agent_extension: str | None  # outbound: the agent who placed the call
    rang: tuple[str, ...]  # every ring attempt's target, in order (client number for outbound)
    agents_rung: tuple[str, ...]  # agent extensions rung, in order, repeats kept
    ring_attempts: tuple[RingAttempt, ...]
    answered_by: str | None  # inbound: extension; outbound: "client" once the client answered
    final_agent: str | None  # the last agent who talked
    legs: tuple[Leg, ...]
    transfers: tuple[Transfer, ...]
    status: Status
    missed: bool
    ring_s: float  # first ring -> answer (or -> end when unanswered)
    wait_s: float | None  # inbound: first dialplan step -> answer (or end); None outbound
    talk_s: float  # answer -> end of the main channel
    hung_up_by: str | None  # "caller" | "agent 101" | "client" | "pbx"; None if unknown
    hangup_cause: str | None
    t_start: float
    t_answer: float | None
    t_end: float
    variables: dict[str, str] = field(default_factory=dict)
    agent_leg_ring_s: float | None = None  # click-to-call: how long the agent's phone rang
    recording: str | None = None  # the recording file as Asterisk named it (a path on the PBX)
    recording_started: bool = False  # MixMonitorStart was seen
    hold_s: float = 0.0  # seconds someone was on hold during the talk (Hold/Unhold or music)
    # True when Asterisk never showed the end (it stopped, or we were away when the call ended):
    # t_end is then the last event seen for the call, and talk_s is a lower bound.
    end_inferred: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(BaseFact):
    summary: CallSummary


Fact = (
    CallStarted
    | AgentRinging
    | AgentRingEnded
    | CallAnswered
    | CallQueueChanged
    | CallTransferred
    | CallEnded
)
