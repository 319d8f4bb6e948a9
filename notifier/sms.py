"""SMS through Twilio's official client (synchronous: it runs in a worker thread).

TWILIO_API_BASE points every request of the client at another host (tests: a Prism mock served from
Twilio's own OpenAPI description), so the real client, its request building and its error
handling are what the tests exercise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from crm_core.messaging.schemas import Claimed
from notifier.outbox import SendError, Sent
from notifier.settings import NotifierSettings

logger = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
INBOUND_PATH = "/webhooks/twilio/sms"
TWILIO_DEFAULT_BASE = "https://api.twilio.com"


def public_url(settings: NotifierSettings, path: str) -> str:
    """The URL Twilio calls (and signs): our public base plus the path."""
    return settings.public_base_url.rstrip("/") + path


# A failed SMS's error starts with one of these codes (then plain words): the pages translate
# the code, the words are for the log and the curious.
SMS_UNREACHABLE = "sms.unreachable"  # no answer from Twilio (retried)
SMS_DEFERRED = "sms.deferred"  # Twilio busy or down: 429, 5xx (retried)
SMS_REJECTED = "sms.rejected"  # Twilio refused this message (a 4xx): a bad number, a limit…


def _transient(status: int) -> bool:
    """429 and 5xx: Twilio is busy or down; any other 4xx: this request will never pass."""
    return status == 429 or status >= 500


def _code(status: int) -> str:
    return SMS_DEFERRED if _transient(status) else SMS_REJECTED


def sms_configured(settings: NotifierSettings) -> bool:
    return bool(
        settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number
    )


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, with every request's scheme and host replaced by `base_url`."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"TWILIO_API_BASE must be an http(s) URL, got {base_url!r}")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class TwilioSms:
    """The outbox's SMS sender."""

    kind = "sms"

    def __init__(self, settings: NotifierSettings, *, timeout: float = 15.0) -> None:
        http: TwilioHttpClient
        if settings.twilio_api_base.rstrip("/") == TWILIO_DEFAULT_BASE:
            http = TwilioHttpClient(timeout=timeout)
        else:
            http = BaseUrlHttpClient(settings.twilio_api_base, timeout=timeout)
        self._client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http
        )
        self._from = settings.twilio_from_number
        self._callback = public_url(settings, STATUS_CALLBACK_PATH)

    async def send(self, item: Claimed) -> Sent:
        return await asyncio.to_thread(
            self._send, str(item.payload["to"]), str(item.payload["body"])
        )

    def _send(self, to: str, body: str) -> Sent:
        sender: dict[str, Any] = (
            {"messaging_service_sid": self._from}
            if self._from.startswith("MG")
            else {"from_": self._from}
        )
        try:
            message = self._client.messages.create(
                to=to, body=body, status_callback=self._callback, **sender
            )
        except TwilioRestException as exc:
            detail = f"{exc.msg} {exc.details}" if exc.details else exc.msg
            raise SendError(
                f"{_code(exc.status)}: Twilio answered {exc.status} (code {exc.code}): {detail}",
                transient=_transient(exc.status),
            ) from None
        except TwilioServiceException as exc:  # the RFC 9457 form of Twilio's errors
            raise SendError(
                f"{_code(exc.status)}: Twilio answered {exc.status} (code {exc.code}): "
                f"{exc.title} {exc.detail or ''}",
                transient=_transient(exc.status),
            ) from None
        except requests.RequestException as exc:
            raise SendError(
                f"{SMS_UNREACHABLE}: Twilio unreachable: {exc}", transient=True
            ) from None
        except TwilioException as exc:
            raise SendError(
                f"{SMS_REJECTED}: Twilio client error: {exc}", transient=False
            ) from None
        sid = message.sid if isinstance(message.sid, str) and message.sid else None
        if sid is None:
            # accepted all the same: sending it again would be a second SMS to the client
            logger.warning("Twilio accepted an SMS to %s but returned no SID", to)
        return Sent(sid, {"provider_status": message.status})
