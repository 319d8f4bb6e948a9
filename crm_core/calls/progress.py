"""What a call means to the CRM, fact by fact: one function per fact kind.

Each takes the call as it stood when the fact happened (`CallInfo`) and who it is with
(`CallContext`, from `active_calls`), does its database work in the caller's session (agents'
phones go through the batch's `AgentPhones`, written once per batch) and collects the typed
messages people get (published after the commit: crm_core.db.unit_of_work).
The PBX side (telephony.call_pipeline) decides only when and in which transaction each runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.active import AgentPhones, remember_client
from crm_core.calls.pop_card import card_json_sql, decoded
from crm_core.calls.schemas import (
    NO_CONTEXT,
    CallContext,
    CallerAtStart,
    CallerFound,
    CallInfo,
    CallRecord,
)
from crm_core.calls.service import (
    deal_of_client,
    identify_caller,
    log_call,
    look_up_and_remember,
)
from crm_core.calls.variables import named_deal
from crm_core.calls.views import call_event, call_view
from crm_core.communications.models import Communication
from crm_core.communications.schemas import Logged
from crm_core.db import collect_event, driver_connection
from crm_core.events.messages import (
    CallAnsweredMessage,
    CallCardFailedMessage,
    CallCardOpenedMessage,
    CallDequeuedMessage,
    CallEndedMessage,
    CallHungUpMessage,
    CallQueuedMessage,
    CallRingEndedMessage,
    CallRingingMessage,
    CallStartedMessage,
    CallTransferredMessage,
    CallView,
)
from crm_core.texts import FALLBACK
from crm_core.users.models import User

logger = logging.getLogger(__name__)


async def who_is_calling(
    session: AsyncSession,
    call: CallInfo,
    *,
    at: datetime,
    region: str,
    company_numbers: frozenset[str],
) -> CallerAtStart:
    """Who is calling, from a read (the card by the number's index) remembered in
    `active_calls` by the same statement; `call.started` for the placing agent (outbound) and
    the supervisors. The pop lane's share of a call's start: it opens nothing.

    Returns who the call is with, whether a card or an open deal is still to be opened
    (`open_card`, apart, so that no pop waits for those writes), and the card as a pop shows
    it, read by the same statement (`agent_ringing_pop` may use it instead of its own read).
    Until the card is opened a new caller is remembered by number alone: its pop says
    `new_caller`."""
    found = await look_up_and_remember(  # one round trip on the pop's path
        session, call, at=at, region=region, company_numbers=company_numbers
    )
    ctx = _context_of(found)
    to_open = found is not None and found.deal_id is None
    exts = [call.agent_extension] if call.agent_extension else []
    message = CallStartedMessage(
        linkedid=call.linkedid, extensions=exts, call=call_view(call.linkedid, call, ctx)
    )
    collect_event(session, call_event(message))
    return CallerAtStart(ctx, to_open, found.card if found is not None else None)


def _context_of(found: CallerFound | None) -> CallContext:
    """Who the call is with, as far as a lookup found (a number alone: nobody has it yet), as
    `look_up_and_remember` remembered it."""
    if found is None:
        return NO_CONTEXT
    if found.client_id is None:
        return CallContext(client_number=found.e164)
    return CallContext(
        client_id=found.client_id,
        deal_id=found.call_deal_id,  # a click-to-call's deal, else the open one
        client_name=found.client_name,
        client_number=found.e164,
    )


async def open_card(
    session: AsyncSession,
    call: CallInfo,
    *,
    at: datetime,
    region: str,
    company_numbers: frozenset[str],
    locale: str = FALLBACK,
) -> CallContext:
    """The writes `who_is_calling` left: an unknown number's new card named after the caller
    (lead source "inbound call"), an open deal for a card without one; remembered with the call
    for its later messages and its log. Race-safe: a card another call opened meanwhile is
    found, not doubled."""
    inbound = call.direction == "inbound"
    caller = await identify_caller(
        session,
        call.client_raw_number,
        call.caller_name if inbound else None,
        region=region,
        company_numbers=company_numbers,
        lead_source="inbound call" if inbound else "outbound call",
        locale=locale,
    )
    ctx = NO_CONTEXT
    if caller is not None:
        ctx = CallContext(
            client_id=caller.client_id,
            deal_id=caller.deal_id,
            client_name=caller.client_name,
            client_number=caller.e164,
            client_created=caller.client_created,
        )
    return await _remember(session, call, ctx, at)


async def _remember(
    session: AsyncSession, call: CallInfo, ctx: CallContext, at: datetime
) -> CallContext:
    """Who the call is with, remembered with it (`active_calls`); a click-to-call from a deal is
    logged there, once the deal is confirmed the client's."""
    named = named_deal(call.variables)
    if (
        ctx.client_id is not None
        and named is not None
        and await deal_of_client(session, named, ctx.client_id)
    ):
        ctx = replace(ctx, deal_id=named)
    await remember_client(session, call, ctx, at)
    return ctx


# The whole pop in one round trip, a read: who the call is with (as who_is_calling remembered it),
# the card, the open deal, the last communications and open tasks. Sent to the driver
# (crm_core.db.driver_connection): every pop runs it.
_POP_CARD = card_json_sql(
    "(SELECT client_id FROM ac)",
    "COALESCE((SELECT deal_id FROM ac), (SELECT id FROM deals WHERE client_id = c.id"
    " AND closed_at IS NULL ORDER BY id DESC LIMIT 1))",
)
_POP_SQL = f"""
    WITH ac AS (
        SELECT client_id, deal_id, client_name, client_number, client_created
        FROM active_calls WHERE linkedid = $1
    )
    SELECT json_build_object(
        'context', (SELECT row_to_json(ac) FROM ac),
        'card', {_POP_CARD}
    )
    """


async def _read_pop(
    session: AsyncSession, linkedid: str
) -> tuple[CallContext, dict[str, Any] | None]:
    raw = await (await driver_connection(session)).fetchval(_POP_SQL, linkedid)
    found: dict[str, Any] = decoded(raw) or {}
    raw = found.get("context") or {}
    ctx = CallContext(
        client_id=raw.get("client_id"),
        deal_id=raw.get("deal_id"),
        client_name=raw.get("client_name"),
        client_number=raw.get("client_number"),
        client_created=bool(raw.get("client_created")),
    )
    return ctx, found.get("card")


async def agent_ringing_pop(
    session: AsyncSession,
    call: CallInfo | None,
    linkedid: str,
    extension: str,
    *,
    at_start: CallerAtStart | None = None,
) -> CallRingingMessage:
    """The screen-pop: a read, no write. A new caller whose card is not opened yet pops at once
    as `new_caller` with no card (`call.card_opened` brings it); a caller the CRM could not
    match (hidden number, a company number) pops as `unknown` with no card.

    `at_start`: what the call's start read (`who_is_calling`), when the caller knows it still
    holds (no card opened for the call since): the pop is made from it, with no round trip."""
    if at_start is not None:
        ctx, card = at_start.context, at_start.card
    else:
        ctx, card = await _read_pop(session, linkedid)
    view = call_view(linkedid, call, ctx)
    if card:
        view.client_name = card.get("client", {}).get("name")
        message = CallRingingMessage(
            linkedid=linkedid,
            extensions=[extension],
            call=view,
            card=card,
            new_client=ctx.client_created,
        )
    elif ctx.client_number is not None:
        message = CallRingingMessage(
            linkedid=linkedid, extensions=[extension], call=view, new_caller=True
        )
    else:
        message = CallRingingMessage(
            linkedid=linkedid, extensions=[extension], call=view, unknown=True
        )
    collect_event(session, call_event(message))
    return message


async def card_opened(session: AsyncSession, linkedid: str) -> CallCardOpenedMessage | None:
    """The card `open_card` opened (or completed with a deal) as a pop shows it, read in its
    transaction; addressed and sent by `card_opened_pop` once committed. None: no card."""
    ctx, card = await _read_pop(session, linkedid)
    if ctx.client_id is None or not card:
        return None
    name = card.get("client", {}).get("name")
    return CallCardOpenedMessage(
        linkedid=linkedid,
        extensions=[],
        call=call_view(linkedid, None, replace(ctx, client_name=name)),
        client_id=ctx.client_id,
        client_name=name,
        deal_id=ctx.deal_id,
        card=card,
        new_client=ctx.client_created,
    )


def card_opened_pop(
    session: AsyncSession, opened: CallCardOpenedMessage, extensions: list[str]
) -> None:
    """`call.card_opened` to the agents whose pop said the card was on its way (and the
    supervisors): the follow-up of their `call.ringing`, published after it."""
    collect_event(session, call_event(opened.model_copy(update={"extensions": extensions})))


def card_failed_pop(session: AsyncSession, linkedid: str, extensions: list[str]) -> None:
    """`call.card_failed` to the agents whose pop said the card was on its way (and the
    supervisors), once the card lane has given up on it: their pops stop waiting. Its `call`
    names the call alone: who it is with is unchanged (a board keeps what it shows)."""
    message = CallCardFailedMessage(
        linkedid=linkedid, extensions=extensions, call=CallView(linkedid=linkedid)
    )
    collect_event(session, call_event(message))


def agent_ringing(phones: AgentPhones, linkedid: str, extension: str, at: datetime) -> None:
    """The agent's phone rings: busy for routing (the pop itself is `agent_ringing_pop`)."""
    phones.set(extension, "ringing", linkedid, at)


async def agent_ring_ended(
    session: AsyncSession,
    phones: AgentPhones,
    call: CallInfo | None,
    ctx: CallContext,
    *,
    linkedid: str,
    extension: str,
    result: str,
    at: datetime,
) -> None:
    """Free again unless the same call rings them anew (the "free" is per call)."""
    phones.set(extension, "free", linkedid, at)
    message = CallRingEndedMessage(
        linkedid=linkedid,
        extensions=[extension],
        call=call_view(linkedid, call, ctx),
        result=result,
    )
    collect_event(session, call_event(message))


async def call_answered(
    session: AsyncSession,
    phones: AgentPhones,
    call: CallInfo | None,
    ctx: CallContext,
    *,
    linkedid: str,
    extension: str | None,
    at: datetime,
) -> None:
    if extension:
        phones.set(extension, "talking", linkedid, at)
    message = CallAnsweredMessage(
        linkedid=linkedid,
        extensions=[extension] if extension else [],
        call=call_view(linkedid, call, ctx),
        answered_by=extension,
    )
    collect_event(session, call_event(message))


async def call_queue_changed(
    session: AsyncSession,
    call: CallInfo | None,
    ctx: CallContext,
    *,
    linkedid: str,
    queue: str | None,
) -> None:
    """For the supervisors' board (no phone rings): who waits in which queue, since when."""
    kind = CallQueuedMessage if queue else CallDequeuedMessage
    message = kind(
        linkedid=linkedid, extensions=[], call=call_view(linkedid, call, ctx), queue=queue
    )
    collect_event(session, call_event(message))


async def call_transferred(
    session: AsyncSession,
    phones: AgentPhones,
    call: CallInfo | None,
    ctx: CallContext,
    *,
    linkedid: str,
    from_extension: str | None,
    to_extension: str,
    kind: str,
    at: datetime,
) -> None:
    if from_extension:
        phones.set(from_extension, "free", linkedid, at)
    message = CallTransferredMessage(
        linkedid=linkedid,
        extensions=[e for e in (from_extension, to_extension) if e],
        call=call_view(linkedid, call, ctx),
        from_extension=from_extension,
        to_extension=to_extension,
        kind=kind,
    )
    collect_event(session, call_event(message))


def call_over(phones: AgentPhones, linkedid: str, agents: tuple[str, ...], at: datetime) -> None:
    """The live share of a call's end: its agents are free (the log follows apart)."""
    for ext in agents:
        phones.set(ext, "free", linkedid, at)


def call_hung_up(session: AsyncSession, linkedid: str, at: datetime) -> None:
    """`call.hung_up` with the live lane's commit, for the supervisors' boards only (agents'
    pages follow their call to `call.ended`): a board drops the call without waiting for the
    log, whose `call.ended` brings the outcome."""
    message = CallHungUpMessage(linkedid=linkedid, extensions=[], at=at.isoformat())
    collect_event(session, call_event(message))


async def call_ended(
    session: AsyncSession,
    record: CallRecord,
    *,
    agents: tuple[str, ...],
    region: str,
    company_numbers: frozenset[str],
    callback_due: timedelta,
    locale: str = FALLBACK,
    ended: CallContext,
    users: Mapping[str, User] | None = None,
    logged: Mapping[str, Communication] | None = None,
) -> Logged | None:
    """The finished call, logged once on the deal it was matched to while it rang (or the deal a
    click-to-call named), `call.ended` to its agents. `ended`: who it was with, as its row handed
    back when taken off the calls in progress (`active.end_calls`, one statement per batch);
    `users` and `logged`: as `log_call` takes them, read once for a batch."""
    if ended.client_id is not None:
        record = replace(
            record,
            client_id=ended.client_id,
            deal_id=ended.deal_id if ended.deal_id is not None else record.deal_id,
        )
    done = await log_call(
        session,
        record,
        region=region,
        company_numbers=company_numbers,
        callback_due=callback_due,
        locale=locale,
        users=users,
        logged=logged,
    )
    comm = done.communication if done else None
    message = CallEndedMessage(
        linkedid=record.linkedid,
        extensions=list(agents),
        status=record.status,
        answered_by=record.extra.get("answered_by"),
        missed=record.missed,
        client_number=record.client_number,
        client_id=comm.client_id if comm else None,
        deal_id=comm.deal_id if comm else None,
        communication_id=comm.id if comm else None,
        talk_seconds=record.talk_seconds,
        ring_seconds=record.ring_seconds,
    )
    collect_event(session, call_event(message))
    return done
