"""Calls on the CRM side: who is calling, the screen-pop card, logging a finished call once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import ActiveCall, AgentState
from crm_core.calls.schemas import CallerContext, CallRecord
from crm_core.clients.models import Client
from crm_core.clients.service import open_card_for_unknown
from crm_core.communications.schemas import CommunicationIn, Logged
from crm_core.communications.service import log_communication
from crm_core.deals.models import Deal
from crm_core.deals.service import ensure_open_deal
from crm_core.phones import try_normalize_phone
from crm_core.tasks.callbacks import on_answered_call
from crm_core.tasks.service import create_callback_once
from crm_core.users.models import User
from crm_core.users.service import users_by_extension

logger = logging.getLogger(__name__)


async def identify_caller(
    session: AsyncSession,
    number: str | None,
    name: str | None,
    *,
    region: str,
    company_numbers: frozenset[str],
    lead_source: str = "inbound call",
) -> CallerContext | None:
    """The caller's card and open deal; an unknown number opens both. None: nobody to match
    (hidden number, garbage, or one of the company's own numbers)."""
    e164 = try_normalize_phone(number, region)
    if e164 is None or e164 in company_numbers:
        return None
    client, created = await open_card_for_unknown(
        session, e164, name=_real_name(name), lead_source=lead_source
    )
    deal, _ = await ensure_open_deal(
        session, client.id, responsible_id=client.responsible_id, title=f"{lead_source} {e164}"
    )
    return CallerContext(client.id, deal.id, created, client.name, e164)


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
) -> Logged | None:
    """The finished call as one communication on the deal; a missed inbound call also makes one
    callback task for the responsible manager (or the first agent who rang)."""
    e164 = try_normalize_phone(record.client_number, region)
    if record.client_id is None and (e164 is None or e164 in company_numbers):
        logger.info(
            "call %s not logged: no client number (%r)", record.linkedid, record.client_number
        )
        return None
    exts = [e for e in {record.final_agent, record.agent_extension, *record.agents_rung} if e]
    users = await users_by_extension(session, exts)
    owner = users.get(record.final_agent or record.agent_extension or "")
    user_id = record.user_id if record.user_id is not None else (owner.id if owner else None)
    if user_id is not None and await session.get(User, user_id) is None:
        user_id = owner.id if owner else None
    extra = dict(record.extra)
    extra.update(agents_rung=record.agents_rung, missed=record.missed)
    logged = await log_communication(
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
    )
    if logged.created and record.missed and record.direction == "in":
        comm = logged.communication
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
            title=f"Call back {comm.phone}: missed call",
            communication_id=comm.id,
            missed_at=record.ended_at,
        )
    if logged.created and record.answered_at is not None:  # agenda: the return call closes it
        await on_answered_call(session, logged.communication.client_id, logged.communication.id)
    return logged


# The whole pop card in one round trip: it sits on the path from a ringing phone to the screen.
_POP_SQL = text(
    """
    WITH d AS (
        SELECT d.id, d.title, d.amount, d.currency, d.stage_id, s.name AS stage
        FROM deals d JOIN deal_stages s ON s.id = d.stage_id
        WHERE d.id = COALESCE(
            CAST(:deal_id AS integer),
            (SELECT id FROM deals WHERE client_id = :client_id AND closed_at IS NULL
             ORDER BY id DESC LIMIT 1))
    )
    SELECT json_build_object(
        'client', json_build_object(
            'id', c.id, 'name', c.name, 'company', c.company, 'notes', c.notes,
            'phones', COALESCE((SELECT json_agg(p.e164 ORDER BY p.id)
                                FROM client_phones p WHERE p.client_id = c.id), '[]'::json),
            'emails', COALESCE((SELECT json_agg(e.email ORDER BY e.id)
                                FROM client_emails e WHERE e.client_id = c.id), '[]'::json),
            'responsible', (SELECT json_build_object('id', u.id, 'name', u.full_name)
                            FROM users u WHERE u.id = c.responsible_id)),
        'deal', (SELECT json_build_object(
                    'id', d.id, 'title', d.title, 'amount', d.amount::text,
                    'currency', d.currency, 'stage', d.stage, 'stage_id', d.stage_id) FROM d),
        'recent', COALESCE((SELECT json_agg(r) FROM (
                    SELECT id, kind, direction, status, occurred_at AS at, subject, talk_seconds
                    FROM communications WHERE client_id = c.id
                    ORDER BY occurred_at DESC, id DESC LIMIT 5) r), '[]'::json),
        'tasks', COALESCE((SELECT json_agg(t) FROM (
                    SELECT id, title, kind, due_at FROM tasks
                    WHERE client_id = c.id AND NOT done
                    ORDER BY due_at ASC NULLS LAST LIMIT 10) t), '[]'::json)
    )
    FROM clients c WHERE c.id = :client_id
    """
)


async def screen_pop(session: AsyncSession, client_id: int, deal_id: int | None) -> dict[str, Any]:
    """What the operator sees while the phone rings: the card, the deal, recent history, tasks."""
    card = await session.scalar(_POP_SQL, {"client_id": client_id, "deal_id": deal_id})
    return dict(card) if card else {}


async def set_agent_state(
    session: AsyncSession, extension: str, state: str, linkedid: str | None, at: datetime
) -> None:
    """Ringing/talking/free as the PBX reports it; a stale 'free' of another call is ignored."""
    stmt = insert(AgentState).values(extension=extension, state=state, linkedid=linkedid, since=at)
    if state == "free":
        # only the call that made the agent busy frees them (calls overlap during transfers)
        stmt = stmt.on_conflict_do_update(
            index_elements=["extension"],
            set_={"state": state, "linkedid": None, "since": at},
            where=(AgentState.linkedid == linkedid) | (AgentState.linkedid.is_(None)),
        )
    else:
        stmt = stmt.on_conflict_do_update(
            index_elements=["extension"], set_={"state": state, "linkedid": linkedid, "since": at}
        )
    await session.execute(stmt)


async def save_active_call(
    session: AsyncSession, linkedid: str, state: dict[str, Any], view: dict[str, Any], at: datetime
) -> None:
    stmt = insert(ActiveCall).values(
        linkedid=linkedid, state=state, view=view, started_at=at, updated_at=at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["linkedid"], set_={"state": state, "view": view, "updated_at": at}
    )
    await session.execute(stmt)


async def drop_active_call(session: AsyncSession, linkedid: str) -> None:
    await session.execute(delete(ActiveCall).where(ActiveCall.linkedid == linkedid))


async def active_calls(session: AsyncSession) -> list[ActiveCall]:
    return list((await session.scalars(select(ActiveCall).order_by(ActiveCall.started_at))).all())
