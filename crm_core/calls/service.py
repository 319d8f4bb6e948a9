"""Calls on the CRM side: who is calling, the screen-pop card, logging a finished call once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import ActiveCall, AgentState
from crm_core.calls.schemas import CallerContext, CallRecord
from crm_core.clients import repository as clients_repo
from crm_core.clients.models import Client
from crm_core.clients.service import open_card_for_unknown
from crm_core.communications import repository as comms_repo
from crm_core.communications.schemas import CommunicationIn, Logged
from crm_core.communications.service import log_communication
from crm_core.deals import repository as deals_repo
from crm_core.deals.models import Deal, DealStage
from crm_core.deals.service import ensure_open_deal
from crm_core.phones import try_normalize_phone
from crm_core.tasks.models import Task
from crm_core.tasks.service import create_callback_once
from crm_core.users.models import User

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
    return CallerContext(client.id, deal.id, created)


def _real_name(name: str | None) -> str | None:
    if not name or name.strip().lower() in ("<unknown>", "unknown", "anonymous", ""):
        return None
    return name.strip()


async def users_by_extension(session: AsyncSession, extensions: list[str]) -> dict[str, User]:
    if not extensions:
        return {}
    rows = await session.scalars(select(User).where(User.extension.in_(extensions)))
    return {u.extension: u for u in rows if u.extension}


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
        )
    return logged


async def screen_pop(session: AsyncSession, client_id: int, deal_id: int | None) -> dict[str, Any]:
    """What the operator sees while the phone rings: the card, the deal, recent history, tasks."""
    card = await clients_repo.get_card(session, client_id)
    if card is None:
        return {}
    deal = (
        await session.get(Deal, deal_id)
        if deal_id
        else await deals_repo.open_deal_of(session, client_id)
    )
    stage = await session.get(DealStage, deal.stage_id) if deal else None
    responsible = await session.get(User, card.responsible_id) if card.responsible_id else None
    recent = await comms_repo.recent(session, client_id, limit=5)
    tasks = (
        await session.scalars(
            select(Task)
            .where(Task.client_id == client_id, Task.done.is_(False))
            .order_by(Task.due_at.asc().nulls_last())
            .limit(10)
        )
    ).all()
    return {
        "client": {
            "id": card.id,
            "name": card.name,
            "company": card.company,
            "phones": [p.e164 for p in card.phones],
            "emails": [e.email for e in card.emails],
            "notes": card.notes,
            "responsible": (
                {"id": responsible.id, "name": responsible.full_name} if responsible else None
            ),
        },
        "deal": (
            {
                "id": deal.id,
                "title": deal.title,
                "amount": str(deal.amount),
                "currency": deal.currency,
                "stage": stage.name if stage else None,
                "stage_id": deal.stage_id,
            }
            if deal
            else None
        ),
        "recent": [
            {
                "id": c.id,
                "kind": c.kind,
                "direction": c.direction,
                "status": c.status,
                "at": c.occurred_at.isoformat(),
                "subject": c.subject,
                "talk_seconds": c.talk_seconds,
            }
            for c in recent
        ],
        "tasks": [
            {
                "id": t.id,
                "title": t.title,
                "kind": t.kind,
                "due_at": t.due_at.isoformat() if t.due_at else None,
            }
            for t in tasks
        ],
    }


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


async def agent_states(session: AsyncSession) -> dict[str, AgentState]:
    return {a.extension: a for a in await session.scalars(select(AgentState))}


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
