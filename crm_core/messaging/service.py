"""SMS and email on the client's deal: sent through the outbox, received and logged once.

Sending: the communication (status "queued") and its outbox row are written in the caller's
transaction; a worker sends after the commit and reports back here (sent / retry / failed).
Receiving: one communication per provider id (Twilio SID, Message-ID), on the client's open deal;
an unknown number or address gets a new card and a deal in the first stage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from email.utils import make_msgid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import repository as clients_repo
from crm_core.clients.models import Client, ClientEmail
from crm_core.clients.service import add_unless_taken, choose_phone, get_card
from crm_core.communications import repository as comm_repo
from crm_core.communications.models import Communication
from crm_core.communications.schemas import CommunicationIn, Logged
from crm_core.communications.service import log_communication
from crm_core.db import collect_event
from crm_core.deals.models import Deal
from crm_core.errors import Invalid
from crm_core.events.messages import MessageReceivedMessage, MessageStatusMessage
from crm_core.events.types import MessageEvent
from crm_core.inputs import sanitize, sanitize_all
from crm_core.messaging import repository
from crm_core.messaging.models import OutboxMessage
from crm_core.messaging.schemas import Claimed, EmailCreate, SmsCreate
from crm_core.models_common import utcnow
from crm_core.texts import FALLBACK, lead_source
from crm_core.users.models import User

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5
PREVIEW_LENGTH = 200

# Delivery statuses (Twilio's and ours) in the order a message goes through them. A status only
# ever replaces a lower-ranked one: callbacks arrive out of order and more than once.
_RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "sending": 1,
    "receiving": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
    "received": 3,
    "partially_delivered": 3,
    "read": 4,
}
DELIVERY_STATUSES = frozenset(_RANK)

# Deliberately simple: one @, no spaces, a dot in the domain. The mail server is the real judge.
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]+$")


def normalize_email(raw: str) -> str:
    address = raw.strip().lower()
    if len(address) > 254 or not _EMAIL.match(address):
        raise Invalid(f"{raw!r} is not an email address", code="email.invalid")
    return address


def new_message_id(sender: str) -> str:
    """Our Message-ID, fixed before the first attempt so a retry never makes a second identity."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") if "@" in sender else "localhost"
    return make_msgid(domain=domain or "localhost")


def _card_emails(card: Client) -> list[str]:
    addresses = [e.email for e in card.emails]
    addresses += [c.email.strip().lower() for c in card.contacts if c.email]
    return list(dict.fromkeys(addresses))


async def _queue(
    session: AsyncSession,
    message: CommunicationIn,
    payload: dict[str, Any],
    *,
    region: str,
    locale: str,
    max_attempts: int,
) -> Communication:
    """Log an outgoing SMS or email on the client's deal and put it in the outbox (sent after
    the commit)."""
    comm = (await log_communication(session, message, region=region, locale=locale)).communication
    session.add(
        OutboxMessage(
            kind=comm.kind,
            communication_id=comm.id,
            payload=payload,
            state="pending",
            attempts=0,
            max_attempts=max_attempts,
        )
    )
    await session.flush()
    await repository.notify(session, comm.kind)
    return comm


def _outgoing(kind: str, card: Client, actor: User, **fields: Any) -> CommunicationIn:
    """The "queued" communication an outgoing message is logged as until its status follows."""
    return CommunicationIn(
        kind=kind,
        direction="out",
        status="queued",
        occurred_at=utcnow(),
        client_id=card.id,
        user_id=actor.id,
        **fields,
    )


async def queue_sms(
    session: AsyncSession,
    client_id: int,
    data: SmsCreate,
    *,
    actor: User,
    region: str,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    locale: str = FALLBACK,
) -> Communication:
    """An SMS to one of the card's numbers (default: its first), sent after the commit."""
    card = await get_card(session, client_id)
    number = choose_phone(card, data.phone, region)
    text = data.text.strip()
    if not text:
        raise Invalid("the SMS text is empty", code="sms.empty")
    return await _queue(
        session,
        _outgoing("sms", card, actor, phone=number, body=text, lead_source="outbound SMS"),
        {"to": number, "body": text},
        region=region,
        locale=locale,
        max_attempts=max_attempts,
    )


