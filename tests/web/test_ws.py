"""The websocket endpoint over real sockets: a uvicorn server per test, the websockets client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from crm_core.db import collect_event, unit_of_work
from crm_core.events.messages import CallRingingMessage
from crm_core.events.types import CallEvent
from notifier.hub import EventHub
from notifier.settings import NotifierSettings
from tests.conftest import UserFactory
from web.app import create_app
from web.container import Container
from web.settings import Settings

pytestmark = pytest.mark.usefixtures("db")

WAIT = 10.0


@dataclass
class Instance:
    """One running service instance: its base URLs and its composed container (to publish
    through)."""

    http: str
    ws: str
    container: Container

    @property
    def hub(self) -> EventHub:
        hub = self.container.hub
        assert hub is not None
        return hub

    async def commit(self, *events: object, fail: bool = False) -> None:
        """A unit of work that collects `events`; `fail` rolls it back."""
        async with unit_of_work(self.container.sessions, self.container.publish) as session:
            for event in events:
                collect_event(session, event)
            if fail:
                raise RuntimeError("rolled back")


Launch = Callable[..., AbstractAsyncContextManager[Instance]]


@pytest.fixture
def launch(
    settings: Settings, db: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> Launch:
    """`async with launch(queue_size=…, heartbeat=…) as instance:` a uvicorn on a free port."""

    @asynccontextmanager
    async def run(*, queue_size: int = 64, heartbeat: float = 30.0) -> AsyncIterator[Instance]:
        notifier = NotifierSettings(WS_QUEUE_SIZE=queue_size, WS_HEARTBEAT_SECONDS=heartbeat)
        own = Settings(core=settings.core, web=settings.web, notifier=notifier)
        c = Container(
            settings=own, database_url=own.core.database_url, engine=db, sessions=sessions
        )
        app = create_app(container=c)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws_per_message_deflate=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(WAIT):
                while not server.started:
                    await asyncio.sleep(0.02)
                running: Container = app.state.container
                assert running.hub is not None
                await running.hub.wait_ready()
            port = server.servers[0].sockets[0].getsockname()[1]
            yield Instance(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", running)
        finally:
            server.should_exit = True
            await task

    return run


async def token_of(make_user: UserFactory, **kwargs: Any) -> str:
    _, headers = await make_user(**kwargs)
    return headers["Authorization"].removeprefix("Bearer ")


def ring(ext: str, n: int, **payload: Any) -> CallEvent:
    # a screen-pop as the catalogue describes it (the call's view), numbered by `n`
    view = {"linkedid": f"L{n}"}
    return CallEvent(CallRingingMessage.TYPE, f"L{n}", (ext,), {"call": view, "n": n, **payload})


async def recv(ws: ClientConnection, within: float = WAIT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        data = json.loads(await ws.recv())
    assert isinstance(data, dict)
    return data


async def events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next `count` numbered messages, skipping pings."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        msg = await recv(ws)
        if msg["type"] != "ping":
            assert "seq" in msg, msg
            got.append(msg)
    return got


async def silent(ws: ClientConnection, seconds: float = 0.6) -> None:
    with pytest.raises(TimeoutError):
        await recv(ws, seconds)


async def close_code(ws: ClientConnection) -> int:
    """Read until the server closes; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


async def subscribed(ws: ClientConnection) -> dict[str, Any]:
    hello = await recv(ws)
    assert hello["type"] == "subscribed", hello
    return hello


async def test_pop_reaches_its_phone_and_supervisors_only(
    launch: Launch, make_user: UserFactory
) -> None:
    t101 = await token_of(make_user, role="operator", extension="101")
    t102 = await token_of(make_user, role="operator", extension="102")
    tsup = await token_of(make_user, role="supervisor")
    async with (
        launch() as app,
        connect(f"{app.ws}?token={t101}") as op101,
        connect(f"{app.ws}?token={t102}") as op102,
        connect(f"{app.ws}?token={tsup}") as sup,
    ):
        assert set((await subscribed(op101))["channels"]) == {"ext:101", "user:1"}
        await subscribed(op102)
        assert "supervisors" in (await subscribed(sup))["channels"]

        await app.commit(ring("101", 1, card={"client": {"name": "Ann"}}))
        pop = (await events(op101, 1))[0]
        assert pop["channel"] == "ext:101"
        assert pop["type"] == "call.ringing"
        assert pop["payload"]["card"] == {"client": {"name": "Ann"}}
        assert pop["at"].startswith("20")
        board = (await events(sup, 1))[0]
        assert (board["channel"], board["payload"]["linkedid"]) == ("supervisors", "L1")
        await silent(op102)

        # a rolled-back unit of work publishes nothing
        with pytest.raises(RuntimeError):
            await app.commit(ring("101", 2), fail=True)
        await silent(op101)

        await app.commit(ring("101", 3))
        await app.commit(ring("101", 4))
        later = await events(op101, 2)
        assert [m["payload"]["n"] for m in later] == [3, 4]
        assert pop["seq"] < later[0]["seq"] < later[1]["seq"]


