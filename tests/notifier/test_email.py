"""Email both ways over real SMTP on loopback: aiosmtplib -> aiosmtpd, and into our own server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client, ClientEmail
from crm_core.clients.schemas import ClientCreate
from crm_core.clients.service import create_client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal
from crm_core.events.models import EventLogEntry
from crm_core.events.types import MessageEvent
from crm_core.messaging import service
from crm_core.messaging.schemas import EmailCreate
from crm_core.users.models import User
from notifier.channels import messages_for, user_channel
from notifier.email import (
    AuthPolicy,
    InboundSmtpServer,
    SmtpEmail,
    email_logger,
    parse_auth_results,
    parse_email,
    sender_auth,
)
from notifier.hub import EventHub
from notifier.outbox import OutboxWorker
from notifier.settings import NotifierSettings
from tests.conftest import UserFactory
from tests.mailbox import Mailbox
from tests.notifier.outbox_helpers import communication, drain, outbox_row
from tests.ports import free_port
from tests.seeding import managers_client
from web.app import create_app
from web.container import Container
from web.settings import Settings

SENDER = "sales@crm.example.com"


def _settings(port: int) -> NotifierSettings:
    return NotifierSettings(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_FROM=SENDER)


def _worker(sessions: async_sessionmaker[AsyncSession], port: int, **kw: Any) -> OutboxWorker:
    return OutboxWorker(
        sessions,
        [SmtpEmail(_settings(port), timeout=5.0)],
        backoff_base=0.01,
        backoff_max=0.05,
        **kw,
    )


async def _queue(
    sessions: async_sessionmaker[AsyncSession], user: User, *, max_attempts: int = 3
) -> int:
    async with sessions() as s:
        client = await create_client(
            s, ClientCreate(name="Ivan", emails=["ivan@example.com"]), region="RU"
        )
        comm = await service.queue_email(
            s,
            client.id,
            EmailCreate(subject="Your offer", body="Dear Ivan,\nthe offer is attached."),
            actor=user,
            sender=SENDER,
            region="RU",
            max_attempts=max_attempts,
        )
        await s.commit()
        return comm.id


async def test_worker_sends_the_email_with_our_message_id(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, mailbox: Mailbox
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user)
    message_id = (await communication(sessions, comm_id)).external_id
    assert message_id and message_id.endswith("@crm.example.com>")
    worker = _worker(sessions, mailbox.port)
    assert await worker.run_once() == 1
    [(envelope, msg)] = mailbox.messages
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == ["ivan@example.com"]
    assert msg["Message-ID"] == message_id and msg["Subject"] == "Your offer"
    assert msg["From"] == SENDER and msg["To"] == "ivan@example.com"
    body = msg.get_body(preferencelist=("plain",))
    assert (
        body is not None
        and body.get_content().replace("\r\n", "\n").strip() == "Dear Ivan,\nthe offer is attached."
    )
    comm = await communication(sessions, comm_id)
    assert comm.status == "sent" and comm.external_id == message_id
    assert (await outbox_row(sessions, comm_id)).state == "done"


async def test_a_temporary_refusal_is_retried_with_the_same_message_id(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, mailbox: Mailbox
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user)
    mailbox.answers = ["451 4.3.0 Try again later"]
    await drain(_worker(sessions, mailbox.port))
    [(_, msg)] = mailbox.messages
    comm = await communication(sessions, comm_id)
    assert comm.status == "sent" and msg["Message-ID"] == comm.external_id
    row = await outbox_row(sessions, comm_id)
    assert row.attempts == 2 and row.state == "done" and "451" in (row.last_error or "")


async def test_a_permanent_refusal_fails_at_once(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, mailbox: Mailbox
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user, max_attempts=5)
    mailbox.answers = ["554 5.7.1 Rejected as spam"]
    await drain(_worker(sessions, mailbox.port))
    comm = await communication(sessions, comm_id)
    assert comm.status == "failed" and "554" in comm.extra["error"]
    assert comm.extra["error"].startswith("email.rejected: the mail server 127.0.0.1:")
    assert (await outbox_row(sessions, comm_id)).attempts == 1
    assert mailbox.messages == []


async def test_closed_smtp_port_is_retried_then_failed(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user, max_attempts=3)
    worker = _worker(sessions, free_port())
    started = time.monotonic()
    await drain(worker)
    assert time.monotonic() - started < 10
    row = await outbox_row(sessions, comm_id)
    assert row.state == "failed" and row.attempts == 3
    comm = await communication(sessions, comm_id)
    assert comm.status == "failed" and comm.extra["attempts"] == 3
    assert worker.stats["retried"] == 2 and worker.stats["failed"] == 1
    # the card shows a reason it can translate, not `[Errno 111] Connect call failed`
    assert comm.extra["error"].startswith("email.unreachable: the mail server 127.0.0.1:")
    assert "refused the connection" in comm.extra["error"]
    assert "Errno" not in comm.extra["error"]


# --- inbound -----------------------------------------------------------------------------------


@pytest.fixture
async def inbound(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[InboundSmtpServer, list[Any]]]:
    events: list[Any] = []

    async def publish(batch: list[Any]) -> None:
        events.extend(batch)

    server = InboundSmtpServer(
        "127.0.0.1", 0, email_logger(sessions, publish, region="RU"), domains=["crm.example.com"]
    )
    await server.start()
    yield server, events
    await server.stop()


def _letter(
    message_id: str | None = "<abc-1@mail.example.org>",
    sender: str = "Olga K <Olga@Mail.Example.org>",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "sales@crm.example.com"
    msg["Subject"] = "Price for 300 units?"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content("Hello,\nwhat is the price for 300 units?\nOlga")
    return msg


async def _send_in(server: InboundSmtpServer, msg: EmailMessage) -> None:
    await aiosmtplib.send(msg, hostname="127.0.0.1", port=server.port, timeout=5)


async def test_inbound_email_news_is_written_with_it_and_reaches_every_instance_once(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # as the service composes it: the email's news in the logging transaction (hub.transactional)
    hubs = [EventHub(database_url, supervisor_flush_seconds=0.05) for _ in range(2)]
    for hub in hubs:
        await hub.start()
    server = InboundSmtpServer(
        "127.0.0.1",
        0,
        email_logger(sessions, hubs[0].transactional, region="RU"),
        domains=["crm.example.com"],
    )
    await server.start()
    try:
        async with asyncio.timeout(10):
            for hub in hubs:
                await hub.wait_ready()
        boards = [hub.subscribe({"supervisors"}) for hub in hubs]
        for board in boards:
            board.go_live(0)
        await _send_in(server, _letter())
        await _send_in(server, _letter())  # the same Message-ID again: logged once, told once
        for board in boards:
            types: list[str] = []
            async with asyncio.timeout(10):
                while "message.received" not in types:
                    types.extend(json.loads(f)["type"] for f in await board.next_frames())
            assert sorted(types) == ["communication.logged", "message.received"]
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.4):
                    await board.next_frames()
        async with sessions() as s:
            logged = await s.scalar(
                select(func.count())
                .select_from(EventLogEntry)
                .where(EventLogEntry.type == "message.received")
            )
            # written by the logging transaction itself (not published after its commit): a
            # row's xmin is the transaction that inserted it
            same_transaction = await s.scalar(
                text(
                    "SELECT count(*) FROM event_log e JOIN communications c ON c.xmin = e.xmin"
                    " WHERE e.type = 'message.received' AND c.kind = 'email'"
                )
            )
        assert logged == 1
        assert same_transaction == 1
    finally:
        await server.stop()
        for hub in hubs:
            await hub.stop()


async def test_inbound_email_from_unknown_sender_opens_a_card_once(
    sessions: async_sessionmaker[AsyncSession],
    inbound: tuple[InboundSmtpServer, list[Any]],
) -> None:
    server, events = inbound
    await _send_in(server, _letter())
    await _send_in(server, _letter())  # the same Message-ID delivered twice
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()
        assert (comm.kind, comm.direction, comm.status) == ("email", "in", "received")
        assert comm.external_id == "<abc-1@mail.example.org>"
        assert comm.subject == "Price for 300 units?" and "300 units" in (comm.body or "")
        assert comm.email == "olga@mail.example.org"
        client = await s.get(Client, comm.client_id)
        assert client is not None and client.name == "Olga K"
        emails = (await s.scalars(select(ClientEmail.email))).all()
        assert list(emails) == ["olga@mail.example.org"]
        deal = await s.get(Deal, comm.deal_id)
        assert deal is not None and deal.client_id == client.id
    [event] = [e for e in events if isinstance(e, MessageEvent)]
    assert event.type == "message.received" and event.payload["created_client"] is True


async def test_an_inbound_email_opens_its_card_and_deal_in_the_service_locale(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # the running service passes DEFAULT_LOCALE (web/parts/messaging.py)
    server = InboundSmtpServer(
        "127.0.0.1",
        0,
        email_logger(sessions, None, region="RU", locale="ru"),
        domains=["crm.example.com"],
    )
    await server.start()
    try:
        await _send_in(server, _letter())
    finally:
        await server.stop()
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()
        client = await s.get(Client, comm.client_id)
        deal = await s.get(Deal, comm.deal_id)
    assert client is not None and client.lead_source == "Входящее письмо"
    assert deal is not None and deal.title == "Входящее письмо olga@mail.example.org"


async def test_inbound_email_lands_on_the_known_clients_deal_and_pops_to_the_manager(
    sessions: async_sessionmaker[AsyncSession],
    inbound: tuple[InboundSmtpServer, list[Any]],
    make_user: UserFactory,
) -> None:
    server, events = inbound
    manager, _, client = await managers_client(
        sessions, make_user, emails=["olga@mail.example.org"]
    )
    await _send_in(server, _letter(message_id=None))
    await _send_in(server, _letter(message_id=None))  # no Message-ID: the content identifies it
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()
        assert comm.client_id == client.id and comm.external_id
        assert await s.scalar(select(func.count()).select_from(Client)) == 1
    [message] = messages_for([e for e in events if isinstance(e, MessageEvent)])
    assert message.channel == user_channel(manager.id)
    assert message.payload["subject"] == "Price for 300 units?"


async def test_inbound_email_with_nul_bytes_is_kept_with_them_replaced(
    sessions: async_sessionmaker[AsyncSession],
    inbound: tuple[InboundSmtpServer, list[Any]],
) -> None:
    """A 451 would make the sender retry the same bytes forever: keep it, cleaned, with a 250."""
    server, _ = inbound
    raw = (
        b"From: =?utf-8?q?Olga=00K?= <olga@mail.example.org>\r\n"
        b"To: sales@crm.example.com\r\nSubject: =?utf-8?q?Price=00list?=\r\n"
        b"Message-ID: <nul-1@mail.example.org>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\nHello=00 there\r\n"
    )
    await aiosmtplib.send(
        raw,
        sender="olga@mail.example.org",
        recipients=["sales@crm.example.com"],
        hostname="127.0.0.1",
        port=server.port,
        timeout=5,
    )
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()
        assert comm.subject == "Price\ufffdlist" and comm.body == "Hello\ufffd there\n"
        client = await s.get(Client, comm.client_id)
        assert client is not None and client.name == "Olga\ufffdK"


async def test_inbound_email_with_a_bad_sender_is_refused(
    sessions: async_sessionmaker[AsyncSession], inbound: tuple[InboundSmtpServer, list[Any]]
) -> None:
    server, _ = inbound
    with pytest.raises(aiosmtplib.SMTPDataError) as err:
        await aiosmtplib.send(
            _letter(sender="nobody"),
            sender="nobody@invalid",
            recipients=["sales@crm.example.com"],
            hostname="127.0.0.1",
            port=server.port,
            timeout=5,
        )
    assert err.value.code == 550
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Communication)) == 0


def test_parse_email_html_only_and_missing_headers() -> None:
    raw = (
        b"From: someone@example.org\r\nSubject: =?utf-8?b?0J/RgNC40LLQtdGC?=\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hi</p>\r\n"
    )
    parsed = parse_email(raw, envelope_from="bounce@example.org", recipients=["a@b.c"])
    assert parsed.sender == "someone@example.org" and parsed.subject == "Привет"
    assert "<p>Hi</p>" in parsed.body and parsed.recipients == ["a@b.c"]
    assert parsed.message_id.endswith("@no-message-id>")
    assert parse_email(raw, envelope_from=None, recipients=[]).message_id == parsed.message_id


async def test_lifespan_starts_and_stops_worker_and_inbound_server(
    container: Container, settings: Settings, mailbox: Mailbox, make_user: UserFactory
) -> None:
    """The app's lifespan wires both: an email queued is sent, one received is logged."""
    port = free_port()
    settings.notifier = NotifierSettings(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=mailbox.port,
        SMTP_FROM=SENDER,
        INBOUND_SMTP_ENABLED=True,
        INBOUND_SMTP_PORT=port,
    )
    user, _ = await make_user()
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        messaging = app.state.container.messaging
        assert messaging.worker is not None and messaging.worker.kinds == ["email"]
        assert messaging.inbound is not None and messaging.inbound.port == port
        comm_id = await _queue(container.sessions, user)
        async with asyncio.timeout(10):
            while (await communication(container.sessions, comm_id)).status != "sent":
                await asyncio.sleep(0.02)
        await aiosmtplib.send(_letter(), hostname="127.0.0.1", port=port, timeout=5)
        async with container.sessions() as s:
            kinds = (await s.scalars(select(Communication.direction))).all()
            assert sorted(kinds) == ["in", "out"]
    assert app.state.container.messaging.worker is None
    with pytest.raises(OSError):
        await aiosmtplib.send(_letter(), hostname="127.0.0.1", port=port, timeout=2)


