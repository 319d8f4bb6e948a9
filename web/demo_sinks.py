"""The demo's stand-ins for the outside world's mail and SMS: everything sent is kept to read.

`crm-telephony demo` points SMTP_HOST at `SmtpSink` (a real SMTP server, aiosmtpd, on loopback)
and TWILIO_API_BASE at `twilio_router` (the few paths of Twilio's Messages API the real twilio
client calls, served by the demo's own app): the card's Send goes through the real outbox worker,
the real SMTP and Twilio clients, and arrives here instead of at a client.
`GET /api/demo/messages` lists what arrived.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Annotated

import requests
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter, Form, Request, status
from pydantic import BaseModel, Field
from twilio.request_validator import RequestValidator

from crm_core.models_common import utcnow
from crm_core.outputs import IsoDatetime
from notifier.email import SmtpListener

logger = logging.getLogger(__name__)

KEPT = 200  # the newest messages kept per kind
DELIVERED_AFTER_SECONDS = 1.0  # then the stand-in reports "delivered", as Twilio would
TWILIO_PREFIX = "/demo/twilio"


class SentEmail(BaseModel):
    at: IsoDatetime
    sender: str
    to: list[str]
    subject: str
    body: str


class SentSms(BaseModel):
    at: IsoDatetime
    sid: str
    sender: str
    to: str
    body: str


@dataclass
class DemoOutbox:
    """What the demo's stand-ins received, newest last."""

    emails: deque[SentEmail] = field(default_factory=lambda: deque(maxlen=KEPT))
    sms: deque[SentSms] = field(default_factory=lambda: deque(maxlen=KEPT))


class _SmtpHandler:
    def __init__(self, outbox: DemoOutbox) -> None:
        self._outbox = outbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content.encode() if isinstance(content, str) else content
        msg = message_from_bytes(raw, policy=policy.default)
        body = ""
        if isinstance(msg, EmailMessage):
            part = msg.get_body(preferencelist=("plain", "html"))
            body = str(part.get_content()) if part is not None else ""
        self._outbox.emails.append(
            SentEmail(
                at=utcnow(),
                sender=str(msg.get("From", envelope.mail_from or "")),
                to=[str(r) for r in envelope.rcpt_tos],
                subject=str(msg.get("Subject", "")),
                body=body,
            )
        )
        logger.info("demo mailbox: an email to %s", ", ".join(envelope.rcpt_tos))
        return "250 2.0.0 Kept in the demo's mailbox"


class SmtpSink(SmtpListener):
    """A real SMTP server on loopback keeping every message in `outbox`."""

    def __init__(self, outbox: DemoOutbox, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = _SmtpHandler(outbox)
        super().__init__(host, port, lambda: SMTP(handler, hostname="demo-mailbox"))


# --- Twilio's Messages API, as much as the twilio client's messages.create() uses -------------


class TwilioMessage(BaseModel):
    """Twilio's answer to a created message (the fields the client reads)."""

    sid: str
    account_sid: str
    status: str
    to: str
    from_: str | None = Field(default=None, serialization_alias="from")
    body: str
    messaging_service_sid: str | None = None
    date_created: str
    num_segments: str = "1"
    direction: str = "outbound-api"
    uri: str


_sids = itertools.count(1)
_reports: set[asyncio.Task[None]] = set()


def _post_status(url: str, form: dict[str, str], signature: str) -> None:
    requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)


async def report_delivered(url: str, account_sid: str, sid: str, auth_token: str) -> None:
    """Call the message's StatusCallback with "delivered", signed as Twilio signs it, so the
    card's SMS goes queued -> sent -> delivered through the real webhook."""
    await asyncio.sleep(DELIVERED_AFTER_SECONDS)
    form = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": account_sid}
    signature = RequestValidator(auth_token).compute_signature(url, form)
    try:
        await asyncio.to_thread(_post_status, url, form, signature)
    except requests.RequestException as exc:
        logger.warning("demo SMS: could not report %s delivered: %s", sid, exc)


def outbox_of(request: Request) -> DemoOutbox:
    outbox = getattr(request.app.state, "demo_outbox", None)
    assert isinstance(outbox, DemoOutbox), "the demo's stand-ins are mounted by the demo only"
    return outbox


twilio_router = APIRouter(prefix=TWILIO_PREFIX, include_in_schema=False)


@twilio_router.post(
    "/2010-04-01/Accounts/{account_sid}/Messages.json", status_code=status.HTTP_201_CREATED
)
async def create_message(
    account_sid: str,
    request: Request,
    To: Annotated[str, Form()],
    Body: Annotated[str, Form()] = "",
    From: Annotated[str | None, Form()] = None,
    MessagingServiceSid: Annotated[str | None, Form()] = None,
    StatusCallback: Annotated[str | None, Form()] = None,
) -> TwilioMessage:
    sid = f"SMdemo{next(_sids):06d}{secrets.token_hex(10)}"
    sender = From or MessagingServiceSid or ""
    outbox_of(request).sms.append(SentSms(at=utcnow(), sid=sid, sender=sender, to=To, body=Body))
    logger.info("demo SMS: a message to %s", To)
    if StatusCallback:
        token = request.app.state.container.settings.notifier.twilio_auth_token
        task = asyncio.create_task(report_delivered(StatusCallback, account_sid, sid, token))
        _reports.add(task)
        task.add_done_callback(_reports.discard)
    return TwilioMessage(
        sid=sid,
        account_sid=account_sid,
        status="queued",
        to=To,
        from_=From,
        body=Body,
        messaging_service_sid=MessagingServiceSid,
        date_created=utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000"),
        uri=f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    )
