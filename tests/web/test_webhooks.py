"""Twilio's webhooks over the app: signatures, inbound SMS once per SID, monotonic statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twilio.request_validator import RequestValidator

from crm_core.clients.models import Client, ClientPhone
from crm_core.communications.models import Communication
from crm_core.communications.schemas import CommunicationIn
from crm_core.communications.service import log_communication
from crm_core.deals.models import Deal, DealStage
from crm_core.events.types import MessageEvent
from notifier.channels import messages_for, user_channel
from notifier.settings import NotifierSettings
from tests.conftest import UserFactory
from tests.seeding import managers_client
from tests.web.conftest import publishing_into
from web.container import Container
from web.settings import Settings

TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://crm.example.com"
ACCOUNT = "AC" + "1" * 32


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.notifier = NotifierSettings(
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER="+15005550006",
        PUBLIC_BASE_URL=PUBLIC + "/",
    )
    return settings


@pytest.fixture
def container(container: Container, published: list[Any]) -> Container:
    return publishing_into(container, published)


def _sign(path: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC + path, params)}


async def _post(
    api: httpx.AsyncClient, path: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.post(
        path, data=params, headers=_sign(path, params) if headers is None else headers
    )


def _inbound(
    sid: str = "SM" + "a" * 32, sender: str = "+79161234567", body: str = "Hi"
) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT,
        "From": sender,
        "To": "+74951112233",
        "Body": body,
        "NumMedia": "0",
    }


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


async def test_inbound_sms_from_unknown_number_opens_card_and_deal_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], published: list[Any]
) -> None:
    r = await _post(api, "/webhooks/twilio/sms", _inbound(body="Do you deliver to Kazan?"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/xml") and "<Response>" in r.text
    # Twilio retries a webhook it thinks failed: the same SID stays one row
    r = await _post(api, "/webhooks/twilio/sms", _inbound(body="Do you deliver to Kazan?"))
    assert r.status_code == 200
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()
        assert (comm.kind, comm.direction, comm.status) == ("sms", "in", "received")
        assert comm.external_id == "SM" + "a" * 32 and comm.body == "Do you deliver to Kazan?"
        assert comm.phone == "+79161234567" and comm.extra["to"] == "+74951112233"
        phone = await s.scalar(select(ClientPhone))
        assert phone is not None and phone.client_id == comm.client_id
        deal = await s.get(Deal, comm.deal_id)
        assert deal is not None and deal.client_id == comm.client_id
        # the service's own words on the shared records, in DEFAULT_LOCALE (ru here)
        assert deal.title == "Входящее SMS +79161234567"
        card = await s.get(Client, comm.client_id)
        assert card is not None and card.lead_source == "Входящее SMS"
        stage = await s.get(DealStage, deal.stage_id)
        assert stage is not None and stage.position == min(
            (await s.scalars(select(DealStage.position))).all()
        )
    assert await _count(sessions, Client) == 1
    received = [e for e in published if isinstance(e, MessageEvent)]
    assert len(received) == 1 and received[0].type == "message.received"
    # nobody is responsible for a brand-new card yet: the supervisors hear of it
    assert [m.channel for m in messages_for(received)] == ["supervisors"]


async def test_inbound_sms_with_nul_bytes_is_kept_with_them_replaced(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], published: list[Any]
) -> None:
    """Twilio does not resend a message we answered with 500: it would be lost."""
    params = _inbound(body="price\x00list please\x00")
    params["FromCity"] = "Kazan\x00"  # stored among the extras Twilio sends
    r = await _post(api, "/webhooks/twilio/sms", params)
    assert r.status_code == 200, r.text
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()
        assert comm.body == "price\ufffdlist please\ufffd" and comm.phone == "+79161234567"


async def test_inbound_sms_reaches_the_responsible_manager(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    published: list[Any],
) -> None:
    manager, _, client = await managers_client(sessions, make_user, phones=["+79031234567"])
    r = await _post(api, "/webhooks/twilio/sms", _inbound(sender="89031234567", body="Call me"))
    assert r.status_code == 200, r.text
    async with sessions() as s:
        [comm] = (await s.scalars(select(Communication))).all()
        assert comm.client_id == client.id
    [event] = [e for e in published if isinstance(e, MessageEvent)]
    [message] = messages_for([event])
    assert message.channel == user_channel(manager.id) and message.type == "message.received"
    assert message.payload["preview"] == "Call me" and message.payload["client_name"] == "Olga"
    assert message.payload["communication_id"] == comm.id


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        "wrong-token",
        "other-url",
        "tampered",
    ],
)
async def test_forged_or_missing_signature_is_403_and_writes_nothing(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    headers: dict[str, str] | str,
) -> None:
    params = _inbound()
    if headers == "wrong-token":
        headers = _sign("/webhooks/twilio/sms", params, token="0" * 32)
    elif headers == "other-url":
        headers = _sign("/webhooks/twilio/status", params)
    elif headers == "tampered":
        headers = _sign("/webhooks/twilio/sms", params)
        params = {**params, "Body": "transfer all the money"}
    assert isinstance(headers, dict)
    for path in ("/webhooks/twilio/sms", "/webhooks/twilio/status"):
        r = await _post(api, path, {**params, "MessageStatus": "delivered"}, headers=headers)
        assert r.status_code == 403, r.text
    assert await _count(sessions, Communication) == 0
    assert await _count(sessions, Client) == 0


async def test_no_auth_token_configured_refuses_everything(
    api: httpx.AsyncClient, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    params = _inbound()
    headers = _sign("/webhooks/twilio/sms", params)
    settings.notifier = NotifierSettings(TWILIO_AUTH_TOKEN="", PUBLIC_BASE_URL=PUBLIC)
    r = await _post(api, "/webhooks/twilio/sms", params, headers=headers)
    assert r.status_code == 403 and "TWILIO_AUTH_TOKEN" in r.text
    assert await _count(sessions, Communication) == 0


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"From": "+79161234567", "Body": "x"}, 422, "MessageSid"),
        ({"MessageSid": "SM1", "Body": "x"}, 422, "From"),
        ({"MessageSid": "SM1", "From": "garbage!", "Body": "x"}, 422, "phone"),
    ],
)
async def test_bad_inbound_form_is_rejected_clearly(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    params: dict[str, str],
    status: int,
    detail: str,
) -> None:
    r = await _post(api, "/webhooks/twilio/sms", params)
    assert r.status_code == status, r.text
    assert detail in r.text
    assert await _count(sessions, Communication) == 0


async def test_signed_but_not_a_form_is_415(api: httpx.AsyncClient) -> None:
    # a JSON body signed over no parameters: authentic, but not what Twilio sends
    path = "/webhooks/twilio/sms"
    r = await api.post(path, json={"MessageSid": "SM1"}, headers=_sign(path, {}))
    assert r.status_code == 415


async def _outbound(sessions: async_sessionmaker[AsyncSession], sid: str, status: str) -> int:
    async with sessions() as s:
        logged = await log_communication(
            s,
            CommunicationIn(
                kind="sms",
                direction="out",
                status=status,
                occurred_at=datetime.now(UTC),
                phone="+79161234567",
                body="Your order shipped",
                external_id=sid,
            ),
            region="RU",
        )
        await s.commit()
        return logged.communication.id


async def _status_of(sessions: async_sessionmaker[AsyncSession], comm_id: int) -> Communication:
    async with sessions() as s:
        comm = await s.get(Communication, comm_id)
        assert comm is not None
        return comm


def _callback(sid: str, status: str, **more: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": "+15005550006",
        "To": "+79161234567",
        **more,
    }


async def test_status_callbacks_move_forward_only(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], published: list[Any]
) -> None:
    sid = "SM" + "b" * 32
    comm_id = await _outbound(sessions, sid, "sent")
    steps = [
        ("queued", False, "sent"),  # late: never moves back
        ("delivered", True, "delivered"),
        ("delivered", False, "delivered"),  # repeated: idempotent
        ("sent", False, "delivered"),  # out of order
        ("undelivered", False, "delivered"),  # a final status stays final
    ]
    for status, changed, expected in steps:
        r = await _post(api, "/webhooks/twilio/status", _callback(sid, status))
        assert r.status_code == 200, r.text
        assert r.json() == {"communication_id": comm_id, "status": expected, "changed": changed}
        assert (await _status_of(sessions, comm_id)).status == expected
    assert [e.status for e in published if isinstance(e, MessageEvent)] == ["delivered"]


async def test_failed_status_keeps_the_error_code(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sid = "SM" + "c" * 32
    comm_id = await _outbound(sessions, sid, "queued")
    r = await _post(api, "/webhooks/twilio/status", _callback(sid, "sending"))
    assert r.json()["status"] == "sending"
    r = await _post(
        api, "/webhooks/twilio/status", _callback(sid, "undelivered", ErrorCode="30003")
    )
    assert r.json() == {"communication_id": comm_id, "status": "undelivered", "changed": True}
    comm = await _status_of(sessions, comm_id)
    assert comm.status == "undelivered" and comm.extra["error_code"] == "30003"


async def test_status_of_unknown_sid_and_bad_status(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    r = await _post(api, "/webhooks/twilio/status", _callback("SM" + "d" * 32, "delivered"))
    assert r.status_code == 200
    assert r.json() == {"communication_id": None, "status": None, "changed": False}
    await _outbound(sessions, "SM" + "e" * 32, "sent")
    r = await _post(api, "/webhooks/twilio/status", _callback("SM" + "e" * 32, "exploded"))
    assert r.status_code == 422 and "exploded" in r.text
    r = await _post(api, "/webhooks/twilio/status", {"MessageSid": "SM" + "e" * 32})
    assert r.status_code == 422 and "MessageStatus" in r.text
