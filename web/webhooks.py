"""Twilio's webhooks: inbound SMS and delivery status callbacks, both signed by Twilio.

Every request must carry a valid X-Twilio-Signature, computed by Twilio with our auth token over
the public URL it called (PUBLIC_BASE_URL + path) and the form fields; anything else is refused
with 403 before a single row is read or written.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from crm_core.communications.service import CompanyNumber
from crm_core.messaging import service
from notifier.sms import public_url
from web.deps import Session, container

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_FORM = "application/x-www-form-urlencoded"


async def signed_form(request: Request) -> FormData:
    """The request's form fields, once Twilio's signature over them and our URL is verified."""
    settings = container(request).settings.notifier
    if not settings.twilio_auth_token:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="Twilio webhooks are off: TWILIO_AUTH_TOKEN is unset"
        )
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing X-Twilio-Signature")
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    form = await request.form() if content_type == _FORM else FormData()
    url = public_url(settings, request.url.path)
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        logger.warning("refused a Twilio webhook with a bad signature for %s", url)
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid X-Twilio-Signature")
    if content_type != _FORM:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=f"expected {_FORM}, got {content_type!r}"
        )
    return form


def _required(form: FormData, *names: str) -> dict[str, str]:
    """Each name's value (the first of its aliases found); 422 naming what is missing."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        aliases = name.split("|")
        value = next((str(form[a]).strip() for a in aliases if str(form.get(a, "")).strip()), "")
        if value:
            values[aliases[0]] = value
        else:
            missing.append(aliases[0])
    if missing:
        raise HTTPException(
            422,
            detail=f"missing form field(s): {', '.join(missing)}",
        )
    return values


class DeliveryStatusOut(BaseModel):
    """Twilio reads only the 2xx; the body says what the callback did, for logs and tests."""

    communication_id: int | None  # None: no SMS of ours has this MessageSid
    status: str | None  # the SMS's status now
    changed: bool  # False for a repeated or late status


@router.post(
    "/sms",
    include_in_schema=True,
    # TwiML, not JSON: said so in /openapi.json
    response_class=Response,
    responses={200: {"content": {"text/xml": {}}, "description": "empty TwiML: no reply"}},
)
async def inbound_sms(request: Request, session: Session) -> Response:
    """An SMS to one of our numbers: logged once per MessageSid on the sender's card and deal."""
    form = await signed_form(request)
    fields = _required(form, "MessageSid|SmsSid", "From")
    s = container(request).settings
    media = [str(form[k]) for k in sorted(form.keys()) if k.startswith("MediaUrl")]
    extra: dict[str, Any] = {"to": str(form.get("To", "")) or None}
    if media:
        extra["media"] = media
    try:
        logged = await service.log_inbound_sms(
            session,
            sid=fields["MessageSid"],
            sender=fields["From"],
            text=str(form.get("Body", "")),
            region=s.core.phone_default_region,
            company_numbers=set(s.core.company_numbers),
            extra=extra,
            locale=s.core.default_locale,
        )
    except CompanyNumber:
        logger.warning("SMS %s comes from one of our own numbers: not logged", fields["MessageSid"])
        return Response(EMPTY_TWIML, media_type="text/xml")
    logger.info(
        "SMS %s from %s %s",
        fields["MessageSid"],
        logged.communication.phone,
        "logged" if logged.created else "already logged",
    )
    # an empty TwiML answer: no automatic reply
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/status")
async def delivery_status(request: Request, session: Session) -> DeliveryStatusOut:
    """A status of one of our SMS; repeated or late ones (sent after delivered) change nothing."""
    form = await signed_form(request)
    fields = _required(form, "MessageSid|SmsSid", "MessageStatus|SmsStatus")
    comm, changed = await service.apply_delivery_status(
        session,
        "sms",
        fields["MessageSid"],
        fields["MessageStatus"].lower(),
        error_code=str(form.get("ErrorCode", "")) or None,
    )
    if comm is None:
        logger.warning(
            "status %s for unknown SMS %s", fields["MessageStatus"], fields["MessageSid"]
        )
    return DeliveryStatusOut(
        communication_id=comm.id if comm else None,
        status=comm.status if comm else None,
        changed=changed,
    )