# --- inbound limits: our domains, few recipients, a From proven by the relay or marked --------


async def test_mail_for_other_domains_is_refused_and_recipients_are_capped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    server = InboundSmtpServer(
        "127.0.0.1",
        0,
        email_logger(sessions, None, region="RU"),
        domains=["crm.example.com"],
        max_recipients=5,
    )
    await server.start()
    try:
        for stranger in ("victim@elsewhere.org", "postmaster", "x@crm.example.com.evil.org"):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await aiosmtplib.send(
                    _letter(),
                    sender="a@b.org",
                    recipients=[stranger],
                    hostname="127.0.0.1",
                    port=server.port,
                    timeout=5,
                )
            assert [r.code for r in refused.value.recipients] == [550]
        many = [f"sales{i}@crm.example.com" for i in range(8)] + ["x@Crm.Example.com"]
        errors, _ = await aiosmtplib.send(
            _letter(), recipients=many, hostname="127.0.0.1", port=server.port, timeout=5
        )
        assert sorted(errors) == sorted(many[5:])  # past the fifth: "later", not accepted
        assert {e.code for e in errors.values()} == {452}
    finally:
        await server.stop()
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()  # only the one in our domain
        assert comm.external_id == "<abc-1@mail.example.org>"


def test_the_accepted_domains_default_to_the_reply_address_domain() -> None:
    assert NotifierSettings(SMTP_FROM="sales@Crm.Example.com").accepted_domains() == [
        "crm.example.com"
    ]
    assert NotifierSettings(INBOUND_SMTP_DOMAINS=["a.org", "b.org."]).accepted_domains() == [
        "a.org",
        "b.org",
    ]