async def queue_email(
    session: AsyncSession,
    client_id: int,
    data: EmailCreate,
    *,
    actor: User,
    sender: str,
    region: str,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    locale: str = FALLBACK,
) -> Communication:
    """An email to one of the card's addresses (default: its first), with our Message-ID."""
    card = await get_card(session, client_id)
    addresses = _card_emails(card)
    if data.to:
        wanted = normalize_email(data.to)
        if wanted not in addresses:
            raise Invalid(
                f"{wanted} is not an email of client {card.id}", code="client.not_their_email"
            )
        addresses = [wanted]
    if not addresses:
        raise Invalid(
            f"{card.name} has no email address: add one to the card first", code="client.no_email"
        )
    subject = data.subject.strip()
    if not subject or "\r" in subject or "\n" in subject:
        raise Invalid("the subject must be one non-empty line", code="email.bad_subject")
    if not data.body.strip():
        raise Invalid("the email body is empty", code="email.empty")
    message_id = new_message_id(sender)
    message = _outgoing(
        "email",
        card,
        actor,
        email=addresses[0],
        subject=subject,
        body=data.body,
        external_id=message_id,
        lead_source="outbound email",
    )
    payload = {"to": addresses[0], "subject": subject, "body": data.body, "message_id": message_id}
    return await _queue(
        session, message, payload, region=region, locale=locale, max_attempts=max_attempts
    )


# --- receiving ---------------------------------------------------------------------------------


async def _responsible(session: AsyncSession, comm: Communication) -> int | None:
    deal = await session.get(Deal, comm.deal_id)
    if deal is not None and deal.responsible_id is not None:
        return deal.responsible_id
    card = await session.get(Client, comm.client_id)
    return card.responsible_id if card is not None else None


def _message_event(
    type: str, comm: Communication, user_id: int | None, payload: dict[str, Any]
) -> MessageEvent:
    """News of one SMS or email for `user_id` (None: nobody named, the supervisors get it)."""
    return MessageEvent(
        type=type,
        communication_id=comm.id,
        kind=comm.kind,
        direction=comm.direction,
        status=comm.status,
        client_id=comm.client_id,
        deal_id=comm.deal_id,
        user_ids=(user_id,) if user_id is not None else (),
        payload=payload,
    )


async def _announce_received(session: AsyncSession, logged: Logged) -> None:
    comm = logged.communication
    responsible = await _responsible(session, comm)
    card = await session.get(Client, comm.client_id)
    payload = {
        "from": comm.phone or comm.email,
        "client_name": card.name if card is not None else None,
        "subject": comm.subject,
        "preview": (comm.body or "")[:PREVIEW_LENGTH],
        "created_client": logged.client_created,
    }
    auth = (comm.extra or {}).get("sender_auth")
    if isinstance(auth, dict):  # email: whether the From address is the sender's own
        payload["sender_verified"] = bool(auth.get("verified"))
    collect_event(session, _message_event(MessageReceivedMessage.TYPE, comm, responsible, payload))


async def log_inbound_sms(
    session: AsyncSession,
    *,
    sid: str,
    sender: str,
    text: str,
    region: str,
    company_numbers: frozenset[str] | set[str] = frozenset(),
    extra: dict[str, Any] | None = None,
    locale: str = FALLBACK,
) -> Logged:
    """One row per MessageSid; the manager responsible for the client hears of a new one."""
    # the sender cannot take it back: kept with what PostgreSQL cannot store replaced
    sid, sender, text = sanitize(sid), sanitize(sender), sanitize(text)
    extra = sanitize_all(extra or {})
    logged = await log_communication(
        session,
        CommunicationIn(
            kind="sms",
            direction="in",
            status="received",
            occurred_at=utcnow(),
            phone=sender,
            body=text,
            external_id=sid,
            extra=dict(extra or {}),
            lead_source="inbound SMS",
        ),
        region=region,
        locale=locale,
        company_numbers=company_numbers,
    )
    if logged.created:
        await _announce_received(session, logged)
    return logged


async def _card_for_email(
    session: AsyncSession, address: str, name: str | None, locale: str
) -> tuple[int, bool]:
    """The card owning the address, or a new one; safe when two deliveries race for it."""
    owner = await clients_repo.client_id_by_email(session, address)
    if owner is not None:
        return owner, False
    client = Client(
        kind="person",
        name=(name or address)[:200],
        lead_source=lead_source(locale, "inbound email"),
        phones=[],
        emails=[ClientEmail(email=address)],
        contacts=[],
    )
    winner = await add_unless_taken(
        session, client, lambda: clients_repo.client_id_by_email(session, address)
    )
    return (client.id, True) if winner is None else (winner, False)