async def test_reconnect_with_last_seq_gets_what_it_missed(
    launch: Launch, make_user: UserFactory
) -> None:
    token = await token_of(make_user, role="operator", extension="101")
    async with launch() as app:
        async with connect(f"{app.ws}?token={token}") as ws:
            await subscribed(ws)
            await app.commit(ring("101", 1))
            last_seq = (await events(ws, 1))[0]["seq"]
        # the page is away: these are missed
        for n in (2, 3, 4):
            await app.commit(ring("101", n))
        # the token and last_seq in the first message, not in the URL
        async with connect(app.ws) as ws:
            await ws.send(json.dumps({"token": token, "last_seq": last_seq}))
            await subscribed(ws)
            missed = await events(ws, 3)
            assert [m["payload"]["n"] for m in missed] == [2, 3, 4]
            await app.commit(ring("101", 5))
            live = await events(ws, 1)
            assert live[0]["payload"]["n"] == 5
            seqs = [m["seq"] for m in (*missed, *live)]
            assert seqs == sorted(set(seqs))
            await silent(ws)

        # REST catch-up, for a page reloaded while the phone rings
        async with httpx.AsyncClient(base_url=app.http) as http:
            auth = {"Authorization": f"Bearer {token}"}
            r = await http.get("/api/events", params={"after": last_seq}, headers=auth)
            assert r.status_code == 200
            body = r.json()
            assert [e["payload"]["n"] for e in body["events"]] == [2, 3, 4, 5]
            assert body["last_seq"] >= seqs[-1]  # the position: safe to pass as last_seq
            assert not body["more"] and not body["gap"]
            denied = await http.get(
                "/api/events", params={"after": 0, "channels": "ext:999"}, headers=auth
            )
            assert denied.status_code == 403
            assert (await http.get("/api/events", params={"after": 0})).status_code == 401


async def test_bad_tokens_and_foreign_channels_are_refused(
    launch: Launch, make_user: UserFactory
) -> None:
    await make_user(role="operator", extension="101")
    t102 = await token_of(make_user, role="operator", extension="102")
    tsup = await token_of(make_user, role="supervisor")
    async with launch() as app:
        async with connect(f"{app.ws}?token=forged.token.value") as ws:
            assert await close_code(ws) == 4401
        async with connect(app.ws) as ws:
            await ws.send(json.dumps({"last_seq": 1}))  # no token in the first message
            assert await close_code(ws) == 4401
        async with connect(app.ws) as ws:
            await ws.send("not json")
            assert await close_code(ws) == 4401
        async with connect(f"{app.ws}?token={t102}&channels=ext:101") as ws:
            assert await close_code(ws) == 4403
        async with connect(f"{app.ws}?token={t102}&channels=supervisors") as ws:
            assert await close_code(ws) == 4403
        # a supervisor may watch any phone
        async with connect(f"{app.ws}?token={tsup}&channels=ext:101") as ws:
            assert (await subscribed(ws))["channels"] == ["ext:101"]
            await app.commit(ring("101", 1))
            assert (await events(ws, 1))[0]["channel"] == "ext:101"


async def test_slow_client_is_dropped_while_a_fast_one_keeps_receiving(
    launch: Launch, make_user: UserFactory
) -> None:
    token = await token_of(make_user, role="operator", extension="101")
    note = "x" * 100_000
    total = 160  # 16 MB: more than the kernel's socket buffers hold
    async with launch(queue_size=8) as app:
        # max_queue=1: the client library stops reading the socket after one unread message
        async with (
            connect(f"{app.ws}?token={token}", max_queue=1, max_size=None) as slow,
            connect(f"{app.ws}?token={token}", max_size=None) as fast,
        ):
            await subscribed(fast)
            # the slow one connected first but may finish authenticating second
            async with asyncio.timeout(WAIT):
                while app.hub.subscriber_count() != 2:
                    await asyncio.sleep(0.02)
            got = 0
            for n in range(total):
                await app.commit(ring("101", n, note=note))
                got += len(await events(fast, 1))
            assert got == total
            async with asyncio.timeout(WAIT):
                while app.hub.subscriber_count() != 1:
                    await asyncio.sleep(0.05)
            # the slow one, reading at last, finds its connection gone before the end
            received = 0
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(WAIT):
                    while True:
                        await slow.recv()
                        received += 1
            assert received < total
            # the fast one still gets new events
            await app.commit(ring("101", total))
            assert (await events(fast, 1))[0]["payload"]["n"] == total


async def test_heartbeat_closes_a_socket_that_does_not_answer(
    launch: Launch, make_user: UserFactory
) -> None:
    token = await token_of(make_user, role="operator", extension="101")
    async with launch(heartbeat=0.3) as app:
        async with (
            connect(f"{app.ws}?token={token}") as dead,
            connect(f"{app.ws}?token={token}") as alive,
        ):

            async def answer_pings() -> None:
                async for raw in alive:
                    if json.loads(raw)["type"] == "ping":
                        await alive.send(json.dumps({"type": "pong"}))

            responder = asyncio.create_task(answer_pings())
            assert await close_code(dead) == 4000
            await asyncio.sleep(1.0)  # more than two intervals
            assert not responder.done()
            assert app.hub.subscriber_count() == 1
            responder.cancel()


async def test_event_published_on_one_instance_reaches_a_socket_on_another(
    launch: Launch, make_user: UserFactory
) -> None:
    token = await token_of(make_user, role="operator", extension="101")
    async with launch() as first, launch() as second:
        async with connect(f"{second.ws}?token={token}") as ws:
            await subscribed(ws)
            await first.commit(ring("101", 1))
            got = await events(ws, 1)
            assert got[0]["payload"]["n"] == 1
            await second.commit(ring("101", 2))
            await first.commit(ring("101", 3))
            assert [m["payload"]["n"] for m in await events(ws, 2)] == [2, 3]