RELAY_ID = "mx.crm.example.com"
PASSED = f"{RELAY_ID}; spf=pass smtp.mailfrom=mail.example.org; dkim=pass header.d=mail.example.org"


def _relayed(results: str | None, sender: str = "Olga K <olga@mail.example.org>") -> EmailMessage:
    msg = _letter(sender=sender)
    if results is not None:
        msg["Authentication-Results"] = results
    return msg


def _verdict(
    results: str | None, peer: str = "10.1.2.3", policy: AuthPolicy | None = None
) -> tuple[bool, str]:
    """(verified, verdict) of a letter from Olga carrying `results`, handed over by `peer`."""
    parsed = parse_email(
        _relayed(results).as_bytes(),
        envelope_from=None,
        recipients=[],
        peer=peer,
        policy=policy or AuthPolicy.of(["10.0.0.0/8"], RELAY_ID),
    )
    return parsed.auth.verified, parsed.auth.verdict


def test_only_a_trusted_relays_authentication_results_verify_a_sender() -> None:
    assert _verdict(PASSED) == (True, "pass")
    assert _verdict(PASSED, "::ffff:10.1.2.3") == (True, "pass")
    # the same header from anywhere else was written by the sender: worth nothing
    assert _verdict(PASSED, "192.0.2.9") == (False, "none")
    assert _verdict(PASSED, policy=AuthPolicy()) == (False, "none")  # no relay trusted
    # another authserv-id (a header the sender wrote, passed along by the relay) does not count
    assert _verdict(PASSED.replace(RELAY_ID, "evil.example")) == (False, "none")
    # a pass for another domain than the From's is no proof for it
    assert _verdict(
        f"{RELAY_ID}; spf=pass smtp.mailfrom=evil.org; dkim=pass header.d=evil.org"
    ) == (
        False,
        "none",
    )
    assert _verdict(f"{RELAY_ID}; dmarc=fail header.from=mail.example.org") == (False, "fail")
    assert _verdict(f"{RELAY_ID}; spf=softfail smtp.mailfrom=x.org") == (False, "fail")
    assert _verdict(f"{RELAY_ID}; dmarc=pass (p=reject) header.from=x") == (True, "pass")
    assert _verdict(None) == (False, "none")
    # a subdomain signing for its parent aligns (relaxed), as DMARC has it
    assert _verdict(f"{RELAY_ID}; dkim=pass header.d=news.mail.example.org") == (True, "pass")
    assert parse_auth_results(f"{RELAY_ID} 1; dkim/1=pass (good) header.i=@A.org; none") == (
        RELAY_ID,
        [("dkim", "pass", {"header.i": "@a.org"})],
    )
    unknown_peer = sender_auth(
        _relayed(PASSED), "olga@mail.example.org", peer=None, policy=AuthPolicy.of(["0.0.0.0/0"])
    )
    assert unknown_peer.verified is False


