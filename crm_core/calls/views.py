"""Calls as people see them: the typed call messages of crm_core.events.messages, built here only.

The payload classes are the catalogue's (GET /api/events/schema); a CallEvent carries the
serialized payload to notifier.channels, which adds `linkedid` and `extensions` back.
"""

from __future__ import annotations

from crm_core.calls.schemas import CallContext, CallInfo
from crm_core.events.messages import CallMessage, CallView
from crm_core.events.types import CallEvent

_ENVELOPE = {"linkedid", "extensions"}


def call_view(linkedid: str, call: CallInfo | None, ctx: CallContext) -> CallView:
    """The call in progress and who it is with; a call already over shows only the latter."""
    if call is None:
        return CallView(
            linkedid=linkedid,
            client_id=ctx.client_id,
            deal_id=ctx.deal_id,
            client_name=ctx.client_name,
        )
    return CallView(
        linkedid=call.linkedid,
        direction=call.direction,
        state=call.state,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        did_or_dialled=call.did_or_dialled,
        agent_extension=call.agent_extension,
        ringing=list(call.ringing),
        talking=call.talking,
        started_at=call.started_at.isoformat(),
        answered_at=call.answered_at.isoformat() if call.answered_at else None,
        queue=call.queue,
        queued_at=call.queued_at.isoformat() if call.queued_at else None,
        client_id=ctx.client_id,
        deal_id=ctx.deal_id,
        client_name=ctx.client_name,
        # the client's number in E.164 (the dialplan's own digits are in did_or_dialled)
        client_number=ctx.client_number,
    )


def call_event(message: CallMessage) -> CallEvent:
    """A typed call message as the domain event the hub publishes after the commit."""
    return CallEvent(
        type=message.TYPE,
        linkedid=message.linkedid,
        extensions=tuple(message.extensions),
        payload=message.model_dump(mode="json", exclude_unset=True, exclude=_ENVELOPE),
    )
