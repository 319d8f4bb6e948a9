from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import repository as clients_repo
from crm_core.clients.models import Client
from crm_core.clients.service import open_card_for_unknown
from crm_core.communications import repository
from crm_core.communications.models import DIRECTIONS, KINDS, Communication
from crm_core.communications.schemas import CommunicationIn, Logged, NoteCreate
from crm_core.db import collect_event
from crm_core.deals.models import Deal
from crm_core.deals.service import ensure_open_deal
from crm_core.errors import Invalid, NotFound
from crm_core.events.types import CommunicationLogged
from crm_core.models_common import utcnow
from crm_core.phones import InvalidPhone, normalize_phone
from crm_core.texts import FALLBACK, deal_title, lead_source
from crm_core.users.models import User

logger = logging.getLogger(__name__)


class CompanyNumber(Invalid):
    """The number is one of the company's own: it never becomes a client."""


def _e164(raw: str | None, region: str) -> str | None:
    if not raw:
        return None
    try:
        return normalize_phone(raw, region)
    except InvalidPhone as exc:
        raise Invalid(str(exc), code="phone.invalid") from None


async def _resolve_client(
    session: AsyncSession,
    data: CommunicationIn,
    e164: str | None,
    company_numbers: set[str],
    locale: str,
) -> tuple[int, bool]:
    if data.client_id is not None:
        if await session.get(Client, data.client_id) is None:
            raise Invalid(f"client {data.client_id} does not exist", code="client.not_found")
        return data.client_id, False
    if e164 is not None:
        if e164 in company_numbers:
            raise CompanyNumber(f"{e164} is one of the company's own numbers")
        client, created = await open_card_for_unknown(
            session, e164, name=data.contact_name, lead_source=lead_source(locale, data.lead_source)
        )
        return client.id, created
    if data.email:
        owner = await clients_repo.client_id_by_email(session, data.email)
        if owner is not None:
            return owner, False
    raise Invalid("a communication needs a client, a phone number or a known email")


async def log_communication(
    session: AsyncSession,
    data: CommunicationIn,
    *,
    region: str,
    company_numbers: frozenset[str] | set[str] = frozenset(),
    locale: str = FALLBACK,
    logged: Mapping[str, Communication] | None = None,
) -> Logged:
    """Log one contact on the client's deal, exactly once per (kind, external id).

    Unknown number: a new card and a deal in the first stage. No open deal: a new one. A new
    card's lead source and a new deal's title are written in `locale` (DEFAULT_LOCALE).
    `logged`: the communications of this kind already logged, by external id, as the caller
    read them for a batch (`repository.by_external_ids`); None: looked up here.
    """
    if data.kind not in KINDS or data.direction not in DIRECTIONS:
        raise Invalid(f"unknown kind/direction {data.kind!r}/{data.direction!r}")
    if data.external_id:
        existing = (
            logged.get(data.external_id)
            if logged is not None
            else await repository.by_external_id(session, data.kind, data.external_id)
        )
        if existing is not None:
            return Logged(existing, created=False)
    e164 = _e164(data.phone, region)
    client_id, client_created = await _resolve_client(
        session, data, e164, {normalize_phone(n, region) for n in company_numbers}, locale
    )
    deal: Deal | None = None
    deal_created = False
    if data.deal_id is not None:
        deal = await session.get(Deal, data.deal_id)
        if deal is None or deal.client_id != client_id:
            logger.warning(
                "deal %s named by the channel is not the client's: using the open deal",
                data.deal_id,
                extra={"client_id": client_id},
            )
            deal = None
    if deal is None:
        card = await session.get(Client, client_id)
        responsible = card.responsible_id if card else None
        deal, deal_created = await ensure_open_deal(
            session,
            client_id,
            responsible_id=responsible or data.user_id,
            title=deal_title(locale, data.lead_source, e164 or data.email),
        )
    # its fields as they are: asdict deep-copies `extra` (a call's legs, transfers, ring
    # attempts, variables: 74 copies a call in bench/pipeline_cpu_bench.py --profile), and
    # nothing changes those values once they are handed here
    values = {f.name: getattr(data, f.name) for f in fields(data)}
    for key in ("contact_name", "client_id", "deal_id", "lead_source", "phone"):
        values.pop(key)
    values.update(client_id=client_id, deal_id=deal.id, phone=e164, created_at=utcnow())
    comm = await repository.insert_once(session, values)
    if comm is None:
        # a concurrent transaction logged the same event first (we waited for its commit)
        existing = await repository.by_external_id(session, data.kind, data.external_id or "")
        assert existing is not None
        return Logged(existing, created=False)
    collect_event(
        session,
        CommunicationLogged(
            communication_id=comm.id,
            kind=comm.kind,
            direction=comm.direction,
            status=comm.status,
            client_id=client_id,
            deal_id=deal.id,
            user_id=comm.user_id,
            created_client=client_created,
        ),
    )
    return Logged(comm, created=True, client_created=client_created, deal_created=deal_created)


async def add_note(
    session: AsyncSession,
    data: NoteCreate,
    *,
    actor: User,
    region: str,
    locale: str = FALLBACK,
) -> Communication:
    if await clients_repo.get_card(session, data.client_id) is None:
        raise NotFound(f"client {data.client_id} not found", code="client.not_found")
    extra = {"result": data.result} if data.result else {}
    logged = await log_communication(
        session,
        CommunicationIn(
            kind="note",
            direction=data.direction,
            status="done",
            occurred_at=utcnow(),
            client_id=data.client_id,
            deal_id=data.deal_id,
            user_id=actor.id,
            subject=data.subject or data.result,
            body=data.body,
            extra=extra,
        ),
        region=region,
        locale=locale,
    )
    return logged.communication
