"""A call in progress as the CRM sees it: the tracker's CallSnapshot -> crm_core's CallInfo."""

from __future__ import annotations

from crm_core.calls.schemas import CallInfo
from telephony.facts import CallSnapshot
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
