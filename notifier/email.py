"""Email both ways: sent over SMTP (aiosmtplib), received by an SMTP server of ours (aiosmtpd).

The inbound server runs on the service's event loop (not aiosmtpd's Controller thread), so its
handler shares the loop, and with it the database engine, with everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import Publisher, unit_of_work
from crm_core.errors import Invalid
from crm_core.outbox import service
from crm_core.outbox.schemas import Claimed
from notifier.outbox import SendError, Sent
from notifier.settings import NotifierSettings

logger = logging.getLogger(__name__)

MAX_INBOUND_BYTES = 10 * 1024 * 1024


def email_configured(settings: NotifierSettings) -> bool:
    return bool(settings.smtp_host)


def build_message(settings: NotifierSettings, payload: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = str(payload["to"])
    msg["Subject"] = str(payload["subject"])
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    # ours, stored before the first attempt: every retry carries the same identity
    msg["Message-ID"] = str(payload["message_id"])
    msg.set_content(str(payload["body"]))
    return msg


def _is_transient(exc: aiosmtplib.SMTPException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= r.code < 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500 or exc.code < 200  # 4xx: "try again later"
    # not supported (AUTH, STARTTLS): configuration, not luck
    return not isinstance(exc, aiosmtplib.SMTPNotSupported)


class SmtpEmail:
    """The outbox's email sender."""

    kind = "email"

    def __init__(self, settings: NotifierSettings, *, timeout: float = 30.0) -> None:
        self._settings = settings
        self._timeout = timeout

    async def send(self, item: Claimed) -> Sent:
        s = self._settings
        msg = build_message(s, item.payload)
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPException as exc:
            raise SendError(
                f"SMTP {s.smtp_host}:{s.smtp_port}: {exc}", transient=_is_transient(exc)
            ) from None
        except (OSError, TimeoutError) as exc:
            raise SendError(
                f"SMTP {s.smtp_host}:{s.smtp_port} unreachable: {exc}", transient=True
            ) from None
        return Sent(None, {"smtp_host": s.smtp_host})


# --- receiving ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedEmail:
    message_id: str
    sender: str  # the From address (the envelope's MAIL FROM when the header has none)
    sender_name: str | None
    subject: str | None
    body: str
    recipients: list[str] = field(default_factory=list)


def _text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset, broken transfer encoding
        raw = part.get_payload(decode=True)
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else ""


def parse_email(raw: bytes, *, envelope_from: str | None, recipients: list[str]) -> ReceivedEmail:
    """What the CRM keeps of one received message (pure: tested without sockets)."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    name, address = parseaddr(str(msg.get("From", "")))
    address = address or (envelope_from or "")
    message_id = str(msg.get("Message-ID", "")).strip()
    if not message_id:
        # no id of its own: the same bytes delivered twice still make one row
        message_id = f"<{hashlib.sha256(raw).hexdigest()}@no-message-id>"
    to = [a for _, a in getaddresses([str(v) for v in msg.get_all("To", [])]) if a]
    subject = msg.get("Subject")
    return ReceivedEmail(
        message_id=message_id[:255],
        sender=address,
        sender_name=name or None,
        subject=str(subject) if subject is not None else None,
        body=_text_of(msg).replace("\r\n", "\n"),
        recipients=to or list(recipients),
    )


EmailHandler = Callable[[ReceivedEmail], Awaitable[None]]


def email_logger(
    sessions: async_sessionmaker[AsyncSession],
    publish: Publisher | None,
    *,
    region: str,
) -> EmailHandler:
    """Log each received email as a communication, in its own transaction."""

    async def log(email: ReceivedEmail) -> None:
        async with unit_of_work(sessions, publish) as session:
            logged = await service.log_inbound_email(
                session,
                message_id=email.message_id,
                sender=email.sender,
                sender_name=email.sender_name,
                subject=email.subject,
                body=email.body,
                region=region,
                extra={"to": email.recipients},
            )
        logger.info(
            "email %s from %s %s as communication %s",
            email.message_id,
            email.sender,
            "logged" if logged.created else "already logged",
            logged.communication.id,
        )

    return log


class _Handler:
    def __init__(self, on_email: EmailHandler) -> None:
        self._on_email = on_email

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            email = parse_email(
                raw,
                envelope_from=envelope.mail_from,
                recipients=[str(r) for r in envelope.rcpt_tos],
            )
            await self._on_email(email)
        except Invalid as exc:
            logger.warning("refusing an email: %s", exc)
            return f"550 5.1.7 {exc}"
        except Exception:
            # the sending server keeps the message and tries again later
            logger.exception("could not log a received email")
            return "451 4.3.0 Temporary failure, please try again later"
        return "250 2.0.0 Message accepted"


class InboundSmtpServer:
    """An SMTP server on (host, port) that hands every message to `on_email`."""

    def __init__(
        self,
        host: str,
        port: int,
        on_email: EmailHandler,
        *,
        hostname: str = "crm-telephony",
        data_size_limit: int = MAX_INBOUND_BYTES,
    ) -> None:
        self._host = host
        self._port = port
        self._handler = _Handler(on_email)
        self._hostname = hostname
        self._limit = data_size_limit
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    def _protocol(self) -> SMTP:
        # hostname given: aiosmtpd would otherwise ask DNS for our FQDN, which may block
        return SMTP(self._handler, hostname=self._hostname, data_size_limit=self._limit)

    async def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port)
        logger.info("inbound SMTP listening on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
