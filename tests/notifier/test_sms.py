"""SMS through the real twilio client against a Prism mock of Twilio's own OpenAPI description.

Prism validates every request against the spec (Basic auth, `To`, a well-formed StatusCallback)
and answers with generated data (`-d`: a fresh SID each time). A small TCP proxy in front of it
records the bytes the mock received, so the tests assert what went over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.schemas import ClientCreate
from crm_core.clients.service import create_client
from crm_core.events.types import MessageEvent
from crm_core.messaging import service
from crm_core.messaging.schemas import SmsCreate
from crm_core.users.models import User
from notifier.outbox import OutboxWorker, backoff_seconds
from notifier.settings import NotifierSettings
from notifier.sms import BaseUrlHttpClient, TwilioSms
from tests.conftest import UserFactory
from tests.notifier.outbox_helpers import communication, drain, outbox_row
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / "node_modules" / ".bin" / "prism"
SPEC = ROOT / "tests" / "fixtures" / "twilio" / "twilio_api_v2010.json"  # with its LICENSE
ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "prism-does-not-check-the-password"
FROM = "+15005550006"


@pytest.fixture(scope="session")
def prism() -> Iterator[str]:
    """`prism mock -d` on a free port, up until it answers; the base URL."""
    if not PRISM.exists():
        pytest.fail("Prism is missing: run `make node_modules` (npm ci) first")
    port = free_port()
    proc = subprocess.Popen(
        [str(PRISM), "mock", "-d", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Prism exited with {proc.returncode}")
            try:
                httpx.get(base + "/", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("Prism did not answer within 60 s")
                time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Wire:
    """What went through the proxy: per connection, each direction's bytes in order."""

    url: str
    connections: list[tuple[bytearray, bytearray]] = field(default_factory=list)

    def requests(self) -> list[tuple[str, dict[str, str], dict[str, list[str]]]]:
        """(request line, headers, form fields) of every request the mock received."""
        out = []
        for sent, _ in self.connections:
            data = bytes(sent)
            while data:
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                body, data = rest[:length], rest[length:]
                out.append((lines[0], headers, parse_qs(body.decode())))
        return out

    def sids(self) -> list[str]:
        text = b"".join(received for _, received in self.connections).decode("utf-8", "replace")
        return re.findall(r'"sid":"([A-Za-z0-9]+)"', text)


