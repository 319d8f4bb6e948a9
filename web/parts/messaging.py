"""SMS and email in the running service: the outbox worker and the inbound SMTP server.

The worker runs in every instance (claims are row-locked, so instances share the work); it starts
when OUTBOX_ENABLED and at least one channel is configured: Twilio credentials and a From number
for SMS, SMTP_HOST for email. The inbound SMTP server starts when INBOUND_SMTP_ENABLED.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import Publisher
from notifier.email import (
    AuthPolicy,
    InboundSmtpServer,
    SmtpEmail,
    email_configured,
    email_logger,
)
from notifier.outbox import OutboxWorker, Sender
from notifier.sms import TwilioSms, sms_configured
from web.settings import Settings

logger = logging.getLogger(__name__)


class Messaging:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        sessions: async_sessionmaker[AsyncSession],
        publish: Publisher,
    ) -> None:
        self._settings = settings
        self._database_url = database_url
        self._sessions = sessions
        self._publish = publish
        self.worker: OutboxWorker | None = None
        self.inbound: InboundSmtpServer | None = None

    def senders(self) -> list[Sender]:
        s = self._settings.notifier
        senders: list[Sender] = []
        if sms_configured(s):
            senders.append(TwilioSms(s))
        if email_configured(s):
            senders.append(SmtpEmail(s))
        return senders

    async def start(self) -> None:
        s = self._settings.notifier
        senders = self.senders() if s.outbox_enabled else []
        if senders:
            self.worker = OutboxWorker(
                self._sessions,
                senders,
                publish=self._publish,
                dsn=self._database_url,
                backoff_base=s.outbox_retry_seconds,
            )
            await self.worker.start()
        if s.inbound_smtp_enabled:
            self.inbound = InboundSmtpServer(
                s.inbound_smtp_host,
                s.inbound_smtp_port,
                email_logger(
                    self._sessions,
                    self._publish,
                    region=self._settings.core.phone_default_region,
                    locale=self._settings.core.default_locale,
                ),
                domains=s.accepted_domains(),
                max_recipients=s.inbound_smtp_max_recipients,
                policy=AuthPolicy.of(s.inbound_smtp_trusted_relays, s.inbound_smtp_authserv_id),
            )
            await self.inbound.start()

    async def stop(self) -> None:
        if self.inbound is not None:
            await self.inbound.stop()
            self.inbound = None
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
