"""Request bodies are bounded, and a request that needs a token is refused before its body is
read (hardening issue, item 3). The app is driven at the ASGI level so the test sees exactly how
much of a body the service asked for."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message

from notifier.settings import NotifierSettings
from tests.conftest import UserFactory
from web.app import create_app
from web.container import Container
from web.settings import WebSettings

LIMIT = 4096
PUBLIC_LIMIT = 1024
CHUNK = 1024


@pytest.fixture
def app(container: Container) -> ASGIApp:
    container.settings.web = WebSettings(
        SECRET_KEY=container.settings.web.secret_key,
        MAX_BODY_BYTES=LIMIT,
        PUBLIC_MAX_BODY_BYTES=PUBLIC_LIMIT,
    )
    return create_app(container=container)


class Sent:
    """What a client sent and what it got back, at the ASGI level."""

    def __init__(self) -> None:
        self.chunks_read = 0
        self.messages: list[Message] = []

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


async def call(
    app: ASGIApp,
    path: str,
    chunks: int,
    *,
    headers: dict[str, str] | None = None,
    declare_length: bool,
    content_type: str = "application/json",
) -> Sent:
    """POST `chunks` chunks of CHUNK bytes; with or without Content-Length (else chunked)."""
    sent = Sent()
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw.append((b"content-type", content_type.encode()))
    if declare_length:
        raw.append((b"content-length", str(chunks * CHUNK).encode()))
    else:
        raw.append((b"transfer-encoding", b"chunked"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("203.0.113.9", 50000),
        "server": ("test", 80),
    }

    async def receive() -> Message:
        if sent.chunks_read >= chunks:
            return {"type": "http.disconnect"}
        sent.chunks_read += 1
        more = sent.chunks_read < chunks
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": more}

    async def send(message: Message) -> None:
        sent.messages.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_declared_length_over_the_limit_is_413_before_reading(
    app: ASGIApp, make_user: UserFactory
) -> None:
    _, headers = await make_user(role="admin")
    sent = await call(app, "/api/clients", 300, headers=headers, declare_length=True)
    assert sent.status == 413
    assert sent.json == {
        "detail": f"request body too large: at most {LIMIT} bytes are accepted here"
    }
    assert sent.chunks_read == 0


async def test_a_chunked_body_is_cut_off_at_the_limit(app: ASGIApp, make_user: UserFactory) -> None:
    _, headers = await make_user(role="admin")
    sent = await call(app, "/api/clients", 300, headers=headers, declare_length=False)
    assert sent.status == 413
    assert "request body too large" in sent.json["detail"]
    # read up to the limit and one chunk past it, never the remaining 295
    assert sent.chunks_read == LIMIT // CHUNK + 1
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.body"]


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("token", [None, "not-a-session"], ids=["no token", "bad token"])
async def test_no_valid_token_is_refused_before_the_body_is_read(
    app: ASGIApp, declare_length: bool, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # within the limit, so only authentication stands in the way
    sent = await call(app, "/api/clients", 3, headers=headers, declare_length=declare_length)
    assert sent.status == 401
    assert sent.chunks_read == 0
    assert "token" in sent.json["detail"]


async def test_routes_without_a_token_take_the_smaller_public_limit(
    app: ASGIApp, container: Container
) -> None:
    sent = await call(app, "/api/auth/token", 2, declare_length=True)
    assert sent.status == 413 and sent.chunks_read == 0
    # a signed Twilio webhook is read (to check its signature) only up to the public limit
    container.settings.notifier = NotifierSettings(TWILIO_AUTH_TOKEN="twilio-test-token")
    sent = await call(
        app,
        "/webhooks/twilio/sms",
        3,
        headers={"X-Twilio-Signature": "c2lnbmF0dXJl"},
        declare_length=False,
        content_type="application/x-www-form-urlencoded",
    )
    assert sent.status == 413 and sent.chunks_read == PUBLIC_LIMIT // CHUNK + 1


async def test_bodies_within_the_limits_still_work(app: ASGIApp, make_user: UserFactory) -> None:
    await make_user(role="admin", login="root", password="pw-root")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
        r = await api.post("/api/auth/token", data={"username": "root", "password": "pw-root"})
        assert r.status_code == 200
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        created = await api.post(
            "/api/clients",
            json={"kind": "person", "name": "Ann", "notes": "x" * 2000},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        big = await api.post(
            "/api/clients",
            json={"kind": "person", "name": "Ann", "notes": "x" * 5000},
            headers=headers,
        )
        assert big.status_code == 413


async def test_default_limits_are_about_a_megabyte() -> None:
    web = WebSettings()
    assert web.max_body_bytes == 1024 * 1024
    assert web.public_max_body_bytes < web.max_body_bytes
