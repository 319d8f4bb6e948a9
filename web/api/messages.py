"""Sending an SMS or an email from a client card: queued now, sent by the outbox worker."""

from __future__ import annotations

from typing import TypedDict

from fastapi import APIRouter, Request, status

from crm_core.communications.schemas import CommunicationOut
from crm_core.inputs import Id
from crm_core.messaging import service
from crm_core.messaging.schemas import EmailCreate, SmsCreate
from notifier.email import email_configured
from notifier.sms import sms_configured
from web.deps import CurrentUser, Session, container
from web.errors import CodedHTTPException
from web.settings import Settings

router = APIRouter(prefix="/api/clients", tags=["messages"])


class _Sending(TypedDict):
    region: str
    max_attempts: int
    locale: str


def _sending(s: Settings) -> _Sending:
    """The settings every outgoing message is queued with."""
    return {
        "region": s.core.phone_default_region,
        "max_attempts": s.notifier.outbox_max_attempts,
        "locale": s.core.default_locale,
    }


def _available(configured: bool, detail: str, code: str) -> None:
    """A channel whose provider is not configured answers 503 rather than queueing for nobody."""
    if not configured:
        raise CodedHTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=detail, code=code)


@router.post(
    "/{client_id}/sms", status_code=status.HTTP_202_ACCEPTED, response_model_exclude_unset=True
)
async def send_sms(
    client_id: Id, data: SmsCreate, request: Request, session: Session, user: CurrentUser
) -> CommunicationOut:
    """The SMS is logged on the client's deal as "queued"; its status follows delivery."""
    s = container(request).settings
    _available(
        sms_configured(s.notifier),
        "SMS is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER)",
        "sms.not_configured",
    )
    comm = await service.queue_sms(session, client_id, data, actor=user, **_sending(s))
    return CommunicationOut.from_row(comm)


@router.post(
    "/{client_id}/email", status_code=status.HTTP_202_ACCEPTED, response_model_exclude_unset=True
)
async def send_email(
    client_id: Id, data: EmailCreate, request: Request, session: Session, user: CurrentUser
) -> CommunicationOut:
    """The email is logged on the client's deal as "queued" with its Message-ID."""
    s = container(request).settings
    _available(
        email_configured(s.notifier), "email is not configured (SMTP_HOST)", "email.not_configured"
    )
    comm = await service.queue_email(
        session, client_id, data, actor=user, sender=s.notifier.smtp_from, **_sending(s)
    )
    return CommunicationOut.from_row(comm)