async def log_inbound_email(
    session: AsyncSession,
    *,
    message_id: str,
    sender: str,
    sender_name: str | None,
    subject: str | None,
    body: str,
    region: str,
    extra: dict[str, Any] | None = None,
    locale: str = FALLBACK,
) -> Logged:
    """One row per Message-ID, on the sender's card (a new card for an unknown address)."""
    # refusing it would only make the sending server retry the same bytes forever
    message_id, sender, body = sanitize(message_id), sanitize(sender), sanitize(body)
    sender_name = sanitize(sender_name) if sender_name is not None else None
    subject = sanitize(subject) if subject is not None else None
    extra = sanitize_all(extra or {})
    existing = await comm_repo.by_external_id(session, "email", message_id)
    if existing is not None:
        return Logged(existing, created=False)
    address = normalize_email(sender)
    client_id, client_created = await _card_for_email(session, address, sender_name, locale)
    logged = await log_communication(
        session,
        CommunicationIn(
            kind="email",
            direction="in",
            status="received",
            occurred_at=utcnow(),
            client_id=client_id,
            email=address,
            subject=(subject or "")[:500] or None,
            body=body,
            external_id=message_id,
            extra=dict(extra or {}),
            lead_source="inbound email",
        ),
        region=region,
        locale=locale,
    )
    logged.client_created = client_created
    if logged.created:
        await _announce_received(session, logged)
    return logged


# --- delivery status ---------------------------------------------------------------------------


async def _advance(
    session: AsyncSession, communication_id: int, status: str, extra: dict[str, Any] | None
) -> Communication | None:
    rank = _RANK[status]
    lower = [name for name, r in _RANK.items() if r < rank]
    comm = await repository.advance_status(
        session, communication_id, status, only_from=lower, extra=extra
    )
    if comm is None:
        if extra:
            await repository.merge_extra(session, communication_id, extra)
        return None
    payload = {"to": comm.phone or comm.email, "error": (comm.extra or {}).get("error")}
    collect_event(session, _message_event(MessageStatusMessage.TYPE, comm, comm.user_id, payload))
    return comm


async def apply_delivery_status(
    session: AsyncSession,
    kind: str,
    external_id: str,
    status: str,
    *,
    error_code: str | None = None,
) -> tuple[Communication | None, bool]:
    """A provider's status report: (the message or None when unknown, whether it changed).

    Idempotent and monotonic: a repeated or older status (sent after delivered) changes nothing.
    """
    if status not in _RANK:
        raise Invalid(f"unknown delivery status {status!r}")
    comm = await comm_repo.by_external_id(session, kind, external_id)
    if comm is None:
        return None, False
    extra = {"error_code": error_code} if error_code else None
    changed = await _advance(session, comm.id, status, extra)
    return (changed or comm), changed is not None


# --- the worker's side -------------------------------------------------------------------------


async def claim_due(
    session: AsyncSession, kinds: Sequence[str], *, limit: int, lease_seconds: float
) -> list[Claimed]:
    return await repository.claim(
        session, kinds, limit=limit, lease=timedelta(seconds=lease_seconds)
    )


async def seconds_until_due(session: AsyncSession, kinds: Sequence[str]) -> float | None:
    """How long until the next row becomes claimable, by the database's clock (None: no rows)."""
    when, now = await repository.next_due(session, kinds)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


async def record_sent(
    session: AsyncSession, item: Claimed, *, provider_id: str | None, extra: dict[str, Any]
) -> bool:
    """The provider took the message: outbox row done, communication "sent" with its id."""
    if not await repository.finish(session, item, state="done", error=None):
        logger.warning("outbox %s was re-claimed by another worker; not recording", item.id)
        return False
    details = {**extra, "attempts": item.attempts}
    if provider_id and item.kind == "sms":
        if not await repository.set_external_id(session, item.communication_id, provider_id):
            logger.error("provider id %s already belongs to another message", provider_id)
            details["provider_id"] = provider_id
    await _advance(session, item.communication_id, "sent", details)
    return True


async def record_retry(
    session: AsyncSession, item: Claimed, *, error: str, delay_seconds: float
) -> bool:
    if not await repository.reschedule(
        session, item, error=error, delay=timedelta(seconds=delay_seconds)
    ):
        return False
    await repository.merge_extra(
        session, item.communication_id, {"last_error": error, "attempts": item.attempts}
    )
    return True


async def record_failed(session: AsyncSession, item: Claimed, *, error: str) -> bool:
    if not await repository.finish(session, item, state="failed", error=error):
        return False
    await _advance(
        session, item.communication_id, "failed", {"error": error, "attempts": item.attempts}
    )
    return True
