"""POST /api/clients/{id}/sms and /email: queued on the client's deal with an outbox row."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.schemas import ClientCreate
from crm_core.clients.service import create_client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal
from crm_core.messaging.models import OutboxMessage
from notifier.settings import NotifierSettings
from tests.conftest import UserFactory
from web.settings import Settings

ACCOUNT = "AC" + "0" * 32


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.notifier = NotifierSettings(
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN="token",
        TWILIO_FROM_NUMBER="+15005550006",
        SMTP_HOST="127.0.0.1",
        SMTP_FROM="crm@sales.example.com",
    )
    return settings


async def _client(sessions: async_sessionmaker[AsyncSession], **fields: Any) -> int:
    async with sessions() as s:
        data = {"name": "Ivan Petrov", "phones": ["+79161234567"], "emails": ["ivan@example.com"]}
        client = await create_client(s, ClientCreate(**{**data, **fields}), region="RU")
        await s.commit()
        return client.id


async def _outbox(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_sms_is_queued_on_the_open_deal_with_an_outbox_row(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    user, headers = await make_user(role="operator", extension="101")
    client_id = await _client(sessions)
    r = await api.post(
        f"/api/clients/{client_id}/sms", json={"text": "Your offer is ready"}, headers=headers
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["kind"] == "sms" and body["direction"] == "out" and body["status"] == "queued"
    assert body["phone"] == "+79161234567" and body["client_id"] == client_id
    assert body["user_id"] == user.id and body["deal_id"] and body["external_id"] is None
    [row] = await _outbox(sessions)
    assert row.kind == "sms" and row.communication_id == body["id"] and row.state == "pending"
    assert row.payload == {"to": "+79161234567", "body": "Your offer is ready"}
    async with sessions() as s:
        deal = await s.get(Deal, body["deal_id"])
    # the deal it opened is titled in DEFAULT_LOCALE (ru in the tests), not the fallback
    assert deal is not None and deal.title == "Исходящее SMS +79161234567"

    # the second message lands on the same open deal
    r2 = await api.post(
        f"/api/clients/{client_id}/sms",
        json={"text": "Reminder", "phone": "8 (916) 123-45-67"},
        headers=headers,
    )
    assert r2.status_code == 202 and r2.json()["deal_id"] == body["deal_id"]


async def test_email_is_queued_with_our_message_id(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    _, headers = await make_user(role="manager")
    client_id = await _client(sessions)
    r = await api.post(
        f"/api/clients/{client_id}/email",
        json={"subject": "Offer", "body": "Dear Ivan,\nplease find…", "to": "IVAN@example.com"},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["kind"] == "email" and body["status"] == "queued"
    assert body["email"] == "ivan@example.com" and body["subject"] == "Offer"
    message_id = body["external_id"]
    assert message_id.startswith("<") and message_id.endswith("@sales.example.com>")
    [row] = await _outbox(sessions)
    assert row.payload["message_id"] == message_id and row.payload["to"] == "ivan@example.com"


@pytest.mark.parametrize(
    ("path", "payload", "detail", "code"),
    [
        ("sms", {"text": ""}, "text", "validation"),
        ("sms", {"text": "   "}, "empty", "sms.empty"),
        ("sms", {"text": "hi", "phone": "not a phone"}, "phone", "phone.invalid"),
        (
            "sms",
            {"text": "hi", "phone": "+79990000000"},
            "is not a phone of client",
            "client.not_their_phone",
        ),
        ("sms", {"text": "x" * 1601}, "text", "validation"),
        (
            "email",
            {"subject": "Hi", "body": "b", "to": "not-an-email"},
            "not an email",
            "email.invalid",
        ),
        (
            "email",
            {"subject": "Hi", "body": "b", "to": "other@example.com"},
            "not an email of",
            "client.not_their_email",
        ),
        ("email", {"subject": "", "body": "b"}, "subject", "validation"),
        (
            "email",
            {"subject": "Hi\r\nBcc: x@evil.test", "body": "b"},
            "one non-empty line",
            "email.bad_subject",
        ),
        ("email", {"subject": "Hi", "body": " \n "}, "body is empty", "email.empty"),
        ("email", {"subject": "Hi"}, "body", "validation"),
    ],
)
async def test_bad_input_is_422_and_writes_nothing(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    path: str,
    payload: dict[str, Any],
    detail: str,
    code: str,
) -> None:
    _, headers = await make_user()
    client_id = await _client(sessions)
    r = await api.post(f"/api/clients/{client_id}/{path}", json=payload, headers=headers)
    assert r.status_code == 422, r.text
    assert detail in r.text
    assert r.json()["code"] == code  # what the page translates
    assert await _outbox(sessions) == []
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Communication)) == 0


async def test_client_without_phone_or_email(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    _, headers = await make_user()
    client_id = await _client(sessions, phones=[], emails=[])
    r = await api.post(f"/api/clients/{client_id}/sms", json={"text": "hi"}, headers=headers)
    assert r.status_code == 422 and "no phone" in r.text
    assert r.json()["code"] == "client.no_phone"
    r = await api.post(
        f"/api/clients/{client_id}/email", json={"subject": "s", "body": "b"}, headers=headers
    )
    assert r.status_code == 422 and "no email" in r.text
    assert r.json()["code"] == "client.no_email"


async def test_unknown_client_and_no_token(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, headers = await make_user()
    r = await api.post("/api/clients/999/sms", json={"text": "hi"}, headers=headers)
    assert r.status_code == 404
    r = await api.post("/api/clients/999/sms", json={"text": "hi"})
    assert r.status_code == 401


@pytest.mark.parametrize("role", ["operator", "manager", "supervisor", "admin"])
async def test_any_role_may_send(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    role: str,
) -> None:
    _, headers = await make_user(role=role)
    client_id = await _client(sessions)
    r = await api.post(f"/api/clients/{client_id}/sms", json={"text": "hi"}, headers=headers)
    assert r.status_code == 202, r.text


async def test_not_configured_is_503(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    settings: Settings,
) -> None:
    settings.notifier = NotifierSettings(TWILIO_ACCOUNT_SID="", SMTP_HOST="")
    _, headers = await make_user()
    client_id = await _client(sessions)
    r = await api.post(f"/api/clients/{client_id}/sms", json={"text": "hi"}, headers=headers)
    assert r.status_code == 503 and "TWILIO" in r.text
    assert r.json()["code"] == "sms.not_configured"
    r = await api.post(
        f"/api/clients/{client_id}/email", json={"subject": "s", "body": "b"}, headers=headers
    )
    assert r.status_code == 503 and "SMTP_HOST" in r.text
    assert r.json()["code"] == "email.not_configured"
