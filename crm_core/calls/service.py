"""Calls on the CRM side: who is calling, and logging a finished call once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import texts
from crm_core.calls import active
from crm_core.calls.pop_card import card_json_sql, decoded
from crm_core.calls.schemas import NO_CONTEXT, CallerContext, CallerFound, CallInfo, CallRecord
from crm_core.calls.variables import named_deal
from crm_core.clients.models import Client
from crm_core.clients.service import open_card_for_unknown
from crm_core.communications.models import Communication
from crm_core.communications.schemas import CommunicationIn, Logged
from crm_core.communications.service import log_communication
from crm_core.db import driver_connection
from crm_core.deals.models import Deal
from crm_core.deals.service import ensure_open_deal
from crm_core.phones import try_normalize_phone
from crm_core.tasks.callbacks import on_answered_call
from crm_core.tasks.service import create_callback_once
from crm_core.users.models import User
from crm_core.users.service import users_by_extension

logger = logging.getLogger(__name__)


# Most calls come from someone with a card and an open deal: one probe of the phone index and
# of the open-deal index, no lock (the lock only serialises opening a deal, and there is one).
# The deal the call is with: a click-to-call's named deal when it is the card's, else the open
# one (for a card that exists at the call's start; one opened for it is checked by
# progress._remember). OFFSET 0 keeps `k` a subquery of its own, so the open deal is probed
# once, not once more for the COALESCE. Sent to the driver (crm_core.db.driver_connection):
# every call's start runs it.
def _known_caller_sql(number: str, named_deal: str = "NULL::int") -> str:
    return f"""
    SELECT k.id, k.name, k.deal_id, COALESCE(k.named_deal_id, k.deal_id) AS call_deal_id
    FROM (
        SELECT c.id, c.name,
               (SELECT d.id FROM deals d WHERE d.client_id = c.id AND d.closed_at IS NULL
                ORDER BY d.id DESC LIMIT 1) AS deal_id,
               (SELECT d.id FROM deals d WHERE d.id = {named_deal} AND d.client_id = c.id)
                   AS named_deal_id
        FROM client_phones p JOIN clients c ON c.id = p.client_id
        WHERE p.e164 = {number}
        OFFSET 0
    ) k
    """


_KNOWN_CALLER_SQL = _known_caller_sql("$1")


# A call's start: that lookup, and its answer remembered with the call, in one round trip;
# with the card as a pop shows it (the deal remembered with the call), for the call's first pops
def _look_up_and_remember_sql(*, flush: bool) -> str:
    return active.remember_found_sql(
        _known_caller_sql("$4::text", active.REMEMBER_NAMED_DEAL),
        ", " + card_json_sql("found.id", "found.call_deal_id") + " AS card",
        flush=flush,
    )


_LOOK_UP_AND_REMEMBER = _look_up_and_remember_sql(flush=True)
_LOOK_UP_AND_REMEMBER_ALONE = _look_up_and_remember_sql(flush=False)  # (the pop lane's)


def _matchable(number: str | None, region: str, company_numbers: frozenset[str]) -> str | None:
    """The number in E.164, unless there is nobody to match (hidden, garbage, the company's)."""
    e164 = try_normalize_phone(number, region)
    return None if e164 is None or e164 in company_numbers else e164


def _found(e164: str, known: Mapping[str, Any] | None) -> CallerFound:
    if known is None:
        return CallerFound(e164)
    return CallerFound(
        e164,
        known["id"],
        known["name"],
        known["deal_id"],
        known["call_deal_id"],
        decoded(known.get("card")),
    )


async def look_up_caller(
    session: AsyncSession, number: str | None, *, region: str, company_numbers: frozenset[str]
) -> CallerFound | None:
    """The caller's card and open deal by the number's index, a read (nothing is opened).
    None: nobody to match (hidden number, garbage, or one of the company's own numbers)."""
    e164 = _matchable(number, region, company_numbers)
    if e164 is None:
        return None
    return _found(e164, await (await driver_connection(session)).fetchrow(_KNOWN_CALLER_SQL, e164))


async def look_up_and_remember(
    session: AsyncSession,
    call: CallInfo,
    *,
    at: datetime,
    region: str,
    company_numbers: frozenset[str],
) -> CallerFound | None:
    """`look_up_caller` for the call's number, and what it found remembered with the call
    (`active.remember_client`; with a click-to-call's named deal when it is the card's), in one
    statement, which does not wait for its flush when it is its own transaction (the pop
    lane's). None: nobody to match, and the call is remembered as with
    nobody."""
    e164 = _matchable(call.client_raw_number, region, company_numbers)
    if e164 is None:
        await active.remember_client(session, call, NO_CONTEXT, at)
        return None
    driver = await driver_connection(session)
    params = active.remember_found_params(call, at, e164, named_deal(call.variables))
    sql = _LOOK_UP_AND_REMEMBER_ALONE if active.stands_alone(driver) else _LOOK_UP_AND_REMEMBER
    known = await driver.fetchrow(sql, *params)
    return _found(e164, known)


async def identify_caller(
    session: AsyncSession,
    number: str | None,
    name: str | None,
    *,
    region: str,
    company_numbers: frozenset[str],
    lead_source: str = "inbound call",
    locale: str = texts.FALLBACK,
) -> CallerContext | None:
    """The caller's card and open deal; an unknown number opens both. None: nobody to match
    (hidden number, garbage, or one of the company's own numbers)."""
    found = await look_up_caller(session, number, region=region, company_numbers=company_numbers)
    if found is None:
        return None
    if found.client_id is not None and found.deal_id is not None:
        return CallerContext(found.client_id, found.deal_id, False, found.client_name, found.e164)
    client, created = await open_card_for_unknown(
        session,
        found.e164,
        name=_real_name(name),
        lead_source=texts.lead_source(locale, lead_source),
        looked_up=found.client_id is None,
    )
    deal, _ = await ensure_open_deal(
        session,
        client.id,
        responsible_id=client.responsible_id,
        title=texts.deal_title(locale, lead_source, found.e164),
        new_client=created,
    )
    return CallerContext(client.id, deal.id, created, client.name, found.e164)


async def deal_of_client(session: AsyncSession, deal_id: int, client_id: int) -> bool:
    owner = await session.scalar(select(Deal.client_id).where(Deal.id == deal_id))
    return owner == client_id


def _real_name(name: str | None) -> str | None:
    if not name or name.strip().lower() in ("<unknown>", "unknown", "anonymous", ""):
        return None
    return name.strip()


async def log_call(
    session: AsyncSession,
    record: CallRecord,
    *,
    region: str,
    company_numbers: frozenset[str],
    callback_due: timedelta,
    locale: str = texts.FALLBACK,
    users: Mapping[str, User] | None = None,
    logged: Mapping[str, Communication] | None = None,
) -> Logged | None:
    """The finished call as one communication on the deal; a missed inbound call also makes one
    callback task for the responsible manager (or the first agent who rang).

    A batch of calls reads at once what each would read alone: `users`, the users on (a
    superset of) the call's agents' extensions by extension (`users_by_extension`); `logged`,
    the calls already logged by linkedid (`log_communication`'s). None: read here."""
    e164 = try_normalize_phone(record.client_number, region)
    if record.client_id is None and (e164 is None or e164 in company_numbers):
        logger.info(
            "call %s not logged: no client number (%r)", record.linkedid, record.client_number
        )
        return None
    if users is None:
        users = await users_by_extension(session, record_extensions(record))
    owner = users.get(record.final_agent or record.agent_extension or "")
    user_id = record.user_id if record.user_id is not None else (owner.id if owner else None)
    if user_id is not None and await session.get(User, user_id) is None:
        user_id = owner.id if owner else None
    extra = dict(record.extra)
    extra.update(agents_rung=record.agents_rung, missed=record.missed)
    done = await log_communication(
        session,
        CommunicationIn(
            kind="call",
            direction=record.direction,
            status=record.status,
            occurred_at=record.started_at,
            phone=e164,
            contact_name=_real_name(record.client_name),
            client_id=record.client_id,
            deal_id=record.deal_id,
            user_id=user_id,
            agent_extension=record.agent_extension,
            answered_at=record.answered_at,
            ended_at=record.ended_at,
            ring_seconds=round(record.ring_seconds, 3),
            talk_seconds=round(record.talk_seconds, 3),
            extra=extra,
            external_id=record.linkedid,
            lead_source="inbound call" if record.direction == "in" else "outbound call",
        ),
        region=region,
        company_numbers=company_numbers,
        locale=locale,
        logged=logged,
    )
    if done.created and record.missed and record.direction == "in":
        comm = done.communication
        card = await session.get(Client, comm.client_id)
        first_rung = users.get(record.agents_rung[0]) if record.agents_rung else None
        assignee = (card.responsible_id if card else None) or (
            first_rung.id if first_rung else None
        )
        await create_callback_once(
            session,
            client_id=comm.client_id,
            deal_id=comm.deal_id,
            assignee_id=assignee,
            due_at=record.ended_at + callback_due,
            title=texts.text(locale, "task.missed_call", phone=comm.phone),
            communication_id=comm.id,
            missed_at=record.ended_at,
        )
    if done.created and record.answered_at is not None:  # agenda: the return call closes it
        await on_answered_call(session, done.communication.client_id, done.communication.id)
    return done


def record_extensions(record: CallRecord) -> list[str]:
    """The extensions whose users `log_call` looks at."""
    return [e for e in {record.final_agent, record.agent_extension, *record.agents_rung} if e]
