"""A call in progress as the CRM sees it: the tracker's CallSnapshot -> crm_core's CallInfo."""

from __future__ import annotations

from crm_core.calls.schemas import CallInfo
from telephony.facts import CallSnapshot, CallStarted
from telephony.finished_call import ts


def call_info(snapshot: CallSnapshot | None) -> CallInfo | None:
    """None for a call already over: its messages then show only who it was with."""
    if snapshot is None:
        return None
    return CallInfo(
        linkedid=snapshot.linkedid,
        direction=snapshot.direction,
        state=snapshot.state,
        caller_number=snapshot.caller_number,
        caller_name=snapshot.caller_name,
        did_or_dialled=snapshot.did_or_dialled,
        agent_extension=snapshot.agent_extension,
        ringing=snapshot.ringing_extensions,
        talking=snapshot.talking_extension,
        started_at=ts(snapshot.t_start),
        answered_at=ts(snapshot.t_answer) if snapshot.t_answer else None,
        queue=snapshot.queue,
        queued_at=ts(snapshot.t_queued) if snapshot.t_queued is not None else None,
        variables=snapshot.variables,
    )


def started_call_info(fact: CallStarted) -> CallInfo:
    """The call as its start showed it: for a call that is over by the time the tracker tells
    (a click-to-call that failed in the same event), who it was with must still be found."""
    info = call_info(fact.call)
    if info is not None:
        return info
    return CallInfo(
        linkedid=fact.linkedid,
        direction=fact.direction,
        state="waiting",
        caller_number=fact.caller_number,
        caller_name=fact.caller_name,
        did_or_dialled=fact.did_or_dialled,
        agent_extension=fact.agent_extension,
        ringing=(),
        talking=None,
        started_at=ts(fact.at),
        answered_at=None,
        variables=fact.variables,
    )