@pytest.fixture
async def wire(prism: str) -> AsyncIterator[Wire]:
    """A recording TCP proxy in front of Prism."""
    target = prism.rsplit(":", 1)
    host, port = target[0].removeprefix("http://"), int(target[1])
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                log.extend(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(host, port)
        sent, received = bytearray(), bytearray()
        w.connections.append((sent, received))
        for t in (
            asyncio.create_task(pipe(client_r, up_w, sent)),
            asyncio.create_task(pipe(up_r, client_w, received)),
        ):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    w = Wire(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    yield w
    server.close()
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _settings(api_base: str, **more: Any) -> NotifierSettings:
    return NotifierSettings(
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER=FROM,
        TWILIO_API_BASE=api_base,
        PUBLIC_BASE_URL=more.pop("public", "https://crm.example.com"),
        **more,
    )


def _worker(
    sessions: async_sessionmaker[AsyncSession], settings: NotifierSettings, **kw: Any
) -> OutboxWorker:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    return OutboxWorker(sessions, [TwilioSms(settings, timeout=5.0)], **kw)


async def _queue(
    sessions: async_sessionmaker[AsyncSession],
    user: User,
    *,
    text: str = "Your offer is ready",
    max_attempts: int = 3,
    phone: str = "+79161234567",
) -> int:
    async with sessions() as s:
        client = await create_client(s, ClientCreate(name="Ivan", phones=[phone]), region="RU")
        comm = await service.queue_sms(
            s, client.id, SmsCreate(text=text), actor=user, region="RU", max_attempts=max_attempts
        )
        await s.commit()
        return comm.id


async def test_worker_sends_through_twilio_client_to_prism(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, wire: Wire
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user, text="Привет! Your offer is ready")
    events: list[Any] = []

    async def publish(batch: list[Any]) -> None:
        events.extend(batch)

    worker = _worker(sessions, _settings(wire.url), publish=publish)
    assert await worker.run_once() == 1

    [(line, headers, form)] = wire.requests()
    assert line == f"POST /2010-04-01/Accounts/{ACCOUNT}/Messages.json HTTP/1.1"
    assert headers["authorization"].startswith("Basic ")
    assert form == {
        "To": ["+79161234567"],
        "From": [FROM],
        "Body": ["Привет! Your offer is ready"],
        "StatusCallback": ["https://crm.example.com/webhooks/twilio/status"],
    }
    [sid] = wire.sids()
    comm = await communication(sessions, comm_id)
    assert comm.status == "sent" and comm.external_id == sid and sid.startswith(("SM", "MM"))
    assert comm.extra["attempts"] == 1
    row = await outbox_row(sessions, comm_id)
    assert row.state == "done" and row.attempts == 1 and row.finished_at is not None
    # the sender's page hears that it went out
    [event] = [e for e in events if isinstance(e, MessageEvent)]
    assert (event.type, event.status, event.user_ids) == ("message.status", "sent", (user.id,))
    assert worker.stats["sent"] == 1
    # nothing left: a second pass sends nothing more
    assert await worker.run_once() == 0
    assert len(wire.requests()) == 1


async def test_request_prism_rejects_fails_cleanly_without_retrying(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, wire: Wire
) -> None:
    """A malformed StatusCallback: the real API (and Prism) answer 4xx; trying again is futile."""
    user, _ = await make_user()
    comm_id = await _queue(sessions, user, max_attempts=5)
    worker = _worker(sessions, _settings(wire.url, public="not a url"))
    await drain(worker)
    [(_, _, form)] = wire.requests()
    assert form["StatusCallback"] == ["not a url/webhooks/twilio/status"]
    comm = await communication(sessions, comm_id)
    assert comm.status == "failed" and comm.external_id is None
    assert "422" in comm.extra["error"] and comm.extra["attempts"] == 1
    assert comm.extra["error"].startswith("sms.rejected: Twilio answered 422")
    row = await outbox_row(sessions, comm_id)
    assert row.state == "failed" and row.attempts == 1 and "422" in (row.last_error or "")


async def test_missing_to_is_refused_by_the_mock(wire: Wire) -> None:
    """The mock really validates: the same client's request without `To` gets a 422."""
    from twilio.rest import Client

    client = Client(ACCOUNT, TOKEN, http_client=BaseUrlHttpClient(wire.url, timeout=5.0))
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    response = await asyncio.to_thread(
        client.request, "POST", url, data={"From": FROM, "Body": "hi"}
    )
    assert response.status_code == 422
    assert "must have required property 'To'" in response.text


async def test_unreachable_twilio_is_retried_then_marked_failed(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user, max_attempts=3)
    worker = _worker(sessions, _settings(f"http://127.0.0.1:{free_port()}"))
    started = time.monotonic()
    await drain(worker)
    assert time.monotonic() - started < 10
    row = await outbox_row(sessions, comm_id)
    assert row.state == "failed" and row.attempts == 3
    assert (row.last_error or "").startswith("sms.unreachable: Twilio unreachable")
    comm = await communication(sessions, comm_id)
    assert comm.status == "failed" and comm.extra["attempts"] == 3
    assert worker.stats == {"sent": 0, "retried": 2, "failed": 1, "lost": 0}


async def test_a_transient_failure_then_success(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, wire: Wire
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user, max_attempts=3)
    down = _worker(sessions, _settings(f"http://127.0.0.1:{free_port()}"))
    assert await down.run_once() == 1
    assert (await outbox_row(sessions, comm_id)).state == "pending"
    assert (await communication(sessions, comm_id)).status == "queued"
    await drain(_worker(sessions, _settings(wire.url)))
    comm = await communication(sessions, comm_id)
    assert comm.status == "sent" and comm.external_id == wire.sids()[0]
    assert (await outbox_row(sessions, comm_id)).attempts == 2


async def test_two_workers_share_the_work_and_send_each_message_once(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, wire: Wire
) -> None:
    user, _ = await make_user()
    ids = [await _queue(sessions, user, phone=f"+7916123450{i}") for i in range(8)]
    settings = _settings(wire.url)
    a = _worker(sessions, settings, batch_size=3)
    b = _worker(sessions, settings, batch_size=3)
    for _ in range(10):
        claimed = await asyncio.gather(a.run_once(), b.run_once())
        if sum(claimed) == 0:
            break
    assert a.stats["sent"] > 0 and b.stats["sent"] > 0
    assert a.stats["sent"] + b.stats["sent"] == 8
    sent_to = sorted(f["To"][0] for _, _, f in wire.requests())
    assert sent_to == sorted(f"+7916123450{i}" for i in range(8))
    comms = [await communication(sessions, i) for i in ids]
    assert {c.status for c in comms} == {"sent"}
    assert sorted(c.external_id or "" for c in comms) == sorted(wire.sids())


async def test_an_expired_lease_is_taken_over_and_the_stale_result_ignored(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, wire: Wire
) -> None:
    user, _ = await make_user()
    comm_id = await _queue(sessions, user)
    async with sessions() as s:
        [stale] = await service.claim_due(s, ["sms"], limit=5, lease_seconds=0.0)
        await s.commit()
    # the first holder hangs past its lease; another worker takes the row and sends it
    await _worker(sessions, _settings(wire.url)).run_once()
    assert (await communication(sessions, comm_id)).status == "sent"
    async with sessions() as s:
        assert not await service.record_failed(s, stale, error="too late")
        await s.commit()
    assert (await communication(sessions, comm_id)).status == "sent"
    assert (await outbox_row(sessions, comm_id)).attempts == 2


async def test_a_rolled_back_request_sends_nothing(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory, wire: Wire
) -> None:
    user, _ = await make_user()
    async with sessions() as s:
        client = await create_client(
            s, ClientCreate(name="I", phones=["+79161234567"]), region="RU"
        )
        await s.commit()
        await service.queue_sms(s, client.id, SmsCreate(text="hi"), actor=user, region="RU")
        await s.rollback()
    assert await _worker(sessions, _settings(wire.url)).run_once() == 0
    assert wire.requests() == []


async def test_running_worker_wakes_on_commit(
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    wire: Wire,
    database_url: str,
) -> None:
    """NOTIFY on commit wakes the worker at once, long before its (here: 60 s) poll."""
    user, _ = await make_user()
    worker = _worker(sessions, _settings(wire.url), dsn=database_url, poll_seconds=60.0)
    await worker.start()
    try:
        assert worker._bus is not None
        async with asyncio.timeout(10):
            await worker._bus.wait_connected()
        comm_id = await _queue(sessions, user)
        async with asyncio.timeout(10):
            while (await communication(sessions, comm_id)).status != "sent":
                await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert not worker.running


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    assert backoff_seconds(1, base=2, cap=60, rand=lambda: 1.0) == 2
    assert backoff_seconds(3, base=2, cap=60, rand=lambda: 1.0) == 8
    assert backoff_seconds(3, base=2, cap=60, rand=lambda: 0.0) == 4
    assert backoff_seconds(20, base=2, cap=60, rand=lambda: 1.0) == 60


def test_base_url_client_rewrites_only_scheme_and_host() -> None:
    http = BaseUrlHttpClient("http://127.0.0.1:4010/prefix", timeout=1)
    assert (
        http.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?a=1")
        == "http://127.0.0.1:4010/prefix/2010-04-01/Accounts/AC1/Messages.json?a=1"
    )
    with pytest.raises(ValueError, match="TWILIO_API_BASE"):
        BaseUrlHttpClient("api.twilio.com", timeout=1)


def test_prism_spec_is_twilios_messages_api() -> None:
    spec = json.loads(SPEC.read_text())
    assert "/2010-04-01/Accounts/{AccountSid}/Messages.json" in spec["paths"]
