"""What a newcomer to the demo needs: its log-ins and where the email and SMS it sends arrive.

Mounted by `crm-telephony demo` only (web/demo.py): elsewhere these paths are 404. Public, as
the sign-in page shows the log-ins before anyone is signed in; the demo's data is made up.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from web.demo_sinks import SentEmail, SentSms, outbox_of

router = APIRouter(prefix="/api/demo", tags=["demo"])

MESSAGES_PATH = "/api/demo/messages"


class DemoLogin(BaseModel):
    role: Literal["operator", "manager", "supervisor", "admin"]
    login: str
    password: str
    full_name: str
    extension: str | None


class DemoInfo(BaseModel):
    """The demo's log-ins and its stand-ins for the outside world."""

    logins: list[DemoLogin]
    pbx: Literal["replay", "asterisk"]  # recorded Asterisk 22 traffic, or the kit's Asterisk
    messages_url: str  # every email and SMS the demo sent, as JSON
    smtp: str  # host:port of the demo's mailbox (SMTP_HOST points there)
    sms_api: str  # the Twilio stand-in TWILIO_API_BASE points at


class DemoMessages(BaseModel):
    """What the demo's mailbox and SMS stand-in received, newest first."""

    emails: list[SentEmail]
    sms: list[SentSms]


@router.get("/info")
async def demo_info(request: Request) -> DemoInfo:
    info = request.app.state.demo_info
    assert isinstance(info, DemoInfo)
    return info


@router.get("/messages")
async def demo_messages(request: Request) -> DemoMessages:
    outbox = outbox_of(request)
    return DemoMessages(emails=list(reversed(outbox.emails)), sms=list(reversed(outbox.sms)))
