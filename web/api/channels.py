"""Which ways of writing to a client work here, so a card can say so before anyone presses Send."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from notifier.email import email_configured
from notifier.sms import sms_configured
from web.deps import CurrentUser, container

router = APIRouter(prefix="/api/messages", tags=["messages"])


class Channel(BaseModel):
    available: bool
    # when not available: a stable reason the pages translate ("not_configured"), and the
    # settings that would make it available
    reason: str | None = None
    settings: list[str] = []


class Channels(BaseModel):
    sms: Channel
    email: Channel


@router.get("/channels")
async def channels(request: Request, user: CurrentUser) -> Channels:
    s = container(request).settings.notifier
    sms = sms_configured(s)
    email = email_configured(s)
    return Channels(
        sms=Channel(available=True)
        if sms
        else Channel(
            available=False,
            reason="not_configured",
            settings=["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"],
        ),
        email=Channel(available=True)
        if email
        else Channel(available=False, reason="not_configured", settings=["SMTP_HOST"]),
    )
