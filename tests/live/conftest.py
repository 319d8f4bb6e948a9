"""A real Asterisk 22 in the test loop, and the real service following it.

One kit Asterisk per test session (asterisk/build.sh, asterisk/kit/run.sh on free ports). Each
test gets `live`: a raw AMI session of its own to place calls, and `live.start_service()` to run
the real service (create_app's lifespan: AMI listener, tracker, pipeline, database, FastAGI router
on the kit's AGI port, websocket hub) on uvicorn. After each test the PBX is left idle (every
channel gone) and the AstDB flags the test set are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import ClientConnection, connect

from crm_core.calls.models import ActiveCall
from crm_core.clients.schemas import ClientCreate
from crm_core.clients.service import create_client
from crm_core.communications.models import Communication
from crm_core.deals.service import ensure_open_deal
from crm_core.presence.settings import PresenceSettings
from crm_core.schedules.schemas import IntervalIn, ScheduleIn
from crm_core.schedules.service import replace_schedule
from crm_core.tasks.models import Task
from crm_core.users.models import User
from crm_core.users.sessions import start_session
from telephony.asterisk_kit import Kit, build
from telephony.settings import TelephonySettings
from tests.conftest import UserFactory
from tests.live.kit import Event, Predicate, RawAmi, caller_channel, inbound
from tests.web.live import LiveService, live_service
from web.container import Container
from web.settings import Settings

ALL_WEEK = ScheduleIn(
    intervals=[IntervalIn(weekday=d, start=time(0), end=time(0)) for d in range(7)]
)
SETTLE = 90.0  # seconds: the longest a kit call here lasts, with room for a loaded machine
LOGGED = 30.0  # seconds from the end of a call at the PBX to its row, on a loaded machine


@pytest.fixture(scope="session")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    kit = Kit(tmp_path_factory.mktemp("pbx"), build())
    kit.start()
    try:
        yield kit
    finally:
        kit.stop()


def _about(msg: dict[str, Any]) -> str | None:
    """The Linkedid a websocket message is about (call events carry it in two places)."""
    payload = msg.get("payload") or {}
    linkedid = (payload.get("call") or {}).get("linkedid") or payload.get("linkedid")
    return str(linkedid) if linkedid else None


class Socket:
    """An agent's browser tab: the websocket with its default channels, every message kept."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(), name=f"ws-{name}")

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                msg = json.loads(raw)
                msg["_arrival"] = asyncio.get_running_loop().time()
                if msg.get("type") == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                self.messages.append(msg)
                self._changed.set()

    def calls(self, type_: str, linkedid: str | None = None) -> list[dict[str, Any]]:
        """Messages of `type_` (about the call `linkedid` if given), in arrival order."""
        return [
            m
            for m in self.messages
            if m.get("type") == type_ and (linkedid is None or _about(m) == linkedid)
        ]

    async def wait_for(
        self, type_: str, linkedid: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = self.calls(type_, linkedid)
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Live:
    """What a live test drives: the PBX (`kit`, `ami`), the service, the database."""

    def __init__(
        self,
        kit: Kit,
        settings: Settings,
        container: Container,
        sessions: async_sessionmaker[AsyncSession],
        make_user: UserFactory,
    ) -> None:
        self.kit = kit
        self.settings = settings
        self.container = container
        self.sessions = sessions
        self.make_user = make_user
        self.ami = RawAmi(kit.ami_port)
        self.service: LiveService | None = None
        self.flags: set[tuple[str, str]] = set()
        self._service_stack: AsyncExitStack | None = None
        self._sockets: list[Socket] = []

    # --- the service ---------------------------------------------------------------------------

    async def start_service(self, *, router: bool = True) -> LiveService:
        """The real service following the kit; `router=False`: no FastAGI server listening."""
        assert self.service is None
        self.settings.telephony = TelephonySettings(
            AMI_ENABLED=True,
            AMI_HOST="127.0.0.1",
            AMI_PORT=self.kit.ami_port,
            AMI_USERNAME="crm",
            AMI_SECRET="crmsecret",
            AMI_PING_INTERVAL=2.0,
            AMI_RECONNECT_MIN=0.2,
            AMI_RECONNECT_MAX=1.0,
            AGI_ENABLED=router,
            AGI_HOST="127.0.0.1",
            AGI_PORT=self.kit.agi_port,
            ORIGINATE_CHANNEL="Local/{ext}@agent-phones",
        )
        stack = AsyncExitStack()
        self.service = await stack.enter_async_context(
            live_service(self.container, ready_timeout=60)
        )
        self._service_stack = stack
        if router:
            agi = self.service.running.agi_routing
            assert agi is not None and agi.server is not None, "the FastAGI router is not listening"
        return self.service

    async def stop_service(self) -> None:
        for sock in self._sockets:
            await sock.close()
        self._sockets.clear()
        if self._service_stack is not None:
            await self._service_stack.aclose()
        self._service_stack = None
        self.service = None

    async def wait_following(self, timeout: float = 60) -> None:
        """The service's AMI listener is logged in (again)."""
        assert self.service is not None
        async with asyncio.timeout(timeout):
            await self.service.tracking.listener.wait_connected()

    async def socket(self, user: User) -> Socket:
        """`user`'s browser tab: the websocket with their default channels (phone and user)."""
        assert self.service is not None
        _, headers = await self.token_headers(user)
        token = headers["Authorization"].removeprefix("Bearer ")
        ws = await connect(f"{self.service.ws_url}?token={token}")
        sock = Socket(ws, user.login)
        self._sockets.append(sock)
        await sock.wait_for("subscribed", timeout=30)
        return sock

    async def token_headers(self, user: User) -> tuple[User, dict[str, str]]:
        """A signed-in session of `user` (as the sign-in page gets one)."""
        async with self.sessions() as s:
            token, _ = await start_session(s, user.id, timedelta(hours=1))
            await s.commit()
        return user, {"Authorization": f"Bearer {token}"}

    def http(self) -> httpx.AsyncClient:
        assert self.service is not None
        return httpx.AsyncClient(base_url=self.service.url, timeout=30)

    # --- the PBX -------------------------------------------------------------------------------

    async def connect_ami(self) -> None:
        """(Re)connect the test's AMI session; the events seen so far are kept."""
        old = self.ami
        if old.connected:
            await old.close()
        self.ami = RawAmi(self.kit.ami_port)
        self.ami.events = old.events
        async with asyncio.timeout(30):
            await self.ami.connect()

    async def flag(self, family: str, key: str, value: str | int) -> None:
        """An AstDB flag of the kit (noanswer/101, agenttalk/101…), deleted after the test."""
        await self.ami.db_put(family, key, str(value))
        self.flags.add((family, key))

    async def unflag(self, family: str, key: str) -> None:
        await self.ami.db_del(family, key)
        self.flags.discard((family, key))

    async def call_in(self, caller: str, **options: Any) -> str:
        """An outside caller dials in (kit.inbound); returns the call's Linkedid."""
        since = self.ami.mark()
        await self.ami.ok("Originate", **inbound(caller, **options))
        first = await self.ami.wait_for(caller_channel(caller), since)
        return first["Linkedid"]

    async def originate(self, fields: dict[str, Any], first: Predicate) -> str:
        """Any Originate; the Linkedid of the first event `first` accepts after it."""
        since = self.ami.mark()
        await self.ami.ok("Originate", **fields)
        return (await self.ami.wait_for(first, since))["Linkedid"]

    async def bridged_agent(self, linkedid: str, ext: str | None = None, since: int = 0) -> str:
        """Agent `ext`'s ;1 channel (any agent's by default) once it talks in the call's bridge
        (for transfers, hangups): the agent may enter the bridge a moment before the caller, and
        a transfer out of a bridge of one is refused ("Transfer invalid"), so wait for the
        second channel too."""
        agent = re.escape(ext) if ext else "1[0-9]{2}"  # the kit's agent phones: _1XX
        ev = await self.ami.wait_for(
            lambda e: (
                e.get("Event") == "BridgeEnter"
                and e.get("Linkedid") == linkedid
                and re.fullmatch(rf"Local/{agent}@agent-phones-[^;]*;1", e.get("Channel", ""))
            ),
            since,
        )
        bridge = ev.get("BridgeUniqueid")
        await self.ami.wait_for(
            lambda e: (
                e.get("Event") == "BridgeEnter"
                and e.get("BridgeUniqueid") == bridge
                and int(e.get("BridgeNumChannels") or 0) >= 2
            ),
            since,
        )
        return ev["Channel"]

    def of_call(self, linkedid: str, name: str | None = None) -> list[Event]:
        return [
            e
            for e in self.ami.events
            if e.get("Linkedid") == linkedid and (name is None or e.get("Event") == name)
        ]

    # --- the database --------------------------------------------------------------------------

    async def manager(self, ext: str, *, on_duty: bool = True, **extra: Any) -> User:
        user, _ = await self.make_user(role="manager", extension=ext, login=f"m{ext}", **extra)
        if on_duty:
            async with self.sessions() as s:
                await replace_schedule(s, user.id, ALL_WEEK)
                await s.commit()
        return user

    async def client(
        self, phone: str, responsible: User | None, name: str = "Ivan Petrov"
    ) -> tuple[int, int]:
        async with self.sessions() as s:
            client = await create_client(
                s,
                ClientCreate(
                    name=name,
                    phones=[phone],
                    responsible_id=responsible.id if responsible else None,
                ),
                region="RU",
            )
            deal, _ = await ensure_open_deal(
                s, client.id, responsible_id=client.responsible_id, title="Deal"
            )
            await s.commit()
            return client.id, deal.id

    async def logged(self, linkedid: str, timeout: float = SETTLE) -> Communication:
        """The call's one communication, once the call is over at the PBX and written."""
        await self.ami.wait_idle(timeout)  # the call is over at the PBX
        try:
            async with asyncio.timeout(LOGGED):
                while not await self.communications(linkedid):
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(
                f"call {linkedid} ended at the PBX but was not logged within {LOGGED:g} s"
            ) from None
        await self.settle()
        rows = await self.communications(linkedid)
        assert len(rows) == 1, [(r.id, r.status, r.extra) for r in rows]
        return rows[0]

    async def settle(self, timeout: float = SETTLE) -> None:
        """The PBX is idle, no call is in progress for the service, every fact is written."""
        async with asyncio.timeout(timeout):
            await self.ami.wait_idle(timeout)
            while True:
                async with self.sessions() as s:
                    active = await s.scalar(select(func.count()).select_from(ActiveCall))
                if not active:
                    break
                await asyncio.sleep(0.2)
            if self.service is not None and self.service.tracking.pipeline is not None:
                await self.service.tracking.pipeline.drain()

    async def communications(self, linkedid: str | None = None) -> list[Communication]:
        async with self.sessions() as s:
            stmt = select(Communication).where(Communication.kind == "call")
            if linkedid is not None:
                stmt = stmt.where(Communication.external_id == linkedid)
            return list((await s.scalars(stmt.order_by(Communication.id))).all())

    async def logged_messages(self, linkedid: str, type_: str) -> list[str]:
        """The channels of the `type_` messages of the call in event_log, sorted (the live
        ones: what pages may still replay), a channel as often as it has one."""
        async with self.sessions() as s:
            rows = await s.scalars(
                text(
                    "SELECT channel FROM event_log WHERE type = :type"
                    " AND strpos(payload::text, :linkedid) > 0 ORDER BY channel"
                ),
                {"type": type_, "linkedid": json.dumps(linkedid)},
            )
            return list(rows.all())

    async def tasks(self) -> list[Task]:
        async with self.sessions() as s:
            return list((await s.scalars(select(Task).order_by(Task.id))).all())

    # --- cleaning up ---------------------------------------------------------------------------

    def keep_events(self, name: str) -> Path:
        """Every AMI event the test saw, as JSON lines beside the PBX's logs (for a post-mortem)."""
        folder = self.kit.rundir / "events"
        folder.mkdir(exist_ok=True)
        path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.jsonl"
        with path.open("w") as f:
            for e in self.ami.events:
                f.write(json.dumps(e) + "\n")
        return path

    async def clean(self) -> None:
        """Asterisk idle, the flags deleted, the service stopped: the next test starts afresh."""
        try:
            if not self.kit.running():
                self.kit.start()
            if not self.ami.connected:
                await self.connect_ami()
            try:
                await self.ami.wait_idle(SETTLE)
            except TimeoutError:
                await self.ami.command("channel request hangup all")
                await self.ami.wait_idle(30)
            for family, key in list(self.flags):
                await self.unflag(family, key)
        finally:
            await self.stop_service()
            await self.ami.close()


@pytest.fixture(autouse=True)
def no_wrapup(settings: Settings) -> None:
    """No wrap-up after answered calls here: these tests ring the same agents call after call
    (wrap-up keeping an agent from the router is tested with a clock of its own, in
    tests/crm_core/test_presence_rules.py and tests/telephony/test_presence_pipeline.py;
    tests/live/test_wrapup.py sets a short one of its own)."""
    settings.presence = PresenceSettings(WRAPUP_SECONDS=0)


@pytest.fixture
async def live(
    request: pytest.FixtureRequest,
    asterisk: Kit,
    settings: Settings,
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
) -> AsyncIterator[Live]:
    lv = Live(asterisk, settings, container, sessions, make_user)
    await lv.connect_ami()
    await lv.ami.wait_idle(SETTLE)  # a test never starts with another's calls up
    try:
        yield lv
    finally:
        lv.keep_events(request.node.name)
        await lv.clean()


def ring_results(record: Communication) -> list[tuple[str, str]]:
    return [(a["ext"], a["result"]) for a in record.extra["ring_attempts"]]
