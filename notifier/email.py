"""Email both ways: sent over SMTP (aiosmtplib), received by an SMTP server of ours (aiosmtpd).

The inbound server runs on the service's event loop (not aiosmtpd's Controller thread), so its
handler shares the loop, and with it the database engine, with everything else.

It takes mail only for its own domains (no relaying), for a bounded number of recipients, and
never believes a From header by itself: anyone can write one. A message is "verified" only when a
trusted relay in front (the MX) says SPF, DKIM or DMARC passed for the From domain in its
Authentication-Results header; everything else is filed marked unverified.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import Publisher, unit_of_work
from crm_core.errors import Invalid
from crm_core.messaging import service
from crm_core.messaging.schemas import Claimed
from notifier.outbox import SendError, Sent
from notifier.settings import NotifierSettings

logger = logging.getLogger(__name__)

MAX_INBOUND_BYTES = 10 * 1024 * 1024

# A failed email's error starts with one of these codes (then plain words): the pages translate
# the code, the words are for the log and the curious.
EMAIL_UNREACHABLE = "email.unreachable"  # no connection to SMTP_HOST (retried)
EMAIL_AUTH = "email.auth"  # the mail server refused our log-in
EMAIL_DEFERRED = "email.deferred"  # a 4xx: the server asked to try later (retried)
EMAIL_REJECTED = "email.rejected"  # a 5xx: the server will not take this message


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
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise SendError(_unreachable(s.smtp_host, s.smtp_port, exc), transient=True) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"{EMAIL_AUTH}: the mail server {s.smtp_host}:{s.smtp_port} refused the "
                f"log-in (SMTP_USERNAME, SMTP_PASSWORD): {exc}",
                transient=False,
            ) from None
        except aiosmtplib.SMTPException as exc:
            code = EMAIL_DEFERRED if _is_transient(exc) else EMAIL_REJECTED
            raise SendError(
                f"{code}: the mail server {s.smtp_host}:{s.smtp_port} answered: {exc}",
                transient=_is_transient(exc),
            ) from None
        return Sent(None, {"smtp_host": s.smtp_host})


def _unreachable(host: str, port: int, exc: Exception) -> str:
    """Why nothing reached the mail server, in words, not `[Errno 111] Connect call failed`."""
    if isinstance(exc, (TimeoutError, aiosmtplib.SMTPTimeoutError)):
        why = "did not answer in time"
    elif isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        why = "refused the connection: is SMTP_HOST right and the mail server running?"
    else:
        why = f"could not be reached ({exc})"
    return f"{EMAIL_UNREACHABLE}: the mail server {host}:{port} {why}"


# --- receiving ---------------------------------------------------------------------------------


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _peer_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # an IPv4 relay seen through a dual-stack socket
    return ip


@dataclass(frozen=True, slots=True)
class SenderAuth:
    """Whether the From address is the sender's own, as the trusted relay in front judged it."""

    verified: bool
    verdict: str  # "pass" (verified), "fail" (SPF/DKIM/DMARC failed), "none" (nobody said)
    detail: str  # what decided it, for people
    relay: str | None = None

    def as_extra(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "verdict": self.verdict,
            "detail": self.detail,
            "relay": self.relay,
        }


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """Whose Authentication-Results header is believed (INBOUND_SMTP_TRUSTED_RELAYS) and, when
    given, which authserv-id it must carry (INBOUND_SMTP_AUTHSERV_ID)."""

    trusted: tuple[IpNetwork, ...] = ()
    authserv_id: str = ""

    @classmethod
    def of(cls, relays: Iterable[str], authserv_id: str = "") -> AuthPolicy:
        return cls(
            tuple(ipaddress.ip_network(r.strip(), strict=False) for r in relays if r.strip()),
            authserv_id.strip().lower(),
        )

    def trusts(self, peer: str | None) -> bool:
        ip = _peer_ip(peer) if peer else None
        return ip is not None and any(ip in net for net in self.trusted)


_COMMENT = re.compile(r"\([^()]*\)")


