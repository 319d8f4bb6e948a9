"""A real SMTP server (aiosmtpd) on loopback, in the test's loop, keeping what it is sent.

Shared by the email worker's tests and the browser test of the card's email form.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session


class Mailbox:
    def __init__(self) -> None:
        self.port = 0
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.answers: list[str] = []  # scripted replies to DATA, then 250
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.answers:
            return self.answers.pop(0)
        content = envelope.content or b""
        raw = content.encode() if isinstance(content, str) else content
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope, msg))
        self.arrived.set()
        return "250 OK"


@asynccontextmanager
async def serving_mailbox() -> AsyncIterator[Mailbox]:
    box = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(box, hostname="mx.test"), "127.0.0.1", 0)
    box.port = int(server.sockets[0].getsockname()[1])
    try:
        yield box
    finally:
        server.close()