async def test_a_forged_from_is_filed_on_the_card_marked_unverified(
    sessions: async_sessionmaker[AsyncSession],
    container: Container,
    api: Any,
    make_user: UserFactory,
) -> None:
    """The probe: mail claiming a client's address, straight to our port. It is still on the
    card (it may be real), but the card says the sender is unverified; through the trusted relay
    with an aligned DKIM pass it is not marked."""
    _, headers, client = await managers_client(
        sessions, make_user, emails=["olga@mail.example.org"]
    )
    events: list[Any] = []

    async def publish(batch: list[Any]) -> None:
        events.extend(batch)

    def server(policy: AuthPolicy) -> InboundSmtpServer:
        return InboundSmtpServer(
            "127.0.0.1",
            0,
            email_logger(sessions, publish, region="RU"),
            domains=["crm.example.com"],
            policy=policy,
        )

    direct = server(AuthPolicy.of(["10.0.0.0/8"], RELAY_ID))  # the relay is elsewhere
    relayed = server(AuthPolicy.of(["127.0.0.1"], RELAY_ID))  # the relay is this peer
    await direct.start()
    await relayed.start()
    try:
        forged = _relayed(PASSED)  # the forger even wrote a passing header
        forged.replace_header("Message-ID", "<forged@x>")
        await _send_in(direct, forged)
        genuine = _relayed(PASSED)
        genuine.replace_header("Message-ID", "<genuine@x>")
        await _send_in(relayed, genuine)
    finally:
        await direct.stop()
        await relayed.stop()
    timeline = await api.get(f"/api/clients/{client.id}/communications", headers=headers)
    items = {i["external_id"]: i for i in timeline.json()["items"]}
    assert items["<forged@x>"]["sender_verified"] is False
    assert items["<forged@x>"]["extra"]["sender_auth"]["verdict"] == "none"
    assert items["<genuine@x>"]["sender_verified"] is True
    received = [e for e in events if isinstance(e, MessageEvent) and e.type == "message.received"]
    assert sorted(e.payload["sender_verified"] for e in received) == [False, True]
