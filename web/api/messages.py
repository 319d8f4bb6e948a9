"""Sending an SMS or an email from a client card: queued now, sent by the outbox worker."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from crm_core.communications.schemas import CommunicationOut
from crm_core.inputs import Id
from crm_core.messaging import service
from crm_core.messaging.schemas import EmailCreate, SmsCreate
from notifier.email import email_configured
from notifier.sms import sms_configured
from web.deps import CurrentUser, Session, container
from web.errors import CodedHTTPException

router = APIRouter(prefix="/api/clients", tags=["messages"])


@router.post(
    "/{client_id}/sms", status_code=status.HTTP_202_ACCEPTED, response_model_exclude_unset=True
)
async def send_sms(
    client_id: Id, data: SmsCreate, request: Request, session: Session, user: CurrentUser
) -> CommunicationOut:
    """The SMS is logged on the client's deal as "queued"; its status follows delivery."""
    s = container(request).settings
    if not sms_configured(s.notifier):
        raise CodedHTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="SMS is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
            "TWILIO_FROM_NUMBER)",
            code="sms.not_configured",
        )
    comm = await service.queue_sms(
        session,
        client_id,
        data,
        actor=user,
        region=s.core.phone_default_region,
        max_attempts=s.notifier.outbox_max_attempts,
        locale=s.core.default_locale,
    )
    return CommunicationOut.from_row(comm)


@router.post(
    "/{client_id}/email", status_code=status.HTTP_202_ACCEPTED, response_model_exclude_unset=True
)
async def send_email(
    client_id: Id, data: EmailCreate, request: Request, session: Session, user: CurrentUser
) -> CommunicationOut:
    """The email is logged on the client's deal as "queued" with its Message-ID."""
    s = container(request).settings
    if not email_configured(s.notifier):
        raise CodedHTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="email is not configured (SMTP_HOST)",
            code="email.not_configured",
        )
    comm = await service.queue_email(
        session,
        client_id,
        data,
        actor=user,
        sender=s.notifier.smtp_from,
        region=s.core.phone_default_region,
        max_attempts=s.notifier.outbox_max_attempts,
        locale=s.core.default_locale,
    )
    return CommunicationOut.from_row(comm)
