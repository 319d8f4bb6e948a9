"""A finished call as the CRM logs it: the tracker's CallSummary -> crm_core's CallRecord (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crm_core.calls.schemas import CallRecord
from crm_core.calls.variables import named_deal, placing_user
from telephony.facts import CallSummary


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def client_number(summary: CallSummary) -> str | None:
    return summary.caller_number if summary.direction == "inbound" else summary.dialled_number


def to_record(
    summary: CallSummary, client_id: int | None, deal_id: int | None = None
) -> CallRecord:
    """`client_id`/`deal_id`: who the call was matched to while it rang (the deal a click-to-call
    named, once checked, or the client's open deal)."""
    inbound = summary.direction == "inbound"
    return CallRecord(
        linkedid=summary.linkedid,
        direction="in" if inbound else "out",
        status=summary.status,
        missed=summary.missed,
        client_number=client_number(summary),
        client_name=summary.caller_name if inbound else None,
        answered_by=summary.answered_by if inbound else None,
        agent_extension=summary.answered_by if inbound else summary.agent_extension,
        final_agent=summary.final_agent or (None if inbound else summary.agent_extension),
        agents_rung=list(summary.agents_rung),
        ring_seconds=summary.ring_s,
        talk_seconds=summary.talk_s,
        started_at=ts(summary.t_start),
        answered_at=ts(summary.t_answer) if summary.t_answer else None,
        ended_at=ts(summary.t_end),
        deal_id=deal_id if deal_id is not None else named_deal(summary.variables),
        user_id=placing_user(summary.variables),
        client_id=client_id,
        extra={
            "direction_name": summary.direction,
            "did": summary.did,
            "dialled_number": summary.dialled_number,
            "caller_name": summary.caller_name,
            "answered_by": summary.answered_by,
            "final_agent": summary.final_agent,
            "transfers": [
                {"kind": t.kind, "from": t.from_extension, "to": t.to_extension, "at_s": t.at_s}
                for t in summary.transfers
            ],
            "legs": [{"extension": leg.extension, "talk_s": leg.talk_s} for leg in summary.legs],
            "ring_attempts": [
                {"ext": a.extension, "via": a.via, "result": a.result, "ring_s": a.ring_s}
                for a in summary.ring_attempts
            ],
            "hung_up_by": summary.hung_up_by,
            "hangup_cause": summary.hangup_cause,
            "wait_s": summary.wait_s,
            "variables": summary.variables,
            "agent_leg_ring_s": summary.agent_leg_ring_s,
            "recording": recording_link(summary),
            "hold_s": summary.hold_s,
            "end_inferred": summary.end_inferred,
        },
    )


def recording_link(summary: CallSummary) -> dict[str, Any] | None:
    """The call's recording as the CRM keeps it, or None when Asterisk named no file.

    ``file`` is the path as Asterisk named it (on the PBX's disk; the web side maps it into
    RECORDINGS_DIR or RECORDINGS_URL_TEMPLATE). MixMonitor with option b writes audio only while
    the call is bridged, so an unanswered call leaves a header-only file: ``empty`` says so up
    front, and players need not fetch it.
    """
    if not summary.recording:
        return None
    return {
        "file": summary.recording,
        "started": summary.recording_started,
        "empty": summary.t_answer is None,
    }