def parse_auth_results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """RFC 8601: `mx.example.com; spf=pass smtp.mailfrom=a.org; dkim=pass header.d=a.org` ->
    ("mx.example.com", [("spf", "pass", {"smtp.mailfrom": "a.org"}), ("dkim", …)])."""
    text = _COMMENT.sub(" ", value)
    parts = [p.split() for p in text.split(";")]
    authserv = parts[0][0].lower() if parts and parts[0] else ""
    results = []
    for tokens in parts[1:]:
        if not tokens or "=" not in tokens[0]:
            continue  # "none": the relay checked nothing
        method, _, result = tokens[0].partition("=")
        props = {}
        for token in tokens[1:]:
            key, sep, val = token.partition("=")
            if sep:
                props[key.lower()] = val.strip('"').lower()
        results.append((method.split("/")[0].lower(), result.lower(), props))
    return authserv, results


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (DMARC): the same domain, or one a subdomain of the other."""
    domain = domain.rpartition("@")[2].rstrip(".")
    return bool(domain) and (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


def sender_auth(
    msg: EmailMessage, from_address: str, *, peer: str | None, policy: AuthPolicy
) -> SenderAuth:
    """The verdict on `from_address`: only a trusted relay's Authentication-Results count."""
    if not policy.trusts(peer):
        return SenderAuth(False, "none", f"not received through a trusted relay ({peer})", peer)
    from_domain = from_address.rpartition("@")[2].lower().rstrip(".")
    for header in msg.get_all("Authentication-Results", []):
        authserv, results = parse_auth_results(str(header))
        if policy.authserv_id and authserv != policy.authserv_id:
            continue  # not our relay's (a sender may write such a header into the message)
        # the topmost one of ours is the relay's own verdict on this delivery
        passed, failed = [], []
        for method, result, props in results:
            if method == "dmarc":
                if result == "pass":
                    return SenderAuth(True, "pass", "dmarc=pass", peer)
                if result == "fail":
                    return SenderAuth(False, "fail", "dmarc=fail", peer)
            elif method in ("dkim", "spf"):
                key = ("header.d", "header.i") if method == "dkim" else ("smtp.mailfrom",)
                domain = next((props[k] for k in key if k in props), "")
                if result == "pass" and _aligned(domain, from_domain):
                    passed.append(f"{method}=pass {domain}")
                elif result in ("fail", "softfail", "permerror"):
                    failed.append(f"{method}={result}")
        if passed:
            return SenderAuth(True, "pass", ", ".join(passed), peer)
        if failed:
            return SenderAuth(False, "fail", ", ".join(failed), peer)
        return SenderAuth(False, "none", f"no SPF or DKIM pass for {from_domain}", peer)
    return SenderAuth(False, "none", "no Authentication-Results from the relay", peer)


@dataclass(frozen=True, slots=True)
class ReceivedEmail:
    message_id: str
    sender: str  # the From address (the envelope's MAIL FROM when the header has none)
    sender_name: str | None
    subject: str | None
    body: str
    recipients: list[str] = field(default_factory=list)
    auth: SenderAuth = SenderAuth(False, "none", "not checked")


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


def parse_email(
    raw: bytes,
    *,
    envelope_from: str | None,
    recipients: list[str],
    peer: str | None = None,
    policy: AuthPolicy | None = None,
) -> ReceivedEmail:
    """What the CRM keeps of one received message (pure: tested without sockets); `peer` is
    the address that handed it over, judged by `policy` (none: unverified)."""
    msg = message_from_bytes(raw, policy=email_policy.default)
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
        auth=sender_auth(msg, address, peer=peer, policy=policy or AuthPolicy()),
    )


EmailHandler = Callable[[ReceivedEmail], Awaitable[None]]


def email_logger(
    sessions: async_sessionmaker[AsyncSession],
    publish: Publisher | None,
    *,
    region: str,
    locale: str = "en",
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
                extra={"to": email.recipients, "sender_auth": email.auth.as_extra()},
                locale=locale,
            )
        logger.info(
            "email %s from %s (%s) %s as communication %s",
            email.message_id,
            email.sender,
            "verified" if email.auth.verified else f"unverified: {email.auth.detail}",
            "logged" if logged.created else "already logged",
            logged.communication.id,
        )

    return log


class _Handler:
    def __init__(
        self,
        on_email: EmailHandler,
        domains: Iterable[str],
        max_recipients: int,
        policy: AuthPolicy,
    ) -> None:
        self._on_email = on_email
        self._domains = frozenset(d.strip().lower().rstrip(".") for d in domains if d.strip())
        self._max_recipients = max_recipients
        self._policy = policy

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        # ours to take: mail for our own domains only, never a relay for the world
        _, at, domain = address.rpartition("@")
        if not at or domain.lower().rstrip(".") not in self._domains:
            return "550 5.7.1 Relaying denied: not a domain of this server"
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return "452 4.5.3 Too many recipients"  # the sender sends the rest later
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        try:
            email = parse_email(
                raw,
                envelope_from=envelope.mail_from,
                recipients=[str(r) for r in envelope.rcpt_tos],
                peer=str(peer) if peer is not None else None,
                policy=self._policy,
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


class SmtpListener:
    """An aiosmtpd server listening on (host, port): start, the bound port, stop."""

    def __init__(self, host: str, port: int, protocol: Callable[[], SMTP]) -> None:
        self.host = host
        self._port = port
        self._protocol = protocol
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self._port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)


class InboundSmtpServer(SmtpListener):
    """An SMTP server on (host, port) that hands every message to `on_email`."""

    def __init__(
        self,
        host: str,
        port: int,
        on_email: EmailHandler,
        *,
        domains: Iterable[str],
        max_recipients: int = 100,
        policy: AuthPolicy | None = None,
        hostname: str = "crm-telephony",
        data_size_limit: int = MAX_INBOUND_BYTES,
    ) -> None:
        handler = _Handler(on_email, domains, max_recipients, policy or AuthPolicy())
        # hostname given: aiosmtpd would otherwise ask DNS for our FQDN, which may block
        super().__init__(
            host, port, lambda: SMTP(handler, hostname=hostname, data_size_limit=data_size_limit)
        )

    async def start(self) -> None:
        if self._server is None:
            await super().start()
            logger.info("inbound SMTP listening on %s:%s", self.host, self.port)
